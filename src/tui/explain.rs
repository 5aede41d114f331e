//! `:explain on`: what each action of the monitor is in the native tools (`docker`, `airflow`,
//! `kafka-consumer-groups.sh`, `kafka-console-consumer.sh`, `hdfs`), so that the lab teaches those
//! tools and not only this program. Pure: an action and what the monitor knows of the lab in, the
//! command lines out (comments start with `#`).

use super::data::DataCmd;
use super::msg::{Cmd, StackCmd};
use crate::kafka_tools::tail::Start;
use crate::lesson::Lesson;

/// What the command lines need to know about the lab.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Place {
    /// The stack's name (containers are `lab-<stack>-<service>`).
    pub stack: String,
    /// The brokers as the probe saw them (`host:port`), or a placeholder.
    pub brokers: String,
    /// The lab's topic prefix (`yelp`): groups are `lab-<stage>-<prefix>`.
    pub prefix: String,
}

/// One explained action: what the monitor did, and the same with the native tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub action: String,
    pub native: Vec<String>,
}

/// The native command lines for `cmd`; `None` for the monitor's own bookkeeping.
#[must_use]
pub fn explain(cmd: &Cmd, place: &Place) -> Option<Explanation> {
    let container = |service: &str| format!("lab-{}-{service}", place.stack);
    let b = &place.brokers;
    let compose = "lab compose > compose.yaml   # the stack as a compose file".to_string();
    let (action, native): (String, Vec<String>) = match cmd {
        Cmd::TriggerDag(dag) => (format!("trigger {dag}"), vec![format!("airflow dags trigger {dag}")]),
        Cmd::SetPaused { dag_id, paused } => {
            let verb = if *paused { "pause" } else { "unpause" };
            (
                format!("{verb} {dag_id}"),
                vec![format!("airflow dags {verb} {dag_id}")],
            )
        }
        Cmd::ClearFailed { dag_id, dag_run_id } => (
            format!("clear the failed tasks of {dag_id} {dag_run_id}"),
            vec![
                format!("airflow tasks clear {dag_id} --only-failed --yes"),
                format!(
                    "# the monitor clears that run only: POST /api/v2/dags/{dag_id}/clearTaskInstances \
                     {{\"dag_run_id\": \"{dag_run_id}\", \"only_failed\": true}}"
                ),
            ],
        ),
        Cmd::Stack(StackCmd::Up { only }) => (
            "bring the stack up".into(),
            vec![
                compose,
                format!("docker compose -f compose.yaml up -d --wait {}", only.join(" "))
                    .trim_end()
                    .to_string(),
            ],
        ),
        Cmd::Stack(StackCmd::Down { volumes }) => (
            "bring the stack down".into(),
            vec![
                compose,
                format!(
                    "docker compose -f compose.yaml down{}",
                    if *volumes { " --volumes" } else { "" }
                ),
            ],
        ),
        Cmd::Stack(StackCmd::Pull) => (
            "pull the images".into(),
            vec![compose, "docker compose -f compose.yaml pull".into()],
        ),
        Cmd::Stack(StackCmd::Stop(s)) => (format!("stop {s}"), vec![format!("docker stop {}", container(s))]),
        Cmd::Stack(StackCmd::Start(s)) => (format!("start {s}"), vec![format!("docker start {}", container(s))]),
        Cmd::Stack(StackCmd::Restart(s)) => (format!("restart {s}"), vec![format!("docker restart {}", container(s))]),
        Cmd::StartStage { kind, how } => {
            let mut line = format!("lab {}", kind.command());
            if let Some(rate) = how.rate {
                line.push_str(&format!(" --rate {rate}"));
            }
            if let Some(data) = &how.data {
                line.push_str(&format!(" --data {}", data.display()));
            }
            // What to watch it with: the producer fills the raw topics, the others are groups.
            let watch = if *kind == crate::pipeline::stage::StageKind::Producer {
                format!(
                    "kafka-get-offsets.sh --bootstrap-server {b} --topic {}.review   # the end offsets grow",
                    place.prefix
                )
            } else {
                format!(
                    "kafka-consumer-groups.sh --bootstrap-server {b} --describe --group lab-{}-{}   # its lag",
                    kind.name(),
                    place.prefix
                )
            };
            (format!("start the {}", kind.name()), vec![line, watch])
        }
        Cmd::StopStage(kind) => (
            format!("stop the {}", kind.name()),
            vec![format!(
                "# Ctrl-C on `lab {}`: it commits what is durable, then stops",
                kind.command()
            )],
        ),
        Cmd::Lesson(lesson) => (format!("the {} lesson", lesson.name()), lesson_lines(*lesson, place)),
        Cmd::Batch => ("run the batch".into(), vec!["lab batch".into()]),
        Cmd::StartEmbedded => ("start the embedded lab".into(), vec!["lab demo".into()]),
        Cmd::Data(data) => return explain_data(data, place),
        Cmd::SaveLogs(_) | Cmd::ReloadEndpoints | Cmd::UseEmbedded | Cmd::StartEmbeddedStages => return None,
    };
    Some(Explanation { action, native })
}

