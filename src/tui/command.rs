//! The monitor's `:` commands: a line of text into a [`Command`], or the message that says what is
//! wrong with it. Pure (no state, no effects), so every spelling is tested here; the app decides
//! what a command does (ask first, check the stack's services, start an effect).

use clap::Parser;

use super::msg::StackCmd;
use super::views::tabs::View;
use crate::kafka_tools::commands::{ResetArgs, TailArgs};
use crate::kafka_tools::offsets::{ResetTo, Scope};
use crate::kafka_tools::tail::TailRequest;
use crate::lesson::Lesson;
use crate::pipeline::stage::{StageKind, StageStart};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Quit,
    /// `:up [SERVICE…]`, `:down [--volumes]`, `:pull`, `:stop|start|restart SERVICE`.
    Stack(StackCmd),
    /// `:produce [--rate N] [--data PATH]`, `:transform`, `:consume`, `:start STAGE`.
    StartStage {
        kind: StageKind,
        how: StageStart,
    },
    /// `:stop STAGE`.
    StopStage(StageKind),
    /// `:trigger DAG`.
    Trigger(String),
    /// `:pause DAG`, `:unpause DAG`.
    SetPaused {
        dag_id: String,
        paused: bool,
    },
    /// `:clear DAG [RUN]`: the failed tasks of RUN (default: the DAG's latest run).
    Clear {
        dag_id: String,
        run: Option<String>,
    },
    /// `:lesson NAME`.
    Lesson(Lesson),
    /// `:view NAME`.
    View(View),
    /// `:batch`: the embedded lab's batch, now.
    Batch,
    /// `:tail TOPIC [options of lab kafka tail]`: the topic browser.
    Tail(TailRequest),
    /// `:dlq`: the dead letters by reason.
    DeadLetters,
    /// `:reset GROUP --to-earliest|--to-latest|--to-datetime T|--shift-by N [--topic T[:P]]`.
    Reset {
        group: String,
        to: ResetTo,
        scope: Scope,
    },
    /// `:replay REASON`: one reason's dead letters back to their source topics.
    Replay(String),
    /// `:save [PATH]`: the Logs view's source, or its whole search result, into a file.
    Save(Option<std::path::PathBuf>),
    /// `:explain [on|off]` (no word: toggle): the native tools' command for each action.
    Explain(Option<bool>),
}

/// `:tail`'s words, read by the same parser as `lab kafka tail`.
#[derive(clap::Parser)]
#[command(no_binary_name = true, name = ":tail", disable_help_flag = true)]
struct TailLine {
    #[command(flatten)]
    args: TailArgs,
}

/// `:reset`'s words, read by the same parser as `lab kafka reset`.
#[derive(clap::Parser)]
#[command(no_binary_name = true, name = ":reset", disable_help_flag = true)]
struct ResetLine {
    #[command(flatten)]
    args: ResetArgs,
}

/// clap's complaint, on one line for the footer.
fn clap_error(e: &clap::Error) -> CommandError {
    let text = e.to_string();
    let said: Vec<&str> = text
        .lines()
        .take_while(|l| !l.starts_with("Usage:"))
        .map(|l| l.trim().trim_start_matches("error: "))
        .filter(|l| !l.is_empty())
        .collect();
    CommandError(said.join(" "))
}

/// Why a line is not a command: the text the footer shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CommandError(pub String);

