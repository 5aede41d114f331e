//! A consumer group's committed offsets, and resetting them as `kafka-consumer-groups.sh
//! --reset-offsets` does: to the earliest or latest record, to a time, or shifted by N, per topic
//! or partition. Every reset is planned first (offsets before and after, and the equivalent
//! `kafka-consumer-groups.sh` command line, so a student learns the real tool), and applied only to
//! a group with no connected member: a live member would commit its own position over the reset.
//! A broker that cannot list groups (the embedded lab's) takes the reset from a member of the
//! group: see [`apply`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, SecondsFormat};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::Serialize;

use super::{KafkaToolError, REQUEST_TIMEOUT};
use crate::pipeline::kafka::partition_lag;

/// One partition of a group's offsets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionOffsets {
    pub topic: String,
    pub partition: i32,
    /// Next offset the group reads; `None` when it never committed here.
    pub committed: Option<i64>,
    pub low: i64,
    pub high: i64,
    pub lag: i64,
    /// What the committer stored with the offset (the lab's stages keep their raw-zone epoch or
    /// delivery mode there); a reset keeps it.
    pub metadata: String,
}

/// A group's committed offsets over every partition it committed on, and who is connected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupOffsets {
    pub group: String,
    /// As the coordinator reports it (`Stable`, `Empty`, …).
    pub state: String,
    /// `client_id@host` of each connected member.
    pub members: Vec<String>,
    pub partitions: Vec<PartitionOffsets>,
    /// Why the state and members are not known (a broker that cannot list groups).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Where a reset moves the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResetTo {
    Earliest,
    Latest,
    /// The first record at or after this time (the end of the partition when there is none).
    Datetime(DateTime<FixedOffset>),
    /// The committed offset plus N (negative: back), kept within the partition's records.
    ShiftBy(i64),
}

impl ResetTo {
    /// `kafka-consumer-groups.sh`'s option for this reset.
    fn option(&self) -> String {
        match self {
            ResetTo::Earliest => "--to-earliest".into(),
            ResetTo::Latest => "--to-latest".into(),
            ResetTo::Datetime(t) => format!("--to-datetime {}", t.to_rfc3339_opts(SecondsFormat::Millis, false)),
            ResetTo::ShiftBy(n) => format!("--shift-by {n}"),
        }
    }
}

/// Parses `--to-datetime` and `--since` as [`crate::time_arg::parse_time`] reads a time.
pub fn parse_datetime(text: &str) -> Result<DateTime<FixedOffset>, KafkaToolError> {
    crate::time_arg::parse_time(text).ok_or_else(|| {
        KafkaToolError::Input(format!(
            "{text}: not a time; write it as {}",
            crate::time_arg::TIME_FORMATS
        ))
    })
}

/// Which partitions a reset covers: every one the group committed on, a topic's, or one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub topic: Option<String>,
    pub partition: Option<i32>,
}

impl Scope {
    /// Parses `--topic T[:P]`, as `kafka-consumer-groups.sh` writes it.
    pub fn parse(text: &str) -> Result<Self, KafkaToolError> {
        match text.rsplit_once(':') {
            Some((topic, p)) if !topic.is_empty() => {
                let partition = p
                    .parse()
                    .map_err(|_| KafkaToolError::Input(format!("--topic {text}: write TOPIC or TOPIC:PARTITION")))?;
                Ok(Scope {
                    topic: Some(topic.into()),
                    partition: Some(partition),
                })
            }
            _ if text.is_empty() => Err(KafkaToolError::Input("--topic: empty topic name".into())),
            _ => Ok(Scope {
                topic: Some(text.into()),
                partition: None,
            }),
        }
    }

    fn option(&self) -> String {
        match (&self.topic, self.partition) {
            (Some(t), Some(p)) => format!("--topic {t}:{p}"),
            (Some(t), None) => format!("--topic {t}"),
            _ => "--all-topics".into(),
        }
    }
}

/// One partition of a planned reset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedOffset {
    pub topic: String,
    pub partition: i32,
    pub before: Option<i64>,
    pub after: i64,
    pub high: i64,
    /// The group's lag once the reset is applied.
    pub lag_after: i64,
    #[serde(skip)]
    pub(crate) metadata: String,
}