fn lesson_lines(lesson: Lesson, place: &Place) -> Vec<String> {
    let b = &place.brokers;
    let p = &place.prefix;
    let mut lines = vec![format!("lab lesson run {}", lesson.name())];
    let container = |service: &str| format!("lab-{}-{service}", place.stack);
    lines.extend(match lesson {
        Lesson::ConsumerLag => vec![format!(
            "kafka-consumer-groups.sh --bootstrap-server {b} --describe --group lab-consumer-{p}   # watch LAG"
        )],
        Lesson::PoisonMessages => vec![format!(
            "kafka-console-consumer.sh --bootstrap-server {b} --topic {p}.dlq --from-beginning \
             --property print.headers=true   # the dead letters and their reasons"
        )],
        Lesson::BrokerRestart => vec![
            format!("docker stop {}   # what the lesson does, then", container("kafka")),
            format!("docker start {}", container("kafka")),
            format!("kafka-consumer-groups.sh --bootstrap-server {b} --describe --all-groups"),
        ],
        Lesson::DatanodeDown => vec![
            format!("docker stop {}   # what the lesson does, then", container("datanode")),
            "hdfs dfsadmin -report   # Live/Dead datanodes".into(),
            format!("docker start {}", container("datanode")),
        ],
        Lesson::DatanodeLost => vec![
            format!("docker stop {}   # what the lesson does, then", container("datanode")),
            "hdfs dfsadmin -report   # Live/Dead datanodes".into(),
            "hdfs fsck / -blocks -locations   # under-replicated blocks, where each replica lives".into(),
            format!("docker start {}", container("datanode")),
        ],
        Lesson::SlowBatch => vec!["airflow dags list-runs yelp_batch".into()],
    });
    lines
}