/// Reads one `:` line (without the colon). An empty line is `Ok(None)`.
pub fn parse(line: &str) -> Result<Option<Command>, CommandError> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some((&cmd, rest)) = words.split_first() else {
        return Ok(None);
    };
    let fail = |text: String| Err(CommandError(text));
    let command = match cmd {
        "q" | "quit" => Command::Quit,
        "produce" | "transform" | "consume" => {
            let kind = StageKind::parse(cmd).ok_or_else(|| CommandError(format!("no stage {cmd:?}")))?;
            start_stage(kind, rest)?
        }
        "stop" | "start" | "restart" => match rest.first() {
            None => {
                return fail(format!(
                    ":{cmd} needs a stage or a service of the stack (e.g. :{cmd} datanode)"
                ));
            }
            Some(&name) => match (StageKind::parse(name), cmd) {
                (Some(kind), "stop") => Command::StopStage(kind),
                (Some(kind), "start") => start_stage(kind, &rest[1..])?,
                (Some(kind), _) => {
                    return fail(format!(
                        ":stop {0} then :start {0} (a stage restarts from its committed offsets)",
                        kind.name()
                    ));
                }
                (None, "stop") => Command::Stack(StackCmd::Stop(name.to_string())),
                (None, "start") => Command::Stack(StackCmd::Start(name.to_string())),
                (None, _) => Command::Stack(StackCmd::Restart(name.to_string())),
            },
        },
        "up" => Command::Stack(StackCmd::Up {
            only: rest.iter().map(|s| (*s).to_string()).collect(),
        }),
        "down" => Command::Stack(StackCmd::Down {
            volumes: rest.iter().any(|w| *w == "--volumes" || *w == "-v"),
        }),
        "pull" => Command::Stack(StackCmd::Pull),
        "batch" => Command::Batch,
        "tail" => {
            let line = TailLine::try_parse_from(rest).map_err(|e| clap_error(&e))?;
            Command::Tail(line.args.request().map_err(|e| CommandError(e.to_string()))?)
        }
        "dlq" => Command::DeadLetters,
        "reset" => {
            let line = ResetLine::try_parse_from(rest).map_err(|e| clap_error(&e))?;
            let invalid = |e: crate::kafka_tools::KafkaToolError| CommandError(e.to_string());
            Command::Reset {
                group: line.args.group.clone(),
                to: line.args.reset_to().map_err(invalid)?,
                scope: line.args.scope().map_err(invalid)?,
            }
        }
        "explain" => match rest.first().copied() {
            None => Command::Explain(None),
            Some("on") => Command::Explain(Some(true)),
            Some("off") => Command::Explain(Some(false)),
            Some(other) => return fail(format!(":explain on, :explain off or :explain (not {other:?})")),
        },
        // The rest of the line is the path, spaces and all.
        "save" => Command::Save(
            (!rest.is_empty())
                .then(|| line.trim_start()[cmd.len()..].trim())
                .map(std::path::PathBuf::from),
        ),
        "replay" => match rest.first() {
            Some(code) => Command::Replay((*code).to_string()),
            None => return fail(":replay needs a reason code (:dlq lists them)".into()),
        },
        "lesson" => match rest.first() {
            Some(name) => Command::Lesson(name.parse::<Lesson>().map_err(CommandError)?),
            None => {
                let names: Vec<&str> = Lesson::ALL.iter().map(|l| l.name()).collect();
                return fail(format!(":lesson needs a name: {}", names.join(", ")));
            }
        },
        "trigger" | "pause" | "unpause" | "clear" | "view" => {
            let Some(&arg) = rest.first() else {
                return fail(format!(":{cmd} needs an argument (see ? for the commands)"));
            };
            match cmd {
                "trigger" => Command::Trigger(arg.to_string()),
                "pause" | "unpause" => Command::SetPaused {
                    dag_id: arg.to_string(),
                    paused: cmd == "pause",
                },
                "clear" => Command::Clear {
                    dag_id: arg.to_string(),
                    run: rest.get(1).map(|s| (*s).to_string()),
                },
                _ => Command::View(
                    View::from_name(arg)
                        .ok_or_else(|| CommandError(format!("no view {arg:?}: use one of the tab names")))?,
                ),
            }
        }
        other => return fail(format!("unknown command :{other} (see ? for the commands)")),
    };
    Ok(Some(command))
}

