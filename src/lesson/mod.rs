//! Fault lessons: guided scenarios that break one thing on purpose, tell the student what to
//! watch, check that the signal really shows in the services' own APIs, then repair it and check
//! the recovery. `lab lesson list|run NAME` and the monitor's `:lesson NAME` run the same code.
//!
//! A lesson narrates through [`LessonEvent`]s (the CLI prints them, the monitor shows them) and
//! ends with a [`LessonReport`]: every signal it observed, with the measured values.

mod control;
mod datanode_lost;
mod scenarios;
mod watch;

use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use control::{ControlError, ServiceControl};

use crate::config::LabConfig;
use crate::pipeline::embedded::EmbeddedBroker;
use crate::pipeline::stage::StageContext;
use crate::probes::LabService;

/// Where a lesson runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOn {
    /// The lab's services: `lab up`'s stack or the configured endpoints.
    Services,
    /// An in-process broker and a local raw zone, nothing else (the lessons that only need Kafka).
    Embedded,
}

/// The lessons, in teaching order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Lesson {
    ConsumerLag,
    PoisonMessages,
    BrokerRestart,
    DatanodeDown,
    DatanodeLost,
    SlowBatch,
}

/// What a lesson is about, for `lab lesson list` and the monitor's help.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LessonInfo {
    pub name: &'static str,
    /// What it breaks.
    pub breaks: &'static str,
    /// What the student should watch, and where.
    pub watch: &'static str,
    /// How it is repaired.
    pub repair: &'static str,
    /// The services it needs running.
    pub needs: &'static [LabService],
    /// Whether it also runs without any service, on the in-process broker (`--embedded`).
    pub embedded: bool,
}

impl Lesson {
    pub const ALL: [Lesson; 6] = [
        Lesson::ConsumerLag,
        Lesson::PoisonMessages,
        Lesson::BrokerRestart,
        Lesson::DatanodeDown,
        Lesson::DatanodeLost,
        Lesson::SlowBatch,
    ];

    #[must_use]
    pub fn info(self) -> LessonInfo {
        match self {
            Lesson::ConsumerLag => LessonInfo {
                name: "consumer-lag",
                breaks: "pauses the raw-zone consumer while the producer keeps sending",
                watch: "Kafka tab: the consumer group's lag grows, then drains once the consumer is back",
                repair: "restarts the consumer and waits until its lag is 0",
                needs: &[LabService::Kafka],
                embedded: true,
            },
            Lesson::PoisonMessages => LessonInfo {
                name: "poison-messages",
                breaks: "sends malformed reviews (bad JSON, stars 7, missing ids, …) between good ones",
                watch: "Kafka tab: the DLQ count grows by exactly the poison sent; good records still flow",
                repair: "nothing to repair in the stream: the transform never stopped; read the DLQ's reasons",
                needs: &[LabService::Kafka],
                embedded: true,
            },
            Lesson::BrokerRestart => LessonInfo {
                name: "broker-restart",
                breaks: "stops the Kafka broker while the producer streams",
                watch: "Overview: Kafka turns red; the producer buffers (sent grows, delivered stalls)",
                repair: "starts the broker again: every buffered record is delivered once",
                needs: &[LabService::Kafka],
                embedded: true,
            },
            Lesson::DatanodeDown => LessonInfo {
                name: "datanode-down",
                breaks: "stops the HDFS DataNode",
                watch: "HDFS tab: writes to the raw zone fail, the DataNode goes dead and blocks go missing",
                repair: "starts the DataNode: writes succeed again and the blocks come back",
                needs: &[LabService::Hdfs],
                embedded: false,
            },
            Lesson::DatanodeLost => LessonInfo {
                name: "datanode-lost",
                breaks: "stops one DataNode of a cluster of three or more, with files replicated on the others",
                watch: "HDFS tab: writes go on, the NameNode declares the DataNode dead, its replicas are copied again to the live ones",
                repair: "starts the DataNode again: it rejoins, every block fully replicated",
                needs: &[LabService::Hdfs],
                embedded: false,
            },
            Lesson::SlowBatch => LessonInfo {
                name: "slow-batch",
                breaks: "makes the first try of the yelp_batch DAG's batch task hang, then fail",
                watch: "Airflow tab: the run is late, the batch task goes up_for_retry, try 2 succeeds",
                repair: "Airflow's retry with backoff repairs it: nothing to do but watch",
                needs: &[LabService::Airflow, LabService::Postgres],
                embedded: false,
            },
        }
    }

    #[must_use]
    pub fn name(self) -> &'static str {
        self.info().name
    }
}

impl std::str::FromStr for Lesson {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Lesson::ALL.into_iter().find(|l| l.name() == s.trim()).ok_or_else(|| {
            let names: Vec<&str> = Lesson::ALL.iter().map(|l| l.name()).collect();
            format!("unknown lesson {s:?}: choose one of {}", names.join(", "))
        })
    }
}