fn explain_data(data: &DataCmd, place: &Place) -> Option<Explanation> {
    let b = &place.brokers;
    let (action, native) = match data {
        DataCmd::Tail(r) => {
            let mut line = format!(
                "kafka-console-consumer.sh --bootstrap-server {b} --topic {} --isolation-level read_committed \
                 --property print.key=true --property print.headers=true --property print.timestamp=true",
                r.topic
            );
            if let Some(p) = r.partition {
                line.push_str(&format!(" --partition {p}"));
            }
            match &r.start {
                Start::Offset(o) => line.push_str(&format!(" --offset {o}")),
                Start::Since(t) => line.push_str(&format!(
                    "   # from {}: --offset of `kafka-get-offsets.sh --time`",
                    t.to_rfc3339()
                )),
                Start::Newest => {
                    line.push_str("   # the newest: add --partition P --offset (its end offset − N)");
                }
            }
            (
                format!("read {}", r.topic),
                vec![line, format!("# or: lab kafka tail {} -n {}", r.topic, r.limit)],
            )
        }
        DataCmd::DeadLetters => (
            "the dead letters by reason".into(),
            vec![
                format!(
                    "kafka-console-consumer.sh --bootstrap-server {b} --topic {}.dlq --from-beginning \
                     --isolation-level read_committed --property print.headers=true --timeout-ms 5000",
                    place.prefix
                ),
                "# or: lab dlq list".into(),
            ],
        ),
        DataCmd::PlanReset { group, .. } => (
            format!("plan a reset of {group}"),
            vec![format!(
                "kafka-consumer-groups.sh --bootstrap-server {b} --describe --group {group} --members"
            )],
        ),
        DataCmd::ApplyReset(plan) => (
            format!("reset {}", plan.group),
            vec![plan.command.replace("--dry-run", "--execute")],
        ),
        DataCmd::PlanReplay(code) => (
            format!("plan a replay of {code}"),
            vec![format!("lab dlq replay {code} --dry-run")],
        ),
        DataCmd::Replay(plan) => (
            format!("replay {}", plan.code),
            vec![
                format!("lab dlq replay {} --yes", plan.code),
                "# Kafka has no tool that re-sends by header; the nearest is kcat -C … | kcat -P …".into(),
            ],
        ),
    };
    Some(Explanation { action, native })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::stage::{StageKind, StageStart};

    fn place() -> Place {
        Place {
            stack: "lambda".into(),
            brokers: "127.0.0.1:9092".into(),
            prefix: "yelp".into(),
        }
    }

    fn lines(cmd: Cmd) -> Vec<String> {
        explain(&cmd, &place()).expect("explained").native
    }

    #[test]
    fn actions_name_the_native_commands() {
        assert_eq!(
            lines(Cmd::Stack(StackCmd::Stop("datanode".into()))),
            ["docker stop lab-lambda-datanode"]
        );
        assert_eq!(
            lines(Cmd::TriggerDag("yelp_batch".into())),
            ["airflow dags trigger yelp_batch"]
        );
        assert_eq!(
            lines(Cmd::SetPaused {
                dag_id: "yelp_batch".into(),
                paused: false
            }),
            ["airflow dags unpause yelp_batch"]
        );
        assert!(lines(Cmd::Stack(StackCmd::Down { volumes: true }))[1].ends_with("down --volumes"));
        let produce = lines(Cmd::StartStage {
            kind: StageKind::Producer,
            how: StageStart {
                rate: Some(50),
                data: None,
            },
        });
        assert_eq!(produce[0], "lab produce --rate 50");
        assert!(produce[1].starts_with("kafka-get-offsets.sh"));
        let transform = lines(Cmd::StartStage {
            kind: StageKind::Transform,
            how: StageStart::default(),
        });
        assert!(transform[1].contains("--group lab-transform-yelp"), "{transform:?}");
        assert!(
            lines(Cmd::Lesson(Lesson::DatanodeDown))
                .iter()
                .any(|l| l.starts_with("hdfs dfsadmin -report"))
        );
        assert!(explain(&Cmd::ReloadEndpoints, &place()).is_none());
    }

    #[test]
    fn a_reset_is_kafkas_own_command_with_execute() {
        let plan = crate::kafka_tools::offsets::ResetPlan {
            group: "lab-consumer-yelp".into(),
            members: Vec::new(),
            partitions: Vec::new(),
            command: "kafka-consumer-groups.sh --bootstrap-server 127.0.0.1:9092 --group lab-consumer-yelp \
                      --reset-offsets --to-earliest --all-topics --dry-run"
                .into(),
            note: None,
        };
        let native = lines(Cmd::Data(DataCmd::ApplyReset(Box::new(plan))));
        assert!(
            native[0].ends_with("--to-earliest --all-topics --execute"),
            "{native:?}"
        );
    }
}