/// A stage's start options: `--rate N` and `--data PATH` (the producer's only).
fn start_stage(kind: StageKind, options: &[&str]) -> Result<Command, CommandError> {
    let mut how = StageStart::default();
    let mut it = options.iter();
    while let Some(arg) = it.next() {
        match (*arg, it.next()) {
            ("--rate", Some(n)) if kind == StageKind::Producer => match n.parse::<u32>() {
                Ok(r) if r > 0 => how.rate = Some(r),
                _ => {
                    return Err(CommandError(format!(
                        "--rate needs a positive number of messages per second, not {n:?}"
                    )));
                }
            },
            ("--data", Some(p)) if kind == StageKind::Producer => how.data = Some(p.into()),
            (other, _) => {
                return Err(CommandError(format!(
                    "unknown option {other:?} (:produce [--rate N] [--data PATH], :transform, :consume)"
                )));
            }
        }
    }
    Ok(Command::StartStage { kind, how })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Command {
        parse(line)
            .unwrap_or_else(|e| panic!("{line:?}: {e}"))
            .unwrap_or_else(|| panic!("{line:?} is empty"))
    }

    fn err(line: &str) -> String {
        match parse(line) {
            Err(CommandError(text)) => text,
            other => panic!("{line:?} parsed: {other:?}"),
        }
    }

    #[test]
    fn kafka_data_commands_read_like_the_cli() {
        use crate::kafka_tools::tail::Start;
        let Command::Tail(r) = ok("tail yelp.review.clean -n 5 --grep stars=1 --partition 2") else {
            panic!("not a tail");
        };
        assert_eq!(
            (r.topic.as_str(), r.limit, r.partition),
            ("yelp.review.clean", 5, Some(2))
        );
        assert_eq!(r.filter.field, Some(("stars".into(), "1".into())));
        assert_eq!(r.start, Start::Newest);
        assert!(matches!(ok("tail t --offset 7"), Command::Tail(r) if r.start == Start::Offset(7)));
        assert!(err("tail").contains("TOPIC"), "{}", err("tail"));
        assert!(
            err("tail t --grep stars").contains("NAME=VALUE"),
            "{}",
            err("tail t --grep stars")
        );
        assert_eq!(ok("dlq"), Command::DeadLetters);
        assert_eq!(ok("save"), Command::Save(None));
        assert_eq!(ok("explain on"), Command::Explain(Some(true)));
        assert_eq!(ok("explain"), Command::Explain(None));
        assert!(err("explain maybe").contains("on"));
        assert_eq!(
            ok("save  /tmp/my logs.txt "),
            Command::Save(Some("/tmp/my logs.txt".into()))
        );
        assert_eq!(
            ok("reset g --shift-by -3 --topic yelp.review:1"),
            Command::Reset {
                group: "g".into(),
                to: ResetTo::ShiftBy(-3),
                scope: Scope {
                    topic: Some("yelp.review".into()),
                    partition: Some(1)
                },
            }
        );
        assert!(matches!(
            ok("reset g --to-earliest"),
            Command::Reset {
                to: ResetTo::Earliest,
                ..
            }
        ));
        assert!(err("reset g").contains("--to-earliest"), "{}", err("reset g"));
        assert!(
            err("reset g --to-earliest --to-latest").contains("cannot be used"),
            "{}",
            err("reset g --to-earliest --to-latest")
        );
        assert_eq!(ok("replay invalid_json"), Command::Replay("invalid_json".into()));
        assert!(err("replay").contains(":dlq"));
    }

    #[test]
    fn blank_lines_are_no_command() {
        assert_eq!(parse(""), Ok(None));
        assert_eq!(parse("   "), Ok(None));
    }

    #[test]
    fn stages_and_their_options() {
        assert_eq!(
            ok("produce --rate 50 --data /d"),
            Command::StartStage {
                kind: StageKind::Producer,
                how: StageStart {
                    rate: Some(50),
                    data: Some("/d".into())
                }
            }
        );
        assert_eq!(
            ok("start consumer"),
            Command::StartStage {
                kind: StageKind::Consumer,
                how: StageStart::default()
            }
        );
        assert_eq!(ok("stop transform"), Command::StopStage(StageKind::Transform));
        assert!(err("produce --rate 0").contains("positive"));
        assert!(err("produce --rate x").contains("positive"));
        assert!(err("transform --rate 5").contains("unknown option \"--rate\""));
        assert!(err("restart transform").contains(":stop transform then :start transform"));
    }

    #[test]
    fn services_stay_services() {
        assert_eq!(ok("stop datanode"), Command::Stack(StackCmd::Stop("datanode".into())));
        assert_eq!(ok("restart kafka"), Command::Stack(StackCmd::Restart("kafka".into())));
        assert_eq!(
            ok("up kafka postgres"),
            Command::Stack(StackCmd::Up {
                only: vec!["kafka".into(), "postgres".into()]
            })
        );
        assert_eq!(ok("down -v"), Command::Stack(StackCmd::Down { volumes: true }));
        assert_eq!(ok("down"), Command::Stack(StackCmd::Down { volumes: false }));
        assert!(err("stop").contains("needs a stage or a service"));
    }

    #[test]
    fn airflow_lessons_views_and_quit() {
        assert_eq!(ok("trigger yelp_batch"), Command::Trigger("yelp_batch".into()));
        assert_eq!(
            ok("unpause yelp_batch"),
            Command::SetPaused {
                dag_id: "yelp_batch".into(),
                paused: false
            }
        );
        assert_eq!(
            ok("clear yelp_batch run-7"),
            Command::Clear {
                dag_id: "yelp_batch".into(),
                run: Some("run-7".into())
            }
        );
        assert_eq!(ok("lesson consumer-lag"), Command::Lesson(Lesson::ConsumerLag));
        assert!(err("lesson").contains("consumer-lag"));
        assert!(!err("lesson nope").is_empty());
        assert_eq!(ok("view pg"), Command::View(View::Postgres));
        assert_eq!(ok("view HDFS"), Command::View(View::Hdfs));
        assert!(err("view nope").contains("no view"));
        assert!(err("trigger").contains("needs an argument"));
        assert_eq!(ok("q"), Command::Quit);
        assert!(err("frobnicate").contains("unknown command :frobnicate"));
    }
}
