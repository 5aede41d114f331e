//! The stack commands of `lab`: argument structs (clap) and one `run_*` function per command, so
//! `main.rs` only dispatches.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use futures::StreamExt;
use indicatif::HumanBytes;

use super::docker::{ContainerLogLine, Engine, Error, LogWindow, PullPolicy, ServiceStatus, UpReport};
use super::events::{Events, StackEvent};
use super::render;
use crate::bundle;
use crate::stack::{self, Scale, Selection, SelectionRequest, compose, current, endpoints, secrets};

#[derive(Debug, Clone, Default, Args)]
pub struct StackArg {
    /// Stack name (stacks/NAME.toml) or path to a stack file. Default: the last `lab up`, else `lambda`.
    #[arg(long)]
    pub stack: Option<String>,
}

impl StackArg {
    /// The stack file this argument means ([`current::stack_path`]).
    pub fn path(&self, state_dir: &Path) -> Result<PathBuf, stack::Error> {
        current::stack_path(self.stack.as_deref(), state_dir)
    }

    /// The name of the stack this argument means.
    pub fn name(&self, state_dir: &Path) -> Result<String, stack::Error> {
        current::stack_name(self.stack.as_deref(), state_dir)
    }
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub stack: StackArg,
    /// Only these services (and what they depend on), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Also start the services of these profiles (e.g. `yarn`).
    #[arg(long, value_delimiter = ',')]
    pub profile: Vec<String>,
    /// When to pull images.
    #[arg(long, value_enum, default_value_t = PullPolicy::Missing)]
    pub pull: PullPolicy,
    /// Run replicas of a scalable service, e.g. `datanode=3,spark-worker=2`. Remembered: a later
    /// `lab up` keeps them until `--scale NAME=1`.
    #[arg(long, value_delimiter = ',', value_parser = Scale::parse_item, value_name = "SERVICE=N")]
    pub scale: Vec<(String, u32)>,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    #[command(flatten)]
    pub stack: StackArg,
    /// Also remove the lab's volumes (its data: databases, HDFS blocks, Kafka logs).
    #[arg(long)]
    pub volumes: bool,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    #[command(flatten)]
    pub stack: StackArg,
    /// One JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub stack: StackArg,
    /// The service's name in the stack (`lab ps` lists them: kafka, namenode, postgres, …).
    pub service: String,
    /// Keep printing new lines until Ctrl-C or the container stops.
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines.
    #[arg(long)]
    pub tail: Option<usize>,
    /// Only lines written since this time (2026-12-03T10:00:00Z, or …T10:00 as UTC) or for this
    /// long (30s, 10m, 2h, 1d), as `docker logs --since` takes it.
    #[arg(long, value_name = "TIME|AGE", value_parser = since_arg)]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
}

fn since_arg(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    crate::time_arg::parse_since(text, chrono::Utc::now()).ok_or_else(|| {
        format!(
            "not a time or an age: write {} or an age such as 30s, 10m, 2h, 1d",
            crate::time_arg::TIME_FORMATS
        )
    })
}

#[derive(Debug, Args)]
pub struct ServiceArgs {
    #[command(flatten)]
    pub stack: StackArg,
    /// The service's name in the stack (`lab ps` lists them: kafka, namenode, postgres, …).
    pub service: String,
}

#[derive(Debug, Args)]
pub struct ComposeArgs {
    #[command(flatten)]
    pub stack: StackArg,
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    #[arg(long, value_delimiter = ',')]
    pub profile: Vec<String>,
    /// Replicas of scalable services, as `lab up --scale` (default: what the last `lab up` ran).
    #[arg(long, value_delimiter = ',', value_parser = Scale::parse_item, value_name = "SERVICE=N")]
    pub scale: Vec<(String, u32)>,
}

#[derive(Debug, Clone, Copy)]
pub enum ServiceAction {
    Stop,
    Start,
    Restart,
}

/// `lab up`: shows the plan, generates secrets, brings the selection up, writes the endpoints.
pub async fn run_up(args: &UpArgs, state_dir: &Path) -> Result<UpReport, Error> {
    let path = args.stack.path(state_dir)?;
    let stack = current::load_stack(&path, state_dir, &Scale::from_pairs(args.scale.clone()))?;
    let selection = stack.select(&SelectionRequest {
        only: args.only.clone(),
        profiles: args.profile.clone(),
    })?;
    print!("{}", plan_table(&selection));
    let secret_values = secrets::ensure(state_dir, &stack.secret_names())?;
    let engine = Engine::connect().await?;
    current::remember_stack(state_dir, &path)?;
    current::remember_scale(state_dir, &stack)?;
    let (events, renderer) = render::spawn(std::io::stderr().is_terminal());
    let result = up_with_events(&engine, &selection, &secret_values, args.pull, state_dir, &events).await;
    drop(events);
    finish(renderer).await;
    let report = result?;
    println!("stack {} is up ({} services)", stack.name, report.services.len());
    let written = endpoints::build(&selection, state_dir, &secret_values)?;
    for line in endpoint_lines(&written) {
        println!("  {line}");
    }
    Ok(report)
}

