//! `lab tui` (and `lab` alone): the monitor's entry point (main.rs only dispatches here).

use crate::config::{LabConfig, Overrides};
use crate::probes::ProbeTargets;
use crate::probes::scheduler::Intervals;
use crate::stack::{Stack, current};

use super::TuiError;
use super::actions::StackContext;
use super::app::AfterExit;
use super::stack_panel::StackPanel;
use super::stages::StageContext;

/// `lab tui` (and `lab` alone): the live monitor. `overrides` re-resolve the endpoints after the
/// monitor ran `up` or `down`. Returns what to do after it closed.
pub async fn run_tui(
    config: &LabConfig,
    overrides: Overrides,
    intervals: Intervals,
    stack: Option<&str>,
) -> Result<Option<AfterExit>, TuiError> {
    let path = current::stack_path(stack, &config.state_dir).map_err(|e| e.to_string());
    let panel = match path.as_ref().map(|p| (p, Stack::load(p))) {
        Ok((p, Ok(stack))) => StackPanel::new(&stack, &p.display().to_string()),
        Ok((p, Err(e))) => StackPanel::unavailable(&p.display().to_string(), e.to_string()),
        Err(e) => StackPanel::unavailable("-", e.clone()),
    };
    let docker_stack = panel.name.clone();
    let with_stack = move |config: &LabConfig| {
        let mut t = ProbeTargets::from_config(config);
        if !docker_stack.is_empty() {
            t.docker_stack.clone_from(&docker_stack);
        }
        t
    };
    let targets = with_stack(config);
    let reload = Box::new(move || match LabConfig::resolve(overrides.clone()) {
        Ok(c) => Some((with_stack(&c), StageContext::from_config(&c).watched())),
        Err(e) => {
            tracing::warn!(error = %e, "cannot resolve the endpoints again");
            None
        }
    });
    super::run::run(super::run::Setup {
        targets,
        intervals,
        log_dir: config.log_dir(),
        stack: StackContext {
            path,
            state_dir: config.state_dir.clone(),
        },
        panel,
        stages: StageContext::from_config(config).watched(),
        reload,
        lessons: config.clone(),
    })
    .await
}
