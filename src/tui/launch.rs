//! `lab tui` (and `lab` alone) and `lab demo`: the monitor's entry points (main.rs only
//! dispatches here).

use crate::config::{LabConfig, Overrides};
use crate::embedded_lab::EmbeddedSpec;
use crate::probes::ProbeTargets;
use crate::probes::scheduler::Intervals;
use crate::stack::current;

use super::TuiError;
use super::actions::StackContext;
use super::keys::Keymap;
use super::stack_panel::StackPanel;
use super::stages::StageContext;
use super::theme::Theme;

/// `lab tui` (and `lab` alone): the live monitor. `overrides` re-resolve the endpoints after the
/// monitor ran `up` or `down`.
pub async fn run_tui(
    config: &LabConfig,
    overrides: Overrides,
    intervals: Intervals,
    stack: Option<&str>,
) -> Result<(), TuiError> {
    let embedded = EmbeddedSpec::from_config(config, &overrides);
    monitor(config, overrides, intervals, stack, embedded, false).await
}

/// `lab demo` in a terminal: the monitor over an embedded lab it starts at once and stops on `q`.
pub async fn run_embedded(config: &LabConfig, overrides: Overrides, spec: EmbeddedSpec) -> Result<(), TuiError> {
    monitor(config, overrides, Intervals::default(), None, spec, true).await
}

async fn monitor(
    config: &LabConfig,
    overrides: Overrides,
    intervals: Intervals,
    stack: Option<&str>,
    embedded: EmbeddedSpec,
    start_embedded: bool,
) -> Result<(), TuiError> {
    // A wrong key or colour is said before the terminal is taken over.
    let keymap = Keymap::configured(&config.tui.keys.clone().unwrap_or_default())?;
    let theme = Theme::configured(&config.tui.theme.clone().unwrap_or_default())?;
    let path = current::stack_path(stack, &config.state_dir).map_err(|e| e.to_string());
    let loaded = |p: &std::path::PathBuf| current::load_stack(p, &config.state_dir, &crate::stack::Scale::default());
    let panel = match path.as_ref().map(|p| (p, loaded(p))) {
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
        embedded,
        start_embedded,
        keymap,
        theme,
    })
    .await
}