/// A reset worked out against the broker, not applied yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResetPlan {
    pub group: String,
    pub members: Vec<String>,
    pub partitions: Vec<PlannedOffset>,
    /// The same reset with Kafka's own tool (`--dry-run`; `--execute` applies it).
    pub command: String,
    /// Why the connected members are not known, and how applying checks for them instead (a
    /// broker that cannot list groups).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A client of the group that never joins it: it reads and commits offsets only.
fn group_client(brokers: &str, group: &str) -> Result<BaseConsumer, KafkaToolError> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| KafkaToolError::kafka("create a client", brokers, e))
}

/// The group's state and connected members, from the group coordinator; `None` from a broker
/// that cannot list groups (librdkafka's mock cluster, the embedded lab's broker).
fn describe(
    client: &BaseConsumer,
    brokers: &str,
    group: &str,
) -> Result<Option<(String, Vec<String>)>, KafkaToolError> {
    let list = match client.fetch_group_list(Some(group), REQUEST_TIMEOUT) {
        Ok(list) => list,
        Err(KafkaError::GroupListFetch(RDKafkaErrorCode::UnsupportedFeature)) => return Ok(None),
        Err(e) => {
            return Err(KafkaToolError::kafka(
                &format!("describe consumer group {group}"),
                brokers,
                e,
            ));
        }
    };
    let Some(info) = list.groups().iter().find(|g| g.name() == group) else {
        return Ok(Some((DEAD.into(), Vec::new())));
    };
    let members = info
        .members()
        .iter()
        .map(|m| format!("{}@{}", m.client_id(), m.client_host()))
        .collect();
    Ok(Some((info.state().to_string(), members)))
}

/// The state a broker gives a group it does not know (Kafka's `GroupState.DEAD`).
const DEAD: &str = "Dead";

/// For a group the broker does not know and that committed nothing: which groups it does know,
/// since a mistyped name otherwise reads as an empty group.
fn unknown_group_note(client: &BaseConsumer, brokers: &str, group: &str) -> String {
    let known: Vec<String> = client
        .fetch_group_list(None, REQUEST_TIMEOUT)
        .map(|list| list.groups().iter().map(|g| g.name().to_string()).collect())
        .unwrap_or_default();
    let known = if known.is_empty() {
        "none".to_string()
    } else {
        known.join(", ")
    };
    format!("the broker at {brokers} knows no consumer group named {group}; its groups: {known}")
}

/// A partition's (low, high) watermarks.
type Watermarks = (i64, i64);

/// Every partition of every topic but the broker's internal ones, with its watermarks.
fn partitions(
    client: &BaseConsumer,
    brokers: &str,
    topic: Option<&str>,
) -> Result<BTreeMap<(String, i32), Watermarks>, KafkaToolError> {
    let meta = client
        .fetch_metadata(topic, REQUEST_TIMEOUT)
        .map_err(|e| KafkaToolError::kafka("read the topics", brokers, e))?;
    let mut tpl = TopicPartitionList::new();
    for t in meta.topics() {
        if t.name().starts_with("__") || t.error().is_some() {
            continue;
        }
        for p in t.partitions() {
            tpl.add_partition(t.name(), p.id());
        }
    }
    if let Some(topic) = topic
        && tpl.count() == 0
    {
        return Err(KafkaToolError::Input(format!(
            "topic {topic} does not exist on {brokers} (`lab status` lists the topics)"
        )));
    }
    let mut earliest = tpl.clone();
    let mut latest = tpl;
    earliest
        .set_all_offsets(Offset::Beginning)
        .and_then(|()| latest.set_all_offsets(Offset::End))
        .map_err(|e| KafkaToolError::kafka("read the watermarks", brokers, e))?;
    let low = client
        .offsets_for_times(earliest, REQUEST_TIMEOUT)
        .map_err(|e| KafkaToolError::kafka("read the low watermarks", brokers, e))?;
    let high = client
        .offsets_for_times(latest, REQUEST_TIMEOUT)
        .map_err(|e| KafkaToolError::kafka("read the high watermarks", brokers, e))?;
    let mut out = BTreeMap::new();
    for e in low.elements() {
        let l = e.offset().to_raw().unwrap_or(0).max(0);
        let h = high
            .find_partition(e.topic(), e.partition())
            .and_then(|h| h.offset().to_raw())
            .unwrap_or(l)
            .max(l);
        out.insert((e.topic().to_string(), e.partition()), (l, h));
    }
    Ok(out)
}