/// What a running lesson tells the student.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum LessonEvent {
    /// Something the lesson does, and what to look at meanwhile.
    Step { text: String },
    /// A signal seen in a service's own API, with the value measured.
    Signal { what: String, value: String },
}

/// One observed signal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Observed {
    pub what: String,
    pub value: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct LessonReport {
    pub lesson: Lesson,
    pub signals: Vec<Observed>,
    /// Whether the repair was confirmed (the service is healthy again).
    pub recovered: bool,
    pub elapsed_s: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum LessonError {
    #[error("lesson {lesson}: {detail}")]
    Failed { lesson: &'static str, detail: String },
    #[error("lesson {lesson}: did not see {signal} within {waited:?} ({last})")]
    NoSignal {
        lesson: &'static str,
        signal: String,
        waited: Duration,
        last: String,
    },
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error("lesson stopped before it finished")]
    Cancelled,
}

/// Where a lesson sends its narration.
#[derive(Clone)]
pub struct Narrator {
    tx: mpsc::UnboundedSender<LessonEvent>,
}

impl Narrator {
    #[must_use]
    pub fn new(tx: mpsc::UnboundedSender<LessonEvent>) -> Self {
        Self { tx }
    }

    pub fn step(&self, text: impl Into<String>) {
        let text = text.into();
        tracing::info!(%text, "lesson step");
        self.send(LessonEvent::Step { text });
    }

    fn signal(&self, observed: &Observed) {
        tracing::info!(what = %observed.what, value = %observed.value, "lesson signal");
        self.send(LessonEvent::Signal {
            what: observed.what.clone(),
            value: observed.value.clone(),
        });
    }

    fn send(&self, event: LessonEvent) {
        // The listener (the CLI's printer, the monitor) may be gone; the lesson still completes.
        if self.tx.send(event).is_err() {
            tracing::debug!("nobody listens to the lesson's narration");
        }
    }
}

/// Everything a lesson may touch: the lab's endpoints, how its stages run, and a way to stop and
/// start services.
pub struct LessonContext {
    pub config: LabConfig,
    pub stages: StageContext,
    pub control: ServiceControl,
    pub narrator: Narrator,
    pub cancel: CancellationToken,
}

impl LessonContext {
    /// On the lab's services (`lab up`'s stack, or the configured endpoints).
    #[must_use]
    pub fn on_services(config: LabConfig, narrator: Narrator, cancel: CancellationToken) -> Self {
        Self {
            stages: StageContext::from_config(&config).watched(),
            control: ServiceControl::new(config.state_dir.clone()),
            config,
            narrator,
            cancel,
        }
    }

    /// On an in-process broker (`--embedded`): no service needed. The raw zone is a fresh
    /// directory under the state dir.
    pub fn embedded(mut config: LabConfig, narrator: Narrator, cancel: CancellationToken) -> Result<Self, LessonError> {
        let topics = crate::pipeline::Topics::new(&config.topic_prefix);
        let broker = EmbeddedBroker::for_stages(&topics, crate::pipeline::kafka::DEFAULT_PARTITIONS).map_err(|e| {
            LessonError::Failed {
                lesson: "embedded",
                detail: e.to_string(),
            }
        })?;
        let raw_zone = config.state_dir.join("lessons/embedded/raw");
        if raw_zone.exists() {
            std::fs::remove_dir_all(&raw_zone).map_err(|e| LessonError::Failed {
                lesson: "embedded",
                detail: format!(
                    "cannot clear the previous embedded raw zone {}: {e}",
                    raw_zone.display()
                ),
            })?;
        }
        config.brokers = broker.brokers().to_string();
        config.raw_zone = raw_zone;
        let stages = StageContext::embedded(
            &config.brokers,
            &config.topic_prefix,
            config.raw_zone.clone(),
            &config.state_dir,
        );
        Ok(Self::in_embedded_lab(
            config,
            stages,
            std::sync::Arc::new(broker),
            narrator,
            cancel,
        ))
    }

    /// In a running embedded lab (the monitor's): `config` names its broker and raw zone, and
    /// `broker` is what `stop kafka` stops.
    #[must_use]
    pub fn in_embedded_lab(
        config: LabConfig,
        stages: StageContext,
        broker: std::sync::Arc<EmbeddedBroker>,
        narrator: Narrator,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            stages,
            control: ServiceControl::embedded(config.state_dir.clone(), broker),
            config,
            narrator,
            cancel,
        }
    }
}

