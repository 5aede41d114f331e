//! `lab kafka …`: the command-line face of [`super`]'s tools, with their text and JSON output.

use std::io::{BufRead, IsTerminal, Write};

use clap::{Args, Subcommand};

use super::KafkaToolError;
use super::dlq::{self, Replay, Summary};
use super::offsets::{self, GroupOffsets, ResetPlan, ResetTo, Scope};
use super::tail::{self, Filter, Start, Tail, TailRequest};

#[derive(Subcommand)]
pub enum KafkaCommand {
    /// A consumer group's committed offsets, watermarks and lag per partition, and who is connected.
    Offsets {
        /// The consumer group (`lab status` counts them; the lab's are lab-transform-PREFIX and lab-consumer-PREFIX).
        group: String,
        /// Print the offsets as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Move a consumer group's offsets (only while no member is connected). Shows the offsets
    /// before and after and the equivalent `kafka-consumer-groups.sh` command, then asks y/n.
    /// Skip one poison record: `--shift-by 1 --topic TOPIC:PARTITION`.
    Reset(ResetArgs),
    /// A topic's newest records (merged by time), or from an offset or a time, with partition,
    /// offset, timestamp, key, headers and the value as JSON; filtered by key, header or JSON
    /// field over a bounded scan. Records of aborted transactions are not shown.
    Tail(TailArgs),
}

#[derive(Args)]
pub struct TailArgs {
    /// The topic (the lab's: PREFIX.review, PREFIX.review.clean, PREFIX.dlq, …).
    pub topic: String,
    /// Records shown at most.
    #[arg(short = 'n', long, default_value_t = 20)]
    pub limit: usize,
    /// Only this partition.
    #[arg(long)]
    pub partition: Option<i32>,
    /// Start at this offset (oldest first) instead of showing the newest.
    #[arg(long, conflicts_with = "since")]
    pub offset: Option<i64>,
    /// Start at the first record at or after this time (2026-12-03T10:00:00Z, or …T10:00 as UTC).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only records with this key.
    #[arg(long)]
    pub key: Option<String>,
    /// Only records with this header (`--header lab.reason.code=invalid_json` in the DLQ).
    #[arg(long, value_name = "NAME=VALUE")]
    pub header: Option<String>,
    /// Only records whose JSON value has this top-level field (`--grep stars=1`).
    #[arg(long, value_name = "FIELD=VALUE")]
    pub grep: Option<String>,
    /// Offsets read at most per partition (the newest N, or N from the start); transaction
    /// markers and aborted records take offsets too.
    #[arg(long, default_value_t = 10_000)]
    pub scan: i64,
    /// Print the records as JSON lines.
    #[arg(long)]
    pub json: bool,
}

impl TailArgs {
    /// What to read, as [`tail::tail`] takes it.
    pub fn request(&self) -> Result<TailRequest, KafkaToolError> {
        let start = match (&self.offset, &self.since) {
            (Some(o), _) => Start::Offset(*o),
            (None, Some(t)) => Start::Since(offsets::parse_datetime(t)?),
            (None, None) => Start::Newest,
        };
        Ok(TailRequest {
            topic: self.topic.clone(),
            partition: self.partition,
            limit: self.limit,
            start,
            filter: Filter {
                key: self.key.clone(),
                header: self
                    .header
                    .as_deref()
                    .map(|h| Filter::pair("--header", h))
                    .transpose()?,
                field: self.grep.as_deref().map(|g| Filter::pair("--grep", g)).transpose()?,
            },
            scan: self.scan.max(1),
        })
    }
}

#[derive(Subcommand)]
pub enum DlqCommand {
    /// Dead letters grouped by reason: count, first and last seen, an example with its origin.
    List {
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The newest dead letters of one reason code, with their original bytes and headers.
    Show {
        /// The reason code (`lab dlq list` shows them: invalid_json, bad_date, …).
        reason: String,
        /// Dead letters shown at most.
        #[arg(short = 'n', long, default_value_t = 10)]
        limit: usize,
        /// Print the dead letters as JSON.
        #[arg(long)]
        json: bool,
    },
    /// After a fix, send the dead letters of one reason back to their source topics, once (a
    /// second replay sends only dead letters that arrived since). Asks y/n.
    Replay {
        /// The reason code whose dead letters go back (`lab dlq list` shows them).
        reason: String,
        /// Count what would be sent, send nothing.
        #[arg(long)]
        dry_run: bool,
        /// Replay without asking (scripts; without a terminal a replay needs it).
        #[arg(long)]
        yes: bool,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
#[command(group = clap::ArgGroup::new("to").required(true).multiple(false))]
pub struct ResetArgs {
    /// The consumer group to move (`lab kafka offsets GROUP` shows where it is).
    pub group: String,
    /// The first record still held.
    #[arg(long, group = "to")]
    pub to_earliest: bool,
    /// The end: nothing left to read.
    #[arg(long, group = "to")]
    pub to_latest: bool,
    /// The first record at or after this time (2026-12-03T10:00:00Z, …+01:00, or 2026-12-03T10:00 as UTC).
    #[arg(long, group = "to", value_name = "TIME")]
    pub to_datetime: Option<String>,
    /// The committed offset plus N (negative: back).
    #[arg(long, group = "to", value_name = "N", allow_hyphen_values = true)]
    pub shift_by: Option<i64>,
    /// Only this topic, or one partition of it (TOPIC:PARTITION); default: every partition the group committed on.
    #[arg(long, value_name = "TOPIC[:PARTITION]")]
    pub topic: Option<String>,
    /// Show the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Apply without asking (scripts; without a terminal a reset needs it).
    #[arg(long)]
    pub yes: bool,
    /// Print the plan (and whether it was applied) as JSON.
    #[arg(long)]
    pub json: bool,
}

impl ResetArgs {
    /// Where the reset moves the group.
    pub fn reset_to(&self) -> Result<ResetTo, KafkaToolError> {
        Ok(
            match (self.to_earliest, self.to_latest, &self.to_datetime, self.shift_by) {
                (true, ..) => ResetTo::Earliest,
                (_, true, ..) => ResetTo::Latest,
                (_, _, Some(t), _) => ResetTo::Datetime(offsets::parse_datetime(t)?),
                (_, _, _, Some(n)) => ResetTo::ShiftBy(n),
                _ => {
                    return Err(KafkaToolError::Input(
                        "say where to: --to-earliest, --to-latest, --to-datetime or --shift-by".into(),
                    ));
                }
            },
        )
    }

    /// Which partitions the reset covers.
    pub fn scope(&self) -> Result<Scope, KafkaToolError> {
        Ok(self.topic.as_deref().map(Scope::parse).transpose()?.unwrap_or_default())
    }
}

/// Runs one `lab kafka` command against `brokers` (blocking: librdkafka calls).
pub fn run(command: &KafkaCommand, brokers: &str) -> Result<(), KafkaToolError> {
    match command {
        KafkaCommand::Offsets { group, json } => {
            let offsets = offsets::read_group(brokers, group)?;
            if *json {
                println!("{}", to_json(&offsets));
            } else {
                print!("{}", render_offsets(&offsets));
            }
            Ok(())
        }
        KafkaCommand::Reset(args) => reset(args, brokers),
        KafkaCommand::Tail(args) => {
            let found = tail::tail(brokers, &args.request()?)?;
            if args.json {
                println!("{}", to_json(&found));
            } else {
                print!("{}", render_tail(&found));
            }
            Ok(())
        }
    }
}

/// Runs one `lab dlq` command on the dead-letter topic `dlq` (blocking: librdkafka calls).
pub fn run_dlq(command: &DlqCommand, brokers: &str, dlq: &str) -> Result<(), KafkaToolError> {
    match command {
        DlqCommand::List { json } => {
            let summary = dlq::summarize(brokers, dlq)?;
            if *json {
                println!("{}", to_json(&summary));
            } else {
                print!("{}", render_summary(&summary));
            }
            Ok(())
        }
        DlqCommand::Show { reason, limit, json } => {
            let request = TailRequest {
                topic: dlq.to_string(),
                partition: None,
                limit: *limit,
                start: Start::Newest,
                filter: Filter {
                    header: Some(("lab.reason.code".into(), reason.clone())),
                    ..Filter::default()
                },
                scan: i64::MAX,
            };
            let found = tail::tail(brokers, &request)?;
            if *json {
                println!("{}", to_json(&found));
            } else {
                print!("{}", render_tail(&found));
            }
            Ok(())
        }
        DlqCommand::Replay {
            reason,
            dry_run,
            yes,
            json,
        } => {
            let print = |r: &Replay| {
                if *json {
                    println!("{}", to_json(r));
                } else {
                    print!("{}", render_replay(r));
                }
            };
            if *yes && !*dry_run {
                // Nothing to ask: one read of the DLQ, not a plan first.
                print(&dlq::replay(brokers, dlq, reason, false)?);
                return Ok(());
            }
            let plan = dlq::replay(brokers, dlq, reason, true)?;
            if *dry_run || plan.replayed == 0 {
                print(&plan);
                return Ok(());
            }
            if *json || !std::io::stdin().is_terminal() {
                print(&plan);
                return Err(KafkaToolError::Input(
                    "not replayed: a replay asks y/n, and there is no terminal to ask on; pass --yes to replay, or --dry-run"
                        .into(),
                ));
            }
            print!("{}", render_replay(&plan));
            if !confirm(&format!("replay {} dead letter(s) of {reason}?", plan.replayed))? {
                println!("not replayed");
                return Ok(());
            }
            print(&dlq::replay(brokers, dlq, reason, false)?);
            Ok(())
        }
    }
}

/// Asks `question` on the terminal; true for y/yes.
fn confirm(question: &str) -> Result<bool, KafkaToolError> {
    print!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdout()
        .flush()
        .and_then(|()| std::io::stdin().lock().read_line(&mut answer))
        .map_err(|e| KafkaToolError::Input(format!("cannot read the answer: {e}")))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

fn reset(args: &ResetArgs, brokers: &str) -> Result<(), KafkaToolError> {
    let to = args.reset_to()?;
    let scope = args.scope()?;
    let plan = offsets::plan_reset(brokers, &args.group, &to, &scope)?;
    let print_plan = |applied: bool| {
        if args.json {
            println!("{}", to_json(&serde_json::json!({ "plan": &plan, "applied": applied })));
        } else {
            print!("{}", render_plan(&plan));
        }
    };
    if !plan.members.is_empty() {
        print_plan(false);
        return Err(KafkaToolError::ActiveMembers {
            group: plan.group.clone(),
            members: plan.members.clone(),
        });
    }
    if args.dry_run || plan.partitions.is_empty() {
        print_plan(false);
        if !args.json {
            println!("(dry run: nothing changed)");
        }
        return Ok(());
    }
    if !args.yes {
        if args.json || !std::io::stdin().is_terminal() {
            print_plan(false);
            return Err(KafkaToolError::Input(
                "not applied: a reset asks y/n, and there is no terminal to ask on; pass --yes to apply it, or --dry-run"
                    .into(),
            ));
        }
        print!("{}", render_plan(&plan));
        if !confirm(&format!("apply this reset to group {}?", plan.group))? {
            println!("not applied");
            return Ok(());
        }
        offsets::apply(brokers, &plan)?;
        println!("applied");
        return Ok(());
    }
    offsets::apply(brokers, &plan)?;
    print_plan(true);
    if !args.json {
        println!("applied");
    }
    Ok(())
}

fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

fn render_offsets(g: &GroupOffsets) -> String {
    let mut out = format!("group {}  state {}  members {}\n", g.group, g.state, g.members.len());
    if let Some(note) = &g.note {
        out.push_str(&format!("{note}\n"));
    }
    for m in &g.members {
        out.push_str(&format!("  member {m}\n"));
    }
    if g.partitions.is_empty() {
        out.push_str("no committed offsets\n");
        return out;
    }
    partition_table(
        &mut out,
        ["COMMITTED", "LOW", "HIGH", "LAG"],
        g.partitions.iter().map(|p| {
            let committed = p.committed.map_or_else(|| "-".to_string(), |c| c.to_string());
            (
                p.topic.as_str(),
                p.partition,
                [committed, p.low.to_string(), p.high.to_string(), p.lag.to_string()],
            )
        }),
    );
    out.push_str(&format!(
        "total lag {}\n",
        g.partitions.iter().map(|p| p.lag).sum::<i64>()
    ));
    out
}

/// One row per partition: topic, partition and four numbers, under `columns`.
fn partition_table<'a>(
    out: &mut String,
    columns: [&str; 4],
    rows: impl Iterator<Item = (&'a str, i32, [String; 4])> + Clone,
) {
    let width = rows.clone().map(|(topic, _, _)| topic.len()).max().unwrap_or(5).max(5);
    let [a, b, c, d] = columns;
    out.push_str(&format!(
        "{:<width$}  {:>9}  {a:>12}  {b:>12}  {c:>12}  {d:>10}\n",
        "TOPIC", "PARTITION"
    ));
    for (topic, partition, [a, b, c, d]) in rows {
        out.push_str(&format!(
            "{topic:<width$}  {partition:>9}  {a:>12}  {b:>12}  {c:>12}  {d:>10}\n"
        ));
    }
}

/// A reset plan as text: before and after per partition, and Kafka's own command (also the
/// monitor's confirmation).
#[must_use]
pub fn render_plan(plan: &ResetPlan) -> String {
    let mut out = format!("reset of group {}\n", plan.group);
    if let Some(note) = &plan.note {
        out.push_str(&format!("{note}\n"));
    }
    if plan.partitions.is_empty() {
        out.push_str("no partitions to reset (the group committed on none; name one with --topic)\n");
    } else {
        partition_table(
            &mut out,
            ["BEFORE", "AFTER", "HIGH", "LAG AFTER"],
            plan.partitions.iter().map(|p| {
                let before = p.before.map_or_else(|| "-".to_string(), |c| c.to_string());
                (
                    p.topic.as_str(),
                    p.partition,
                    [before, p.after.to_string(), p.high.to_string(), p.lag_after.to_string()],
                )
            }),
        );
    }
    out.push_str(&format!(
        "with Kafka's own tool:\n  {}\n  (--execute instead of --dry-run applies it)\n",
        plan.command
    ));
    out
}

/// Text from a record (its value, key, headers, a reason quoting it) made safe for a terminal:
/// control characters, escape sequences above all, are written out as `\u{1b}` instead of being
/// sent to the terminal, where a hostile record could recolour, retitle or clear it. Newlines and
/// tabs stay when `multiline`.
fn printable(text: &str, multiline: bool) -> String {
    text.chars()
        .map(|c| match c {
            '\n' | '\t' if multiline => c.to_string(),
            c if c.is_control() => c.escape_unicode().to_string(),
            c => c.to_string(),
        })
        .collect()
}

fn render_tail(t: &Tail) -> String {
    let mut out = String::new();
    for r in &t.records {
        out.push_str(&format!(
            "{}[{}] @{}  {}  key {}\n",
            t.topic,
            r.partition,
            r.offset,
            r.timestamp.as_deref().unwrap_or("-"),
            r.key.as_deref().map_or("-".into(), |k| printable(k, false))
        ));
        for (name, value) in &r.headers {
            out.push_str(&format!("  {}: {}\n", printable(name, false), printable(value, false)));
        }
        // A value that is not JSON is shown as the text it is, not as a quoted JSON string.
        let value = match &r.value {
            serde_json::Value::String(text) => printable(text, true),
            json => serde_json::to_string_pretty(json).unwrap_or_default(),
        };
        for line in value.lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    let ranges: Vec<String> = t
        .ranges
        .iter()
        .map(|(p, (first, end))| format!("[{p}] {first}..{end}"))
        .collect();
    out.push_str(&format!(
        "{} record(s) shown; {} matched of {} scanned (offsets {})\n",
        t.records.len(),
        t.matched,
        t.scanned,
        ranges.join(", ")
    ));
    out
}

fn render_summary(s: &Summary) -> String {
    let mut out = format!("{}: {} dead letter(s)\n", s.topic, s.dead_letters);
    for r in &s.reasons {
        out.push_str(&format!(
            "\n{}  {} record(s), first {}, last {}\n",
            r.code,
            r.count,
            r.first_seen.as_deref().unwrap_or("-"),
            r.last_seen.as_deref().unwrap_or("-")
        ));
        let h = &r.example.headers;
        let get = |name: &str| h.get(name).map_or("-", String::as_str);
        out.push_str(&format!("  e.g. {}\n", printable(get("lab.reason"), false)));
        out.push_str(&format!(
            "  from {}[{}]@{}  {}\n",
            printable(get("lab.source.topic"), false),
            get("lab.source.partition"),
            get("lab.source.offset"),
            printable(get("lab.source"), false)
        ));
        let value = match &r.example.value {
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        let excerpt = printable(&value.chars().take(160).collect::<String>(), false);
        out.push_str(&format!("  {excerpt}\n"));
    }
    if !s.reasons.is_empty() {
        out.push_str("\n`lab dlq show REASON` lists them; `lab dlq replay REASON` sends them back after a fix\n");
    }
    out
}

/// What a replay sent or would send, as text (also the monitor's confirmation).
#[must_use]
pub fn render_replay(r: &Replay) -> String {
    let verb = if r.dry_run { "would replay" } else { "replayed" };
    let mut out = format!("{verb} {} dead letter(s) of {}", r.replayed, r.code);
    let topics: Vec<String> = r.to_topics.iter().map(|(t, n)| format!("{n} to {t}")).collect();
    if !topics.is_empty() {
        out.push_str(&format!(" ({})", topics.join(", ")));
    }
    out.push('\n');
    if r.already_replayed > 0 {
        out.push_str(&format!(
            "{} replayed before (consumer group {})\n",
            r.already_replayed, r.group
        ));
    }
    if r.skipped > 0 {
        out.push_str(&format!(
            "{} left out: excerpts of records too large for Kafka, or without a source topic\n",
            r.skipped
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka_tools::dlq::Reason;
    use crate::kafka_tools::tail::ShownRecord;
    use std::collections::BTreeMap;

    /// A dead letter as a hostile producer could make it: escape sequences (recolour, retitle the
    /// window, clear the screen, ring the bell) in its bytes, its key and the reason quoting it.
    fn hostile() -> ShownRecord {
        let evil = "x\u{1b}[2J\u{1b}]0;pwned\u{7}y";
        ShownRecord {
            partition: 0,
            offset: 7,
            timestamp: None,
            timestamp_ms: 0,
            key: Some(evil.into()),
            headers: BTreeMap::from([
                ("lab.reason".into(), format!("bad_date: date \"{evil}\" is not a date")),
                ("lab.source".into(), format!("/data/{evil}.json:3")),
            ]),
            value: serde_json::Value::String(format!("{{\"date\":\"{evil}\",\n\t\"stars\":")),
        }
    }

    #[test]
    fn records_reach_the_terminal_with_their_control_characters_written_out() {
        let tail = Tail {
            topic: "t".into(),
            scanned: 1,
            matched: 1,
            ranges: BTreeMap::from([(0, (7, 8))]),
            records: vec![hostile()],
        };
        let summary = Summary {
            topic: "t.dlq".into(),
            dead_letters: 1,
            reasons: vec![Reason {
                code: "bad_date".into(),
                count: 1,
                first_seen: None,
                last_seen: None,
                example: hostile(),
            }],
        };
        for shown in [render_tail(&tail), render_summary(&summary)] {
            assert!(!shown.contains(['\u{1b}', '\u{7}']), "{shown:?}");
            assert!(shown.contains(r"x\u{1b}[2J\u{1b}]0;pwned\u{7}y"), "{shown}");
        }
        // A value that is not JSON reads as its text: quotes as they are, its own line breaks.
        let shown = render_tail(&tail);
        assert!(shown.contains("  {\"date\":\"x\\u{1b}[2J"), "{shown}");
        assert!(shown.contains("\n  \t\"stars\":"), "{shown}");
    }
}