/// The group's offsets: every partition it committed on, with watermarks and lag.
pub fn read_group(brokers: &str, group: &str) -> Result<GroupOffsets, KafkaToolError> {
    let client = group_client(brokers, group)?;
    // Reading offsets needs no member list: a broker that cannot list groups (the embedded lab's)
    // still answers with the committed offsets, and the output says what it could not tell.
    let (state, members, note) = match describe(&client, brokers, group)? {
        Some((state, members)) => (state, members, None),
        None => (
            "unknown".to_string(),
            Vec::new(),
            Some(format!(
                "the broker at {brokers} cannot list consumer groups: the group's state and members are not known \
                 (the embedded lab's in-process broker, librdkafka's mock cluster, is such a broker)"
            )),
        ),
    };
    let partitions: Vec<PartitionOffsets> = committed(&client, brokers, group, None)?
        .into_iter()
        .filter(|p| p.committed.is_some())
        .collect();
    let note = match note {
        None if state == DEAD && partitions.is_empty() => Some(unknown_group_note(&client, brokers, group)),
        note => note,
    };
    Ok(GroupOffsets {
        group: group.to_string(),
        state,
        members,
        partitions,
        note,
    })
}

/// The group's committed offset (or none) on every partition of `topic`, or of every topic.
fn committed(
    client: &BaseConsumer,
    brokers: &str,
    group: &str,
    topic: Option<&str>,
) -> Result<Vec<PartitionOffsets>, KafkaToolError> {
    let watermarks = partitions(client, brokers, topic)?;
    let mut tpl = TopicPartitionList::new();
    for (t, p) in watermarks.keys() {
        tpl.add_partition(t, *p);
    }
    let committed = client
        .committed_offsets(tpl, REQUEST_TIMEOUT)
        .map_err(|e| KafkaToolError::kafka(&format!("read the committed offsets of group {group}"), brokers, e))?;
    Ok(watermarks
        .into_iter()
        .map(|((topic, partition), (low, high))| {
            let elem = committed.find_partition(&topic, partition);
            let offset = match elem
                .as_ref()
                .map(rdkafka::topic_partition_list::TopicPartitionListElem::offset)
            {
                Some(Offset::Offset(o)) => Some(o),
                _ => None,
            };
            PartitionOffsets {
                lag: partition_lag(offset, low, high),
                metadata: elem.map(|e| e.metadata().to_string()).unwrap_or_default(),
                topic,
                partition,
                committed: offset,
                low,
                high,
            }
        })
        .collect())
}