/// The library path of `lab up` (after the plan is shown): what tests call with their own events.
pub async fn up_with_events(
    engine: &Engine,
    selection: &Selection<'_>,
    secret_values: &BTreeMap<String, String>,
    pull: PullPolicy,
    state_dir: &Path,
    events: &Events,
) -> Result<UpReport, Error> {
    let report = engine.up(selection, secret_values, pull, events).await?;
    let config = endpoints::build(selection, state_dir, secret_values)?;
    endpoints::write(state_dir, &config)?;
    events.send(StackEvent::EndpointsWritten {
        path: state_dir.join(crate::config::ENDPOINTS_FILE).display().to_string(),
    });
    Ok(report)
}

pub async fn run_down(args: &DownArgs, state_dir: &Path) -> Result<(), Error> {
    let name = args.stack.name(state_dir)?;
    let engine = Engine::connect().await?;
    let (events, renderer) = render::spawn(false);
    let result = engine.down(&name, args.volumes, &events).await;
    drop(events);
    finish(renderer).await;
    let removed = result?;
    if removed == 0 {
        println!("nothing to remove for stack {name}");
    } else {
        println!("stack {name} removed ({removed} resources)");
        if !args.volumes {
            println!("its volumes (data) were kept; `lab down --volumes` removes them too");
        }
    }
    forget_endpoints(state_dir);
    Ok(())
}

/// After `down` the endpoints would point at nothing: remove them.
pub fn forget_endpoints(state_dir: &Path) {
    let endpoints_file = state_dir.join(crate::config::ENDPOINTS_FILE);
    if let Err(e) = std::fs::remove_file(&endpoints_file)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(error = %e, path = %endpoints_file.display(), "cannot remove the endpoints file");
    }
}

pub async fn run_ps(args: &PsArgs, state_dir: &Path) -> Result<(), Error> {
    let name = args.stack.name(state_dir)?;
    let engine = Engine::connect().await?;
    let rows = engine.ps(&name).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows).unwrap_or_default());
    } else if rows.is_empty() {
        println!("stack {name} has no containers; start it with `lab up`");
    } else {
        print!("{}", ps_table(&rows));
    }
    Ok(())
}

pub async fn run_logs(args: &LogsArgs, state_dir: &Path) -> Result<(), Error> {
    let name = args.stack.name(state_dir)?;
    let engine = Engine::connect().await?;
    let window = LogWindow {
        follow: args.follow,
        tail: args.tail,
        since: args.since,
    };
    let mut lines = engine.logs(&name, &args.service, window).await?;
    let mut out = std::io::stdout().lock();
    while let Some(line) = lines.next().await {
        let written = match line? {
            ContainerLogLine::Stdout(text) => out.write_all(text.as_bytes()),
            ContainerLogLine::Stderr(text) => out.flush().and_then(|()| std::io::stderr().write_all(text.as_bytes())),
        };
        if written.is_err() {
            // The reader went away (e.g. `| head`): stop quietly.
            break;
        }
    }
    if let Err(e) = out.flush() {
        tracing::debug!(error = %e, "stdout closed");
    }
    Ok(())
}

pub async fn run_service_action(action: ServiceAction, args: &ServiceArgs, state_dir: &Path) -> Result<(), Error> {
    let name = args.stack.name(state_dir)?;
    let engine = Engine::connect().await?;
    let (events, renderer) = render::spawn(false);
    let result = match action {
        ServiceAction::Stop => engine.stop_service(&name, &args.service, &events).await,
        ServiceAction::Start => engine.start_service(&name, &args.service, &events).await,
        ServiceAction::Restart => engine.restart_service(&name, &args.service, &events).await,
    };
    drop(events);
    finish(renderer).await;
    result
}

/// `lab compose`: the YAML on stdout; the secrets into `<state>/compose.env` (0600).
pub fn run_compose(args: &ComposeArgs, state_dir: &Path) -> Result<(), Error> {
    let path = args.stack.path(state_dir)?;
    let mut stack = current::load_stack(&path, state_dir, &Scale::from_pairs(args.scale.clone()))?;
    // A build that takes the lab's source gets a context of its own under the state dir, with the
    // source in it, since docker compose sends the context directory as it is.
    for service in stack.services.values_mut() {
        if let Some(build) = service.build.as_mut()
            && let Some(dir) = build.lab_source.take()
        {
            let out = state_dir.join("contexts").join(&service.name);
            bundle::write_context_with_source(Path::new(&build.context), &dir, &out).map_err(stack::Error::from)?;
            build.context = out.display().to_string();
        }
    }
    let selection = stack.select(&SelectionRequest {
        only: args.only.clone(),
        profiles: args.profile.clone(),
    })?;
    let secret_values = secrets::ensure(state_dir, &stack.secret_names())?;
    let env_path = state_dir.join("compose.env");
    secrets::write_private(&env_path, compose::env_file(&selection, &secret_values).as_bytes())?;
    print!("{}", compose::export(&selection, &env_path.display().to_string()));
    eprintln!("secrets for this file: {} (mode 0600)", env_path.display());
    Ok(())
}

