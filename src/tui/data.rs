//! The monitor acting on the broker's data: browsing a topic's records, the dead-letter queue by
//! reason, resetting a group's offsets and replaying one reason's dead letters. The same
//! [`crate::kafka_tools`] calls as `lab kafka …` and `lab dlq …`, run off the UI thread; what
//! changes anything is planned first (a dry run) and asked y/n with the plan on screen.

use tokio::sync::mpsc;

use super::msg::{Cmd, Msg};
use crate::kafka_tools::commands::{render_plan, render_replay};
use crate::kafka_tools::dlq::{self, Replay, Summary};
use crate::kafka_tools::offsets::{self, ResetPlan, ResetTo, Scope};
use crate::kafka_tools::tail::{self, Filter, Start, Tail, TailRequest};

/// The header the transform puts the reason code of a dead letter in.
pub const REASON_HEADER: &str = "lab.reason.code";

/// Records the browser shows at most, and offsets it reads per partition to find them.
pub const BROWSE_LIMIT: usize = 200;
pub const BROWSE_SCAN: i64 = 10_000;

/// What the monitor asks of the broker's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataCmd {
    /// Read records for the browser.
    Tail(TailRequest),
    /// Group the dead-letter topic by reason.
    DeadLetters,
    /// Work out a reset (nothing changes yet).
    PlanReset { group: String, to: ResetTo, scope: Scope },
    /// Apply a reset the user saw and confirmed.
    ApplyReset(Box<ResetPlan>),
    /// Count what a replay of this reason would send (nothing is sent yet).
    PlanReplay(String),
    /// Replay the reason the user saw planned and confirmed.
    Replay(Box<Replay>),
}

impl DataCmd {
    /// The question the confirmation dialog asks (with the plan, for what changes data).
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            DataCmd::ApplyReset(plan) => format!("{}Apply this reset?", render_plan(plan)),
            DataCmd::Replay(plan) => format!(
                "{}Send them back to their source topics (`lab dlq replay {}`)?",
                render_replay(plan),
                plan.code
            ),
            DataCmd::Tail(r) => format!("Read {}?", r.topic),
            DataCmd::DeadLetters => "Read the dead-letter topic?".into(),
            DataCmd::PlanReset { group, .. } => format!("Plan a reset of {group}?"),
            DataCmd::PlanReplay(code) => format!("Plan a replay of {code}?"),
        }
    }
}

impl DataCmd {
    /// The footer's line while it runs.
    #[must_use]
    pub fn progress(&self) -> String {
        match self {
            DataCmd::ApplyReset(plan) if plan.note.is_some() => {
                format!("resetting the offsets of {} as a member of the group …", plan.group)
            }
            DataCmd::ApplyReset(plan) => format!("resetting the offsets of {} …", plan.group),
            DataCmd::Replay(plan) => format!("replaying the dead letters of {} …", plan.code),
            DataCmd::Tail(r) => format!("reading {} …", r.topic),
            DataCmd::DeadLetters => "reading the dead-letter topic …".into(),
            DataCmd::PlanReset { group, .. } => {
                format!("planning the reset of {group} (nothing changes before you confirm) …")
            }
            DataCmd::PlanReplay(code) => format!("counting the dead letters of {code} a replay would send …"),
        }
    }
}

/// What the broker answered.
#[derive(Debug, Clone)]
pub enum DataEvent {
    Tail(TailRequest, Result<Tail, String>),
    DeadLetters(Result<Summary, String>),
    ResetPlanned(Result<ResetPlan, String>),
    ReplayPlanned(Result<Replay, String>),
}

/// What the Kafka view shows instead of its groups and topics.
#[derive(Debug, Clone, PartialEq)]
#[expect(clippy::large_enum_variant, reason = "the monitor holds one at a time")]
pub enum Browse {
    /// A topic's records; `found` is `None` while they are read.
    Records {
        request: TailRequest,
        found: Option<Result<Tail, String>>,
        selected: usize,
    },
    /// The dead-letter topic by reason.
    DeadLetters {
        found: Option<Result<Summary, String>>,
        selected: usize,
    },
}