/// Works out a reset against the broker's current offsets, changing nothing.
pub fn plan_reset(brokers: &str, group: &str, to: &ResetTo, scope: &Scope) -> Result<ResetPlan, KafkaToolError> {
    let client = group_client(brokers, group)?;
    let (state, members, note) = match describe(&client, brokers, group)? {
        Some((state, members)) => (Some(state), members, None),
        None => (
            None,
            Vec::new(),
            Some(format!(
                "the broker at {brokers} cannot list consumer groups, so who is connected is not known: applying \
                 joins the group and waits up to {} s to be given these partitions, refused if another member \
                 keeps one (a stage that stopped keeps its partitions until its session times out, 30 s here)",
                JOIN_PATIENCE.as_secs()
            )),
        ),
    };
    let chosen: Vec<PartitionOffsets> = committed(&client, brokers, group, scope.topic.as_deref())?
        .into_iter()
        // Without a topic, the partitions the group committed on (Kafka's `--all-topics`); with
        // one, all of its partitions (or the one named).
        .filter(|p| scope.topic.is_some() || p.committed.is_some())
        .filter(|p| scope.partition.is_none_or(|want| want == p.partition))
        .collect();
    if let (Some(topic), Some(partition)) = (&scope.topic, scope.partition)
        && chosen.is_empty()
    {
        return Err(KafkaToolError::Input(format!("{topic} has no partition {partition}")));
    }
    let note = match note {
        None if state.as_deref() == Some(DEAD) && chosen.is_empty() => {
            Some(unknown_group_note(&client, brokers, group))
        }
        note => note,
    };
    let by_time = match to {
        ResetTo::Datetime(t) => super::offsets_at(
            &client,
            brokers,
            chosen.iter().map(|p| (p.topic.as_str(), p.partition)),
            t,
        )?,
        _ => BTreeMap::new(),
    };
    let mut planned = Vec::with_capacity(chosen.len());
    for p in chosen {
        let target = match to {
            ResetTo::Earliest => p.low,
            ResetTo::Latest => p.high,
            // No record at or after that time: the end, as Kafka's tool does.
            ResetTo::Datetime(_) => by_time
                .get(&(p.topic.clone(), p.partition))
                .copied()
                .flatten()
                .unwrap_or(p.high),
            ResetTo::ShiftBy(n) => match p.committed {
                Some(c) => c.saturating_add(*n),
                None => {
                    return Err(KafkaToolError::NothingToShift {
                        group: group.to_string(),
                        topic: p.topic,
                        partition: p.partition,
                    });
                }
            },
        };
        let after = target.clamp(p.low, p.high);
        planned.push(PlannedOffset {
            lag_after: partition_lag(Some(after), p.low, p.high),
            topic: p.topic,
            partition: p.partition,
            before: p.committed,
            after,
            high: p.high,
            metadata: p.metadata,
        });
    }
    Ok(ResetPlan {
        command: format!(
            "kafka-consumer-groups.sh --bootstrap-server {brokers} --group {group} --reset-offsets {} {} --dry-run",
            to.option(),
            scope.option()
        ),
        group: group.to_string(),
        members,
        partitions: planned,
        note,
    })
}

/// Commits a plan's offsets for the group, keeping each partition's commit metadata, after
/// checking again that no member is connected. On a broker that cannot list groups the reset is
/// committed by a member of the group instead ([`commit_as_member`]).
pub fn apply(brokers: &str, plan: &ResetPlan) -> Result<(), KafkaToolError> {
    let client = group_client(brokers, &plan.group)?;
    match describe(&client, brokers, &plan.group)? {
        Some((_, members)) if !members.is_empty() => {
            return Err(KafkaToolError::ActiveMembers {
                group: plan.group.clone(),
                members,
            });
        }
        Some(_) => {}
        None => {
            drop(client);
            return apply_as_member(brokers, plan);
        }
    }
    if plan.partitions.is_empty() {
        return Ok(());
    }
    client
        .commit(&planned_offsets(brokers, plan)?, CommitMode::Sync)
        .map_err(|e| commit_failed(brokers, plan, e))
}

/// The plan's offsets, each with the commit metadata it had.
fn planned_offsets(brokers: &str, plan: &ResetPlan) -> Result<TopicPartitionList, KafkaToolError> {
    let mut tpl = TopicPartitionList::new();
    for p in &plan.partitions {
        tpl.add_partition_offset(&p.topic, p.partition, Offset::Offset(p.after))
            .map_err(|e| KafkaToolError::kafka("build the offsets to commit", brokers, e))?;
    }
    for mut elem in tpl.elements() {
        if let Some(p) = plan
            .partitions
            .iter()
            .find(|p| p.topic == elem.topic() && p.partition == elem.partition())
            && !p.metadata.is_empty()
        {
            elem.set_metadata(&p.metadata);
        }
    }
    Ok(tpl)
}

fn commit_failed(brokers: &str, plan: &ResetPlan, e: impl std::fmt::Display) -> KafkaToolError {
    KafkaToolError::kafka(&format!("commit the new offsets of group {}", plan.group), brokers, e)
}

/// How long a reset on a broker that cannot list groups waits to be given the partitions it
/// moves. The mock cluster answers a join of the consumer protocol at once and a classic one after
/// its 3 s initial rebalance delay, but a member that stopped keeps its partitions until its
/// session times out: 30 s for a static member of the consumer protocol there (the embedded lab's
/// stages; `group_consumer_session_timeout_ms` in `rdkafka_mock.c`), 10 s for the lab's classic
/// members. A partition another member reads never comes.
const JOIN_PATIENCE: Duration = Duration::from_secs(35);

