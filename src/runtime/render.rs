//! Draws [`StackEvent`]s for the command line: indicatif bars (a byte bar per pulled image, a
//! spinner per service) in a terminal, plain lines otherwise. Runs until every sender is dropped.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio::task::JoinHandle;

use super::events::{Events, StackEvent};

/// Starts a renderer; drop every clone of the returned [`Events`], then await the handle.
#[must_use]
pub fn spawn(interactive: bool) -> (Events, JoinHandle<()>) {
    let (tx, rx) = unbounded_channel();
    let task = tokio::spawn(async move {
        if interactive {
            draw(rx).await;
        } else {
            print(rx).await;
        }
    });
    (Events::new(tx), task)
}

/// Per layer of one image pull: (bytes done, bytes total).
type LayerBytes = BTreeMap<String, (u64, u64)>;

async fn draw(mut rx: UnboundedReceiver<StackEvent>) {
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8));
    let pull_style = ProgressStyle::with_template("{prefix:<28} [{bar:30}] {bytes}/{total_bytes} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let service_style = ProgressStyle::with_template("{spinner} {prefix:<24} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    let mut pulls: HashMap<String, (ProgressBar, LayerBytes)> = HashMap::new();
    let mut builds: HashMap<String, ProgressBar> = HashMap::new();
    let mut services: HashMap<String, ProgressBar> = HashMap::new();
    let mut service_bar = |multi: &MultiProgress, name: &str| -> ProgressBar {
        services
            .entry(name.to_string())
            .or_insert_with(|| {
                let bar = multi.add(ProgressBar::new_spinner().with_style(service_style.clone()));
                bar.set_prefix(name.to_string());
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            })
            .clone()
    };
    while let Some(event) = rx.recv().await {
        match event {
            StackEvent::PullStarted { image, .. } => {
                let bar = multi.add(ProgressBar::new(0).with_style(pull_style.clone()));
                bar.set_prefix(image.clone());
                pulls.insert(image, (bar, BTreeMap::new()));
            }
            StackEvent::Pulling {
                image,
                layer,
                status,
                current,
                total,
            } => {
                if let Some((bar, layers)) = pulls.get_mut(&image) {
                    let entry = layers.entry(layer).or_insert((0, 0));
                    if let Some(t) = total {
                        entry.1 = t;
                    }
                    if let Some(c) = current {
                        entry.0 = c;
                    } else if status.starts_with("Pull complete") || status.starts_with("Already exists") {
                        entry.0 = entry.1;
                    }
                    bar.set_length(layers.values().map(|l| l.1).sum());
                    bar.set_position(layers.values().map(|l| l.0).sum());
                    bar.set_message(format!("{} layers", layers.len()));
                }
            }
            StackEvent::Pulled { image } => {
                if let Some((bar, _)) = pulls.get(&image) {
                    bar.finish_with_message("pulled");
                }
            }
            StackEvent::BuildStarted { image, .. } => {
                let bar = multi.add(ProgressBar::new_spinner().with_style(service_style.clone()));
                bar.set_prefix(image.clone());
                bar.set_message("building");
                bar.enable_steady_tick(Duration::from_millis(120));
                builds.insert(image, bar);
            }
            StackEvent::Building { ref image, .. } => {
                if let Some(bar) = builds.get(image) {
                    bar.set_message(describe(&event));
                }
            }
            StackEvent::Built { image } => {
                if let Some(bar) = builds.get(&image) {
                    bar.finish_with_message("built");
                }
            }
            StackEvent::Unhealthy { service, .. } | StackEvent::Exited { service, .. } => {
                service_bar(&multi, &service).abandon_with_message("failed (details below)");
            }
            StackEvent::Healthy { service, after } => {
                service_bar(&multi, &service).finish_with_message(format!("healthy ({:.1} s)", after.as_secs_f64()));
            }
            StackEvent::Completed { service } => service_bar(&multi, &service).finish_with_message("completed"),
            StackEvent::Removed { .. } | StackEvent::Stopped { .. } => {
                multi.println(describe(&event)).unwrap_or_default();
            }
            other => {
                if let Some(service) = service_of(&other) {
                    service_bar(&multi, service).set_message(describe(&other));
                } else if !matches!(other, StackEvent::ImagePresent { .. }) {
                    multi.println(describe(&other)).unwrap_or_default();
                }
            }
        }
    }
    for bar in services.values().chain(builds.values()) {
        if !bar.is_finished() {
            bar.finish();
        }
    }
}

