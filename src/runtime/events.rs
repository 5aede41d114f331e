//! What the runtime reports while it works. It never draws: the CLI renders these with indicatif
//! (`runtime::render`), and the TUI can consume the same channel.

use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

#[derive(Debug, Clone, PartialEq)]
pub enum StackEvent {
    /// The image is already present locally (pull policy `missing` or `never`).
    ImagePresent {
        image: String,
    },
    /// A pull started for an image the listed services use.
    PullStarted {
        image: String,
        services: Vec<String>,
    },
    /// Progress of one layer of a pull (`current`/`total` in bytes when the registry says).
    Pulling {
        image: String,
        layer: String,
        status: String,
        current: Option<u64>,
        total: Option<u64>,
    },
    Pulled {
        image: String,
    },
    /// A build started for an image the listed services use (it was missing, its build context
    /// changed since it was built, or `--pull always` asked for a rebuild).
    BuildStarted {
        image: String,
        services: Vec<String>,
    },
    /// One line of the builder's output; `step` is the last `Step n/of` header seen.
    Building {
        image: String,
        step: Option<(u32, u32)>,
        line: String,
    },
    Built {
        image: String,
    },
    NetworkReady {
        name: String,
        created: bool,
    },
    VolumeReady {
        name: String,
        created: bool,
    },
    /// Running with the same spec hash: left as it is.
    Unchanged {
        service: String,
    },
    /// The spec changed (or the container was not running as it should): removed to be created again.
    Recreating {
        service: String,
        reason: String,
    },
    Created {
        service: String,
    },
    Starting {
        service: String,
    },
    Started {
        service: String,
    },
    WaitingHealth {
        service: String,
        deadline: Instant,
    },
    Healthy {
        service: String,
        after: Duration,
    },
    Unhealthy {
        service: String,
        check: String,
        last_logs: Vec<String>,
    },
    WaitingCompletion {
        service: String,
        deadline: Instant,
    },
    Completed {
        service: String,
    },
    Exited {
        service: String,
        code: i64,
    },
    Stopped {
        service: String,
    },
    Removed {
        kind: ResourceKind,
        name: String,
    },
    /// Endpoints and secrets written to the state dir.
    EndpointsWritten {
        path: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    Container,
    Volume,
    Network,
}

impl std::fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ResourceKind::Container => "container",
            ResourceKind::Volume => "volume",
            ResourceKind::Network => "network",
        })
    }
}

/// Where events go; a dropped receiver (nobody watching) is not an error.
#[derive(Debug, Clone)]
pub struct Events(Option<UnboundedSender<StackEvent>>);

impl Events {
    #[must_use]
    pub fn new(sender: UnboundedSender<StackEvent>) -> Self {
        Self(Some(sender))
    }

    /// Events nobody reads (e.g. a library caller that only wants the result).
    #[must_use]
    pub fn discard() -> Self {
        Self(None)
    }

    pub fn send(&self, event: StackEvent) {
        tracing::debug!(?event, "stack event");
        if let Some(tx) = &self.0
            && tx.send(event).is_err()
        {
            tracing::trace!("stack event receiver gone");
        }
    }
}