/// Waits for the renderer to draw the last events (call after dropping every `Events`).
async fn finish(renderer: tokio::task::JoinHandle<()>) {
    if let Err(e) = renderer.await {
        tracing::warn!(error = %e, "progress renderer failed");
    }
}

/// What `lab up` is about to start: services, images, ports and the memory total.
#[must_use]
pub fn plan_table(selection: &Selection<'_>) -> String {
    let mut out = format!(
        "stack {} — {} services\n",
        selection.stack.name,
        selection.services.len()
    );
    out.push_str(&format!(
        "  {:<22} {:<34} {:<30} {:>8}\n",
        "SERVICE", "IMAGE", "PORTS", "MEMORY"
    ));
    for s in &selection.services {
        let ports: Vec<String> = s
            .ports
            .iter()
            .map(|p| format!("{}:{}", p.host_ip, p.host_port))
            .collect();
        let memory = s.memory_bytes.map_or_else(|| "-".into(), |b| HumanBytes(b).to_string());
        let kind = if s.one_shot { " (job)" } else { "" };
        out.push_str(&format!(
            "  {:<22} {:<34} {:<30} {:>8}\n",
            format!("{}{kind}", s.name),
            match s.build {
                Some(_) => format!("{} (built here)", s.image),
                None => s.image.to_string(),
            },
            if ports.is_empty() { "-".into() } else { ports.join(",") },
            memory
        ));
    }
    let (total, unknown) = selection.memory_estimate();
    out.push_str(&format!("  estimated memory: {}", HumanBytes(total)));
    if unknown > 0 {
        out.push_str(&format!(" (+ {unknown} services without a limit)"));
    }
    out.push('\n');
    out
}

#[must_use]
pub fn ps_table(rows: &[ServiceStatus]) -> String {
    let mut out = format!(
        "{:<20} {:<10} {:<10} {:<34} {:>9} {:>8} {:>7} {:>9}\n",
        "SERVICE", "STATE", "HEALTH", "PORTS", "UPTIME", "RESTARTS", "CPU", "MEMORY"
    );
    for r in rows {
        let state = match r.exit_code {
            Some(code) if r.state == "exited" => format!("exited({code})"),
            _ => r.state.clone(),
        };
        out.push_str(&format!(
            "{:<20} {:<10} {:<10} {:<34} {:>9} {:>8} {:>7} {:>9}\n",
            r.service,
            state,
            r.health.as_deref().unwrap_or("-"),
            if r.ports.is_empty() {
                "-".into()
            } else {
                r.ports.join(",")
            },
            r.uptime.map_or_else(|| "-".into(), human_duration),
            r.restarts,
            r.cpu_percent.map_or_else(|| "-".into(), |c| format!("{c:.1}%")),
            r.memory_bytes.map_or_else(|| "-".into(), |b| HumanBytes(b).to_string()),
        ));
    }
    out
}

fn endpoint_lines(config: &crate::config::FileConfig) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(b) = config.kafka.as_ref().and_then(|k| k.brokers.as_ref()) {
        lines.push(format!("kafka     {b}"));
    }
    if config.postgres.is_some() {
        // The URL holds the password: only say where it is.
        lines.push("postgres  see endpoints.toml in the state dir".into());
    }
    if let Some(h) = &config.hdfs {
        lines.push(format!(
            "hdfs      {} (web {})",
            h.url.as_deref().unwrap_or("-"),
            h.http.as_deref().unwrap_or("-")
        ));
    }
    if let Some(s) = &config.spark {
        lines.push(format!(
            "spark     {} (UI {})",
            s.master.as_deref().unwrap_or("-"),
            s.ui.as_deref().unwrap_or("-")
        ));
    }
    if let Some(a) = &config.airflow {
        lines.push(format!(
            "airflow   {} (user {}, password in {})",
            a.url.as_deref().unwrap_or("-"),
            a.username.as_deref().unwrap_or("-"),
            a.password_file
                .as_ref()
                .map_or_else(|| "-".into(), |p| p.display().to_string())
        ));
    }
    lines
}

fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86400, (s % 86400) / 3600),
    }
}