/// The two ways to be a member of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// KIP-848's consumer protocol: the embedded lab's stages use it on the mock cluster.
    Consumer,
    /// The classic protocol: the command-line stages use it, on every broker.
    Classic,
}

/// Applies a reset on a broker that cannot list groups: librdkafka's mock cluster keeps a group it
/// has seen until it stops, and takes a commit for it only from one of its members
/// (`rd_kafka_mock_handle_OffsetCommit` in `rdkafka_mock_handlers.c`). The reset joins with the
/// consumer protocol first; a group the mock knows as a classic one refuses that member's commit
/// (it looks a member up in the classic groups first), and the reset joins again, classic.
fn apply_as_member(brokers: &str, plan: &ResetPlan) -> Result<(), KafkaToolError> {
    if plan.partitions.is_empty() {
        return Ok(());
    }
    match commit_as_member(brokers, plan, Protocol::Consumer)? {
        Joined::Committed => Ok(()),
        Joined::NotAMember => {
            tracing::debug!(group = %plan.group, "a classic group: joining it with the classic protocol");
            match commit_as_member(brokers, plan, Protocol::Classic)? {
                Joined::Committed => Ok(()),
                Joined::NotAMember => Err(commit_failed(
                    brokers,
                    plan,
                    "the broker refused them from a member of the group (unknown member id), joined either way",
                )),
            }
        }
    }
}

/// How a member's commit ended.
enum Joined {
    Committed,
    /// The broker does not count the member as one of the group's: the group is of the other
    /// protocol.
    NotAMember,
}

/// Joins the group with `protocol`, subscribed to the plan's topics, and commits the plan once the
/// group gave this member every partition the plan moves, then leaves. A partition that went to
/// someone else means another member reads there and would commit over the reset: refused,
/// nothing committed.
fn commit_as_member(brokers: &str, plan: &ResetPlan, protocol: Protocol) -> Result<Joined, KafkaToolError> {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", brokers)
        .set("group.id", &plan.group)
        .set("client.id", "lab-kafka-reset")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false");
    match protocol {
        Protocol::Consumer => cfg.set("group.protocol", "consumer"),
        // A member that died unannounced keeps its partitions this long (the lab's stages' value).
        Protocol::Classic => cfg.set("session.timeout.ms", "10000"),
    };
    let member: BaseConsumer = cfg
        .create()
        .map_err(|e| KafkaToolError::kafka("create a member of the group", brokers, e))?;
    let wanted: BTreeSet<(String, i32)> = plan.partitions.iter().map(|p| (p.topic.clone(), p.partition)).collect();
    let topics: BTreeSet<&str> = wanted.iter().map(|(t, _)| t.as_str()).collect();
    member
        .subscribe(&topics.into_iter().collect::<Vec<_>>())
        .map_err(|e| KafkaToolError::kafka(&format!("join consumer group {}", plan.group), brokers, e))?;
    let deadline = Instant::now() + JOIN_PATIENCE;
    let held = loop {
        // Serves the join. Records it fetches are dropped unread: nothing stores or commits them.
        // librdkafka hands the application only the group errors it will not retry itself (an
        // authorization failure, say: `rd_kafka_cgrp_handle_FindCoordinator` in
        // `rdkafka_cgrp.c`), so the first one ends the join; waiting on would end in
        // `PartitionsHeld` and blame a member that may not exist.
        if let Some(Err(e)) = member.poll(Duration::from_millis(100)) {
            leave(&member);
            return Err(KafkaToolError::kafka(
                &format!(
                    "join consumer group {} to reset its offsets (nothing was changed)",
                    plan.group
                ),
                brokers,
                e,
            ));
        }
        let held = assigned(&member);
        if wanted.is_subset(&held) || Instant::now() >= deadline {
            break held;
        }
    };
    let done = if wanted.is_subset(&held) {
        match member.commit(&planned_offsets(brokers, plan)?, CommitMode::Sync) {
            Ok(()) => Ok(Joined::Committed),
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::UnknownMemberId)) => Ok(Joined::NotAMember),
            Err(e) => Err(commit_failed(brokers, plan, e)),
        }
    } else {
        Err(KafkaToolError::PartitionsHeld {
            group: plan.group.clone(),
            brokers: brokers.to_string(),
            partitions: wanted.difference(&held).map(|(t, p)| format!("{t}[{p}]")).collect(),
            waited_s: JOIN_PATIENCE.as_secs(),
        })
    };
    leave(&member);
    done
}