async fn print(mut rx: UnboundedReceiver<StackEvent>) {
    while let Some(event) = rx.recv().await {
        // Layer progress and the builder's own output are too chatty for a log; a build's step
        // headers say where it is (and a failed build's error carries its last lines).
        if matches!(
            event,
            StackEvent::Pulling { .. } | StackEvent::Building { step: None, .. }
        ) || matches!(&event, StackEvent::Building { line, .. } if !line.starts_with("Step "))
        {
            continue;
        }
        let text = describe(&event);
        match service_of(&event) {
            Some(service) => eprintln!("{service:<24} {text}"),
            None => eprintln!("{text}"),
        }
    }
}

fn service_of(event: &StackEvent) -> Option<&str> {
    match event {
        StackEvent::Unchanged { service }
        | StackEvent::Recreating { service, .. }
        | StackEvent::Created { service }
        | StackEvent::Starting { service }
        | StackEvent::Started { service }
        | StackEvent::WaitingHealth { service, .. }
        | StackEvent::Healthy { service, .. }
        | StackEvent::Unhealthy { service, .. }
        | StackEvent::WaitingCompletion { service, .. }
        | StackEvent::Completed { service }
        | StackEvent::Exited { service, .. }
        | StackEvent::Stopped { service } => Some(service),
        _ => None,
    }
}

/// One line of text for an event (no secrets: events never carry any).
#[must_use]
pub fn describe(event: &StackEvent) -> String {
    match event {
        StackEvent::ImagePresent { image } => format!("image {image} present"),
        StackEvent::PullStarted { image, services } => format!("pulling {image} (for {})", services.join(", ")),
        StackEvent::Pulling {
            image, layer, status, ..
        } => format!("{image} {layer}: {status}"),
        StackEvent::Pulled { image } => format!("pulled {image}"),
        StackEvent::BuildStarted { image, services } => format!("building {image} (for {})", services.join(", ")),
        StackEvent::Building { image, step, line } => match step {
            Some((n, of)) if !line.starts_with("Step ") => format!("building {image} (step {n}/{of}): {line}"),
            _ => format!("building {image}: {line}"),
        },
        StackEvent::Built { image } => format!("built {image}"),
        StackEvent::NetworkReady { name, created } => {
            format!("network {name} {}", if *created { "created" } else { "exists" })
        }
        StackEvent::VolumeReady { name, created } => {
            format!("volume {name} {}", if *created { "created" } else { "exists" })
        }
        StackEvent::Unchanged { .. } => "unchanged, kept".into(),
        StackEvent::Recreating { reason, .. } => format!("recreating: {reason}"),
        StackEvent::Created { .. } => "created".into(),
        StackEvent::Starting { .. } => "starting".into(),
        StackEvent::Started { .. } => "started".into(),
        StackEvent::WaitingHealth { deadline, .. } => format!(
            "waiting until healthy (up to {} s)",
            deadline.saturating_duration_since(std::time::Instant::now()).as_secs()
        ),
        StackEvent::Healthy { after, .. } => format!("healthy ({:.1} s)", after.as_secs_f64()),
        StackEvent::Unhealthy { check, .. } => format!("unhealthy: `{check}` failed"),
        StackEvent::WaitingCompletion { .. } => "waiting until it completes".into(),
        StackEvent::Completed { .. } => "completed".into(),
        StackEvent::Exited { code, .. } => format!("exited with code {code}"),
        StackEvent::Stopped { .. } => "stopped".into(),
        StackEvent::Removed { kind, name } => format!("removed {kind} {name}"),
        StackEvent::EndpointsWritten { path } => format!("endpoints written to {path}"),
    }
}