impl Browse {
    /// Rows of the list the selection moves in.
    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            Browse::Records { found: Some(Ok(t)), .. } => t.records.len(),
            Browse::DeadLetters { found: Some(Ok(s)), .. } => s.reasons.len(),
            _ => 0,
        }
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[must_use]
    pub fn selected(&self) -> usize {
        match self {
            Browse::Records { selected, .. } | Browse::DeadLetters { selected, .. } => *selected,
        }
    }

    pub fn move_selection(&mut self, delta: i64) {
        let len = self.len() as i64;
        let (Browse::Records { selected, .. } | Browse::DeadLetters { selected, .. }) = self;
        *selected = if len == 0 {
            0
        } else {
            (*selected as i64 + delta).clamp(0, len - 1) as usize
        };
    }

    /// The reason code under the selection (the dead-letter list).
    #[must_use]
    pub fn selected_reason(&self) -> Option<&str> {
        match self {
            Browse::DeadLetters {
                found: Some(Ok(s)),
                selected,
            } => s.reasons.get(*selected).map(|r| r.code.as_str()),
            _ => None,
        }
    }

    /// The command that reads this again (`r`).
    #[must_use]
    pub fn refresh(&self) -> DataCmd {
        match self {
            Browse::Records { request, .. } => DataCmd::Tail(request.clone()),
            Browse::DeadLetters { .. } => DataCmd::DeadLetters,
        }
    }
}

/// The newest records of `topic`, merged by time (Enter on a topic).
#[must_use]
pub fn newest(topic: &str) -> TailRequest {
    TailRequest {
        topic: topic.to_string(),
        partition: None,
        limit: BROWSE_LIMIT,
        start: Start::Newest,
        filter: Filter::default(),
        scan: BROWSE_SCAN,
    }
}

/// The newest dead letters of one reason (Enter on a reason): the whole DLQ is scanned.
#[must_use]
pub fn dead_letters_of(dlq: &str, code: &str) -> TailRequest {
    TailRequest {
        filter: Filter {
            header: Some((REASON_HEADER.into(), code.to_string())),
            ..Filter::default()
        },
        scan: i64::MAX,
        ..newest(dlq)
    }
}

/// Where the data commands run: the broker and the dead-letter topic of the lab being watched.
#[derive(Debug, Clone)]
pub struct DataTarget {
    pub brokers: String,
    pub dlq: String,
}

/// Runs one data command on a blocking thread (librdkafka calls) and reports back: reads and plans
/// as [`Msg::Data`], applied changes as [`Msg::ActionDone`].
pub async fn run(cmd: DataCmd, target: DataTarget, tx: mpsc::Sender<Msg>) {
    let reported = tokio::task::spawn_blocking(move || execute(cmd, &target)).await;
    let msg = match reported {
        Ok(msg) => msg,
        Err(e) => Msg::ActionDone(Err(format!("the broker request failed: {e}"))),
    };
    if tx.send(msg).await.is_err() {
        tracing::debug!("the monitor stopped before a broker request finished");
    }
}

fn execute(cmd: DataCmd, target: &DataTarget) -> Msg {
    let brokers = target.brokers.as_str();
    let text = |e: crate::kafka_tools::KafkaToolError| e.to_string();
    match cmd {
        DataCmd::Tail(request) => {
            let found = tail::tail(brokers, &request).map_err(text);
            Msg::Data(DataEvent::Tail(request, found))
        }
        DataCmd::DeadLetters => Msg::Data(DataEvent::DeadLetters(
            dlq::summarize(brokers, &target.dlq).map_err(text),
        )),
        DataCmd::PlanReset { group, to, scope } => Msg::Data(DataEvent::ResetPlanned(
            offsets::plan_reset(brokers, &group, &to, &scope).map_err(text),
        )),
        DataCmd::ApplyReset(plan) => Msg::ActionDone(
            offsets::apply(brokers, &plan)
                .map(|()| format!("reset {}: {} partition(s) moved", plan.group, plan.partitions.len()))
                .map_err(text),
        ),
        DataCmd::PlanReplay(code) => Msg::Data(DataEvent::ReplayPlanned(
            dlq::replay(brokers, &target.dlq, &code, true).map_err(text),
        )),
        DataCmd::Replay(plan) => Msg::ActionDone(
            dlq::replay(brokers, &target.dlq, &plan.code, false)
                .map(|done| render_replay(&done).trim_end().replace('\n', "; "))
                .map_err(text),
        ),
    }
}

impl From<DataCmd> for Cmd {
    fn from(cmd: DataCmd) -> Self {
        Cmd::Data(cmd)
    }
}