/// The partitions the group gave this member.
fn assigned(member: &BaseConsumer) -> BTreeSet<(String, i32)> {
    member
        .assignment()
        .map(|a| {
            a.elements()
                .iter()
                .map(|e| (e.topic().to_string(), e.partition()))
                .collect()
        })
        .unwrap_or_default()
}

/// Leaves the group and gives back its partitions before the client closes, so the group's next
/// member takes them at once.
fn leave(member: &BaseConsumer) {
    member.unsubscribe();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !assigned(member).is_empty() && Instant::now() < deadline {
        drop(member.poll(Duration::from_millis(100)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A group the broker will not let this client join (authorization, here pushed as the mock
    /// cluster's answer to every FindCoordinator) fails the reset with the broker's reason, not
    /// with "partitions stayed with another member" after [`JOIN_PATIENCE`].
    #[test]
    fn a_join_the_broker_refuses_fails_the_reset_with_its_reason() {
        use rdkafka::mocking::MockCluster;
        use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
        let mock = MockCluster::new(1).unwrap();
        mock.create_topic("yelp.review.clean", 2, 1).unwrap();
        // More refusals than the 35 s of patience has coordinator queries (one a second).
        mock.request_errors(
            RDKafkaApiKey::FindCoordinator,
            &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED; 200],
        );
        let brokers = mock.bootstrap_servers();
        let plan = ResetPlan {
            group: "lab-consume".into(),
            members: vec![],
            partitions: (0..2)
                .map(|partition| PlannedOffset {
                    topic: "yelp.review.clean".into(),
                    partition,
                    before: None,
                    after: 0,
                    high: 0,
                    lag_after: 0,
                    metadata: String::new(),
                })
                .collect(),
            command: String::new(),
            note: None,
        };
        match apply_as_member(&brokers, &plan) {
            Err(KafkaToolError::Kafka { action, detail, .. }) => {
                assert!(action.contains("join consumer group lab-consume"), "{action}");
                assert!(detail.to_lowercase().contains("authoriz"), "{detail}");
            }
            other => panic!("expected the broker's refusal, got {other:?}"),
        }
    }

    #[test]
    fn topic_scopes_parse_as_kafkas_tool_writes_them() {
        assert_eq!(
            Scope::parse("yelp.review").unwrap(),
            Scope {
                topic: Some("yelp.review".into()),
                partition: None
            }
        );
        assert_eq!(
            Scope::parse("yelp.review:2").unwrap(),
            Scope {
                topic: Some("yelp.review".into()),
                partition: Some(2)
            }
        );
        assert!(Scope::parse("yelp.review:x").is_err());
        assert!(Scope::parse("").is_err());
        assert_eq!(Scope::parse("yelp.review:2").unwrap().option(), "--topic yelp.review:2");
        assert_eq!(Scope::default().option(), "--all-topics");
    }

    #[test]
    fn times_parse_with_or_without_a_zone_and_print_for_kafkas_tool() {
        let utc = parse_datetime("2026-12-03T10:00").unwrap();
        assert_eq!(utc.timestamp(), 1_796_292_000);
        assert_eq!(parse_datetime("2026-12-03T10:00:00Z").unwrap(), utc);
        assert_eq!(
            parse_datetime("2026-12-03T11:00:00+01:00").unwrap().timestamp(),
            utc.timestamp()
        );
        assert!(parse_datetime("yesterday").is_err());
        assert_eq!(
            ResetTo::Datetime(utc).option(),
            "--to-datetime 2026-12-03T10:00:00.000+00:00"
        );
        assert_eq!(ResetTo::ShiftBy(-5).option(), "--shift-by -5");
    }
}
