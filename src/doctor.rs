//! `lab doctor`: can this machine run the stack? Every finding says what was checked, what was
//! found and, when something is wrong, the concrete fix. The TUI runs the same checks on start and
//! shows the problems as a banner.
//!
//! Checks: the Docker engine (reachable, versions), the stack file, memory and disk against the
//! stack's estimate, every published port free on 127.0.0.1 (or held by the lab's own container),
//! and the state dir with its secrets private (0600).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::runtime::docker::{Engine, EngineInfo, ServiceStatus, docker_host};
use crate::runtime::first_line;
use crate::runtime::ports;
use crate::stack::{SelectionRequest, Stack, secrets};

/// How long the engine may take to answer before it counts as unreachable.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What was checked: `docker`, `stack`, `memory`, `platform`, `disk`, `port`, `state`.
    pub check: String,
    pub level: Level,
    pub detail: String,
    /// What to do about it (set for warnings and failures).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    fn ok(check: &str, detail: impl Into<String>) -> Self {
        Self {
            check: check.into(),
            level: Level::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    fn problem(check: &str, level: Level, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            check: check.into(),
            level,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DoctorReport {
    pub stack: Option<String>,
    pub engine: Option<EngineInfo>,
    pub findings: Vec<Finding>,
}

impl DoctorReport {
    #[must_use]
    pub fn failures(&self) -> usize {
        self.findings.iter().filter(|f| f.level == Level::Fail).count()
    }

    /// The engine answered.
    #[must_use]
    pub fn engine_reachable(&self) -> bool {
        self.engine.is_some()
    }

    /// Warnings and failures, worst first.
    #[must_use]
    pub fn problems(&self) -> Vec<&Finding> {
        let mut p: Vec<&Finding> = self.findings.iter().filter(|f| f.level != Level::Ok).collect();
        p.sort_by_key(|f| std::cmp::Reverse(f.level));
        p
    }
}

/// Runs every check. `stack` is the stack file (or why it could not be loaded).
pub async fn diagnose(stack_path: Result<PathBuf, String>, state_dir: &Path) -> DoctorReport {
    let mut findings = Vec::new();
    let (engine, info) = match tokio::time::timeout(ENGINE_TIMEOUT, connect_with_info()).await {
        Ok(Ok((engine, info))) => {
            findings.push(Finding::ok(
                "docker",
                format!(
                    "Docker engine {} (API {}) at {}",
                    info.server_version,
                    info.api_version,
                    docker_host()
                ),
            ));
            (Some(engine), Some(info))
        }
        Ok(Err(e)) => {
            findings.push(Finding::problem(
                "docker",
                Level::Fail,
                first_line(&e.to_string()),
                "start Docker (`sudo systemctl start docker`, or Docker Desktop), or point DOCKER_HOST at a running \
                 engine; without Docker, `lab demo` runs the whole pipeline in one process",
            ));
            (None, None)
        }
        Err(_) => {
            findings.push(Finding::problem(
                "docker",
                Level::Fail,
                format!(
                    "the engine at {} did not answer within {} s",
                    docker_host(),
                    ENGINE_TIMEOUT.as_secs()
                ),
                "check that dockerd is not hung (`sudo systemctl status docker`); restart it if needed",
            ));
            (None, None)
        }
    };

    let load = |p: PathBuf| {
        crate::stack::current::load_stack(&p, state_dir, &crate::stack::Scale::default())
            .map(|s| (s, p))
            .map_err(|e| e.to_string())
    };
    let stack = match stack_path.and_then(load) {
        Ok((stack, path)) => {
            findings.push(Finding::ok(
                "stack",
                format!("{} ({}): {} services", stack.name, path.display(), stack.services.len()),
            ));
            Some((stack, path))
        }
        Err(e) => {
            findings.push(Finding::problem(
                "stack",
                Level::Fail,
                first_line(&e),
                "run lab from the repository (stacks/ is there) or pass --stack PATH",
            ));
            None
        }
    };

    if let Some((stack, path)) = &stack {
        let running = match &engine {
            Some(e) => e.states(&stack.name).await.unwrap_or_default(),
            None => Vec::new(),
        };
        findings.extend(memory_findings(stack, info.as_ref()));
        findings.extend(platform_finding(stack, info.as_ref()));
        findings.push(disk_finding(stack, info.as_ref(), state_dir));
        findings.extend(port_findings(stack, path, &running));
    }
    findings.extend(state_findings(state_dir));
    DoctorReport {
        stack: stack.map(|(s, _)| s.name),
        engine: info,
        findings,
    }
}

async fn connect_with_info() -> Result<(Engine, EngineInfo), crate::runtime::docker::Error> {
    let engine = Engine::connect().await?;
    let info = engine.info().await?;
    Ok((engine, info))
}

/// The services `lab up` starts by default (no profiles).
fn default_selection(stack: &Stack) -> Option<crate::stack::Selection<'_>> {
    stack.select(&SelectionRequest::default()).ok()
}

fn memory_findings(stack: &Stack, info: Option<&EngineInfo>) -> Vec<Finding> {
    let Some(selection) = default_selection(stack) else {
        return Vec::new();
    };
    let (need, unlimited) = selection.memory_estimate();
    let unlimited_note = if unlimited > 0 {
        format!(" + {unlimited} services without a limit")
    } else {
        String::new()
    };
    let available = mem_available();
    let mut out = Vec::new();
    match available {
        Some(avail) if avail < need => out.push(Finding::problem(
            "memory",
            Level::Warn,
            format!(
                "{} available, the stack's limits add up to {}{unlimited_note}",
                human(avail),
                human(need)
            ),
            "close other programs, or start part of the stack (`lab up --only kafka,postgres`)",
        )),
        Some(avail) => out.push(Finding::ok(
            "memory",
            format!(
                "{} available for an estimated {}{unlimited_note}",
                human(avail),
                human(need)
            ),
        )),
        None => out.push(Finding::ok(
            "memory",
            format!(
                "estimated {}{unlimited_note} (available memory unknown on this OS)",
                human(need)
            ),
        )),
    }
    // Docker Desktop runs containers in a VM with its own, smaller memory.
    if let Some(total) = info.and_then(|i| i.memory_bytes)
        && total < need
    {
        out.push(Finding::problem(
            "memory",
            Level::Fail,
            format!(
                "the Docker engine has {} in total, less than the stack's {}",
                human(total),
                human(need)
            ),
            "give Docker more memory (Docker Desktop: Settings → Resources) or start part of the stack",
        ));
    }
    out
}

/// Which services run emulated on this engine's CPU (an image published for other CPUs only),
/// from the platforms the stack file lists for each image.
fn platform_finding(stack: &Stack, info: Option<&EngineInfo>) -> Option<Finding> {
    let arch = info?.architecture.as_deref()?;
    let selection = default_selection(stack)?;
    let emulated: Vec<String> = selection
        .services
        .iter()
        .filter_map(|s| {
            s.emulated_platform(arch)
                .map(|p| format!("{} ({}, {p} only)", s.name, s.image))
        })
        .collect();
    Some(if emulated.is_empty() {
        Finding::ok("platform", format!("every image runs natively on this {arch} engine"))
    } else {
        Finding::problem(
            "platform",
            Level::Warn,
            format!(
                "{} of the stack's services run emulated on this {arch} engine: {}",
                emulated.len(),
                emulated.join(", ")
            ),
            "expect their JVMs to start several times slower and use more memory; on Docker Desktop for Apple \
             Silicon turn on Rosetta (Settings → General: \"Use Rosetta for x86_64/amd64 emulation\")",
        )
    })
}

fn disk_finding(stack: &Stack, info: Option<&EngineInfo>, state_dir: &Path) -> Finding {
    // Images and volumes live under the engine's root dir; when it is not visible from here
    // (Docker Desktop, another user), the state dir's file system is the best guess.
    let root = info
        .and_then(|i| i.root_dir.as_deref())
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .unwrap_or_else(|| existing_ancestor(state_dir));
    match free_bytes(&root) {
        Some(free) if free < stack.disk_bytes => Finding::problem(
            "disk",
            Level::Fail,
            format!(
                "{} free on {}, the stack needs about {}",
                human(free),
                root.display(),
                human(stack.disk_bytes)
            ),
            "free disk space (`docker system prune` removes unused images and build cache)",
        ),
        Some(free) => Finding::ok(
            "disk",
            format!(
                "{} free on {} for about {}",
                human(free),
                root.display(),
                human(stack.disk_bytes)
            ),
        ),
        None => Finding::problem(
            "disk",
            Level::Warn,
            format!("cannot read the free space of {}", root.display()),
            format!("check with `df -h {}`", root.display()),
        ),
    }
}

fn port_findings(stack: &Stack, stack_file: &Path, running: &[ServiceStatus]) -> Vec<Finding> {
    let Some(selection) = default_selection(stack) else {
        return Vec::new();
    };
    let mut free = Vec::new();
    let mut out = Vec::new();
    for service in &selection.services {
        for p in service.ports.iter().filter(|p| p.protocol == "tcp") {
            let addr = format!("{}:{}", p.host_ip, p.host_port);
            let ours = running
                .iter()
                .find(|r| r.state == "running" && r.ports.iter().any(|rp| rp.starts_with(&format!("{addr}->"))));
            if let Some(owner) = ours {
                out.push(Finding::ok(
                    "port",
                    format!("{addr} is held by the lab's own {} (running)", owner.service),
                ));
                continue;
            }
            match ports::check_free(&p.host_ip, p.host_port) {
                Ok(()) => free.push(p.host_port.to_string()),
                Err(holder) => out.push(Finding::problem(
                    "port",
                    Level::Fail,
                    format!("{addr} (for {}) is in use by {holder}", service.name),
                    format!(
                        "stop {}, or give {} another host port in {}",
                        holder.command.as_deref().unwrap_or("that process"),
                        service.name,
                        stack_file.display()
                    ),
                )),
            }
        }
    }
    if !free.is_empty() {
        out.insert(
            0,
            Finding::ok("port", format!("free on 127.0.0.1: {}", free.join(", "))),
        );
    }
    out
}

fn state_findings(state_dir: &Path) -> Vec<Finding> {
    if !state_dir.is_dir() {
        return vec![Finding::problem(
            "state",
            Level::Warn,
            format!("{} does not exist yet", state_dir.display()),
            "nothing to do: `lab up` creates it (or set LAB_STATE_DIR / --state-dir to use another)",
        )];
    }
    let mut out = Vec::new();
    let mut private = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(secrets::secrets_dir(state_dir))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.push(state_dir.join(crate::config::ENDPOINTS_FILE));
    files.sort();
    for f in files.iter().filter(|f| f.is_file()) {
        match mode_of(f) {
            Some(mode) if mode & 0o077 != 0 => out.push(Finding::problem(
                "state",
                Level::Fail,
                format!(
                    "{} is readable by others (mode {:o}); it holds passwords",
                    f.display(),
                    mode & 0o777
                ),
                format!("chmod 600 {}", f.display()),
            )),
            _ => private.push(
                f.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            ),
        }
    }
    let detail = if private.is_empty() {
        format!("{} (no secrets yet: `lab up` generates them)", state_dir.display())
    } else {
        format!("{}: {} private (0600)", state_dir.display(), private.join(", "))
    };
    out.insert(0, Finding::ok("state", detail));
    out
}

#[cfg(unix)]
fn mode_of(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).ok().map(|m| m.permissions().mode())
}