/// Runs one lesson to its end: break, observe, repair, observe the recovery.
pub async fn run(lesson: Lesson, ctx: &LessonContext) -> Result<LessonReport, LessonError> {
    let started = std::time::Instant::now();
    let info = lesson.info();
    ctx.narrator.step(format!("Lesson {}: {}.", info.name, info.breaks));
    ctx.narrator.step(format!("Watch: {}.", info.watch));
    let mut log = SignalLog::new(ctx.narrator.clone());
    let outcome = tokio::select! {
        () = ctx.cancel.cancelled() => Err(LessonError::Cancelled),
        result = scenarios::play(lesson, ctx, &mut log) => result,
    };
    // Whatever happened (a check failed, Ctrl-C, the monitor quit), nothing stays broken.
    let mut restored = true;
    for (target, result) in ctx.control.restore().await {
        match result {
            Ok(()) => ctx.narrator.step(format!(
                "Started the {target} again: the lesson had stopped it and did not finish."
            )),
            Err(e) => {
                restored = false;
                ctx.narrator
                    .step(format!("Could not start the {target} again: {e}. Start it by hand."));
            }
        }
    }
    let recovered = outcome? && restored;
    if recovered {
        ctx.narrator.step(format!("Repaired: {}.", info.repair));
    } else {
        ctx.narrator
            .step("NOT repaired: the recovery check did not pass (see the signals above).".to_string());
    }
    Ok(LessonReport {
        lesson,
        signals: log.observed,
        recovered,
        elapsed_s: started.elapsed().as_secs_f64(),
    })
}

/// The signals a lesson has seen so far, each also narrated.
struct SignalLog {
    narrator: Narrator,
    observed: Vec<Observed>,
}

impl SignalLog {
    fn new(narrator: Narrator) -> Self {
        Self {
            narrator,
            observed: Vec::new(),
        }
    }

    fn saw(&mut self, what: &str, value: impl Into<String>) {
        let observed = Observed {
            what: what.to_string(),
            value: value.into(),
        };
        self.narrator.signal(&observed);
        self.observed.push(observed);
    }
}

/// `lab lesson list`: one block per lesson.
#[must_use]
pub fn render_list() -> String {
    let mut out = String::new();
    for lesson in Lesson::ALL {
        let info = lesson.info();
        let needs: Vec<&str> = info.needs.iter().map(|s| s.title()).collect();
        let embedded = if info.embedded {
            ", or nothing with --embedded"
        } else {
            ""
        };
        out.push_str(&format!(
            "{}  (needs {}{embedded})\n  breaks: {}\n  watch:  {}\n  repair: {}\n\n",
            info.name,
            needs.join(", "),
            info.breaks,
            info.watch,
            info.repair
        ));
    }
    out.push_str(
        "Run one with `lab lesson run NAME` (add --embedded, or use `lab demo --lesson NAME`, to run it \
         on an in-process broker without Docker), or `:lesson NAME` in `lab tui` to watch it live.\n",
    );
    out
}

/// `lab lesson run NAME [--embedded]`: narrates on stdout (stderr with `json`, whose report is
/// stdout's only line) and returns the report; an error when the signal never showed or the
/// repair failed.
pub async fn run_cli(
    config: LabConfig,
    lesson: Lesson,
    how: RunOn,
    json: bool,
    cancel: CancellationToken,
) -> Result<LessonReport, LessonError> {
    if how == RunOn::Embedded && !lesson.info().embedded {
        let needs: Vec<&str> = lesson.info().needs.iter().map(|s| s.title()).collect();
        return Err(LessonError::Failed {
            lesson: lesson.name(),
            detail: format!(
                "it cannot run embedded: it needs {}. Bring the lab up (`lab up`) and run `lab lesson run {}`",
                needs.join(" and "),
                lesson.name()
            ),
        });
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let printer = tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            let line = match event {
                LessonEvent::Step { text } => format!("• {text}"),
                LessonEvent::Signal { what, value } => format!("  ✔ {what}: {value}"),
            };
            if json {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
        }
    });
    let narrator = Narrator::new(tx);
    let ctx = match how {
        RunOn::Services => LessonContext::on_services(config, narrator, cancel),
        RunOn::Embedded => {
            let ctx = LessonContext::embedded(config, narrator, cancel)?;
            ctx.narrator.step(format!(
                "Embedded: an in-process Kafka broker at {} (no Docker), the raw zone in {}.",
                ctx.config.brokers,
                ctx.config.raw_zone.display()
            ));
            ctx
        }
    };
    let result = run(lesson, &ctx).await;
    drop(ctx);
    if printer.await.is_err() {
        tracing::debug!("the lesson printer panicked");
    }
    let report = result?;
    if !report.recovered {
        return Err(LessonError::Failed {
            lesson: lesson.name(),
            detail: format!("the repair was not confirmed: {:?}", report.signals),
        });
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_lesson_parses_from_its_name_and_says_what_to_watch() {
        for lesson in Lesson::ALL {
            assert_eq!(lesson.name().parse::<Lesson>(), Ok(lesson));
            let info = lesson.info();
            assert!(!info.watch.is_empty() && !info.repair.is_empty() && !info.needs.is_empty());
        }
        let err = "datanode".parse::<Lesson>().unwrap_err();
        assert!(err.contains("datanode-down"), "{err}");
    }
}