#[cfg(not(unix))]
fn mode_of(_path: &Path) -> Option<u32> {
    None
}

/// `MemAvailable` from /proc/meminfo (Linux).
fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn free_bytes(path: &Path) -> Option<u64> {
    let s = rustix::fs::statvfs(path).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

/// The nearest existing directory at or above `path` (the state dir may not exist yet).
fn existing_ancestor(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    absolute
        .ancestors()
        .find(|p| p.exists())
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf)
}

fn human(bytes: u64) -> String {
    indicatif::HumanBytes(bytes).to_string()
}

/// The report as text: one line per finding, fixes indented under problems.
#[must_use]
pub fn render_text(report: &DoctorReport) -> String {
    let mut out = String::new();
    for f in &report.findings {
        let mark = match f.level {
            Level::Ok => "ok  ",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        };
        out.push_str(&format!("{mark} {:<7} {}\n", f.check, f.detail));
        if let Some(fix) = &f.fix {
            out.push_str(&format!("             fix: {fix}\n"));
        }
    }
    match report.failures() {
        0 => out.push_str("\nready: `lab up` (or press u in the TUI's Stack view) starts the stack\n"),
        n => out.push_str(&format!("\n{n} problem(s) to fix before `lab up`\n")),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn world_readable_secrets_fail_with_a_chmod_fix() {
        use std::os::unix::fs::PermissionsExt;
        let state = tempfile::tempdir().unwrap();
        let names = ["pw".to_string()].into_iter().collect();
        secrets::ensure(state.path(), &names).unwrap();
        let ok = state_findings(state.path());
        assert!(ok.iter().all(|f| f.level == Level::Ok), "{ok:?}");
        assert!(ok[0].detail.contains("pw"), "{ok:?}");
        let file = secrets::secret_path(state.path(), "pw");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let bad = state_findings(state.path());
        let fail = bad.iter().find(|f| f.level == Level::Fail).unwrap();
        assert!(fail.detail.contains("mode 644"), "{fail:?}");
        assert_eq!(
            fail.fix.as_deref(),
            Some(format!("chmod 600 {}", file.display()).as_str())
        );
    }

    /// On Apple Silicon (an aarch64 engine) the Hadoop services run emulated (apache/hadoop:3.4.1
    /// is amd64 only), the others natively; on x86_64 everything is native.
    #[test]
    fn the_platform_finding_names_the_emulated_services() {
        let stack = Stack::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("stacks/lambda.toml")).unwrap();
        let engine = |arch: &str| EngineInfo {
            server_version: "27".into(),
            api_version: "1.47".into(),
            root_dir: None,
            memory_bytes: None,
            cpus: None,
            architecture: Some(arch.into()),
        };
        let arm = platform_finding(&stack, Some(&engine("aarch64"))).unwrap();
        assert_eq!(arm.level, Level::Warn);
        assert!(
            arm.detail.contains("namenode (apache/hadoop:3.4.1, linux/amd64 only)") && arm.detail.contains("datanode"),
            "{}",
            arm.detail
        );
        assert!(
            !arm.detail.contains("kafka") && !arm.detail.contains("postgres"),
            "{}",
            arm.detail
        );
        assert!(arm.fix.as_deref().unwrap_or_default().contains("Rosetta"));
        let x86 = platform_finding(&stack, Some(&engine("x86_64"))).unwrap();
        assert_eq!(x86.level, Level::Ok, "{}", x86.detail);
        assert!(platform_finding(&stack, None).is_none());
    }

    #[test]
    fn a_missing_state_dir_is_only_a_warning() {
        let f = state_findings(Path::new("/nonexistent/lab-state"));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].level, Level::Warn);
    }

    #[test]
    fn free_space_and_available_memory_are_read() {
        assert!(free_bytes(Path::new("/")).unwrap() > 0);
        assert!(mem_available().unwrap() > 0);
        assert_eq!(existing_ancestor(Path::new("/nonexistent/a/b")), PathBuf::from("/"));
    }
}
