//! Kafka: brokers, topics with per-partition watermarks, consumer groups with committed offsets
//! and lag, message rates from watermark deltas, DLQ size — through librdkafka's metadata, offset
//! and group APIs.
//!
//! librdkafka calls block, so a poll runs on a blocking thread. Watermarks are read through a
//! group-less client (a group member's connection is busy with long-polling fetches), committed
//! offsets through one group-id client per group that never joins the group (an OffsetFetch only).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use super::kafka_census::{Census, TopicCensus};
use super::kafka_cluster::{self, ClusterHealth, NO_LEADER, ReplicaMap};
use super::{LabService, ProbeError, Probed, REQUEST_TIMEOUT};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KafkaSnapshot {
    pub brokers: Vec<Broker>,
    pub topics: Vec<Topic>,
    pub groups: Vec<Group>,
    pub dlq_topic: String,
    /// Dead letters currently held by the DLQ topic: its offsets (high − low, summed) less the
    /// transaction markers the census counted there ([`Topic::records`]).
    pub dlq_messages: i64,
    /// Replication across the brokers: per-broker load, under-replicated and offline partitions,
    /// ISR and leader changes since the previous poll.
    #[serde(default)]
    pub cluster: ClusterHealth,
}

impl KafkaSnapshot {
    /// The lag of every consumer group, summed.
    #[must_use]
    pub fn total_lag(&self) -> i64 {
        self.groups.iter().map(|g| g.total_lag).sum()
    }

    /// How far `dlq_messages` can be trusted: the transform writes dead letters in its
    /// transactions, so the DLQ's offsets hold a marker per partition per transaction that the
    /// marker census must count out. A one-shot `lab status` never waits for it.
    #[must_use]
    pub fn dlq_count(&self) -> DlqCount {
        match self.topics.iter().find(|t| t.name == self.dlq_topic) {
            Some(t) if t.messages > 0 && t.not_records.is_none() => DlqCount::Offsets(self.dlq_messages),
            Some(t) if t.messages > 0 && !t.census_complete => DlqCount::AtMost(self.dlq_messages),
            _ => DlqCount::Exact(self.dlq_messages),
        }
    }

    /// The DLQ's size as shown: `18`, `≤21` while the census has not read its newest offsets,
    /// `22 offsets` before it has read any of it.
    #[must_use]
    pub fn dlq_shown(&self, count: impl Fn(i64) -> String) -> String {
        match self.dlq_count() {
            DlqCount::Exact(n) => count(n),
            DlqCount::AtMost(n) => format!("≤{}", count(n)),
            DlqCount::Offsets(n) => format!("{} offsets", count(n)),
        }
    }
}

/// The DLQ's dead letters, as exactly as the marker census has counted them so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DlqCount {
    /// Read to its end: dead letters, no markers.
    Exact(i64),
    /// The markers found so far counted out; newer offsets may hold more.
    AtMost(i64),
    /// Not read yet: offsets, markers included.
    Offsets(i64),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Broker {
    pub id: i32,
    pub host: String,
    pub port: i32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Topic {
    pub name: String,
    pub partitions: Vec<Partition>,
    /// Records held (high − low, summed over partitions).
    pub messages: i64,
    /// Records appended per second since the previous poll (`None` on the first).
    pub rate_in: Option<f64>,
    /// Offsets that hold no record (transaction markers, aborted records) among those the marker
    /// census has read (see [`super::kafka_census`]); `None` before it read this topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_records: Option<i64>,
    /// The census has read every partition to its end: `not_records` is exact, not a lower bound.
    #[serde(default)]
    pub census_complete: bool,
}

impl Topic {
    /// Records a reader gets: the offsets held less the markers and aborted records counted.
    #[must_use]
    pub fn records(&self) -> i64 {
        self.messages - self.not_records.unwrap_or(0)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    pub id: i32,
    /// The leading broker's id; [`kafka_cluster::NO_LEADER`] when the partition is offline.
    pub leader: i32,
    pub low: i64,
    pub high: i64,
    /// Brokers assigned a replica, the preferred leader first (as the metadata lists them).
    #[serde(default)]
    pub replicas: Vec<i32>,
    /// The replicas in sync with the leader.
    #[serde(default)]
    pub isr: Vec<i32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub name: String,
    /// As the coordinator reports it: `Stable`, `Empty`, `PreparingRebalance`…
    pub state: String,
    pub members: Vec<Member>,
    pub partitions: Vec<GroupPartition>,
    pub total_lag: i64,
    /// Records committed per second since the previous poll.
    pub rate: Option<f64>,
    /// Seconds until the lag is consumed at the current rate (`Some(0.0)` when caught up).
    pub catch_up_s: Option<f64>,
    /// How the lab's transform in this group delivers (`exactly-once`, `at-least-once`), as its
    /// last offset commit says (see `pipeline::transform`); `None` for other groups.
    #[serde(default)]
    pub delivery: Option<String>,
}

/// One member of a group: for the lab's stages, one worker (its client id is its member name,
/// see `pipeline::group`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub id: String,
    pub client_id: String,
    pub host: String,
    /// The partitions the group's current assignment gives this member, as (topic, partition).
    #[serde(default)]
    pub partitions: Vec<(String, i32)>,
    /// Its partitions' lag, summed.
    #[serde(default)]
    pub lag: i64,
    /// Records committed per second on its partitions since the previous poll.
    #[serde(default)]
    pub rate: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupPartition {
    pub topic: String,
    pub partition: i32,
    /// Next offset the group will read; `None` when it never committed on this partition.
    pub committed: Option<i64>,
    pub high: i64,
    pub lag: i64,
}

/// Decodes a consumer-protocol `MemberAssignment` (version, [topic, [partition]], user data).
#[must_use]
pub fn decode_assignment(bytes: &[u8]) -> Vec<(String, Vec<i32>)> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if b.len() < n {
            return None;
        }
        let (head, tail) = b.split_at(n);
        *b = tail;
        Some(head)
    }
    fn i16_(b: &mut &[u8]) -> Option<i16> {
        take(b, 2).map(|s| i16::from_be_bytes([s[0], s[1]]))
    }
    fn i32_(b: &mut &[u8]) -> Option<i32> {
        take(b, 4).map(|s| i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    let mut b = bytes;
    let mut out = Vec::new();
    let parse = |b: &mut &[u8], out: &mut Vec<(String, Vec<i32>)>| -> Option<()> {
        i16_(b)?;
        let topics = i32_(b)?;
        for _ in 0..topics.max(0) {
            let len = usize::try_from(i16_(b)?).ok()?;
            let name = String::from_utf8_lossy(take(b, len)?).into_owned();
            let n = i32_(b)?;
            let mut parts = Vec::new();
            for _ in 0..n.max(0) {
                parts.push(i32_(b)?);
            }
            out.push((name, parts));
        }
        Some(())
    };
    // A truncated assignment keeps what decoded cleanly.
    let _ = parse(&mut b, &mut out);
    out
}

/// What one blocking read of the cluster returns, before rates are known.
struct RawRead {
    brokers: Vec<Broker>,
    topics: Vec<Topic>,
    groups: Vec<Group>,
    problems: Vec<String>,
}

struct Clients {
    brokers: String,
    /// Groups to read by name instead of listing them (see [`KafkaProbe::on_embedded_broker`]).
    known_groups: Vec<String>,
    /// Group-less: metadata, watermarks and the group list.
    meta: BaseConsumer,
    /// One client per group id, used for OffsetFetch only.
    by_group: Mutex<HashMap<String, Arc<BaseConsumer>>>,
}

/// What the previous polls leave for rates.
struct Previous {
    at: Instant,
    topic_high: HashMap<String, i64>,
    /// Per (group, topic, partition): the groups' and their members' rates.
    partition_pace: HashMap<(String, String, i32), CommitPace>,
}

/// A group that commits nothing for this long after its first sight, or twice its last step, is
/// not consuming (stopped, or caught up).
const QUIET_AFTER: Duration = Duration::from_secs(3);

/// How fast a committed offset moves. A group commits in steps: the transform every batch, the
/// consumer once per raw-zone file (every 5 s in the monitor's stages, 30 s on the CLI). A rate
/// from one poll to the next would read 0 between the consumer's steps and a burst at each (the
/// Overview's `read` swung between 200/s and 875/s in `lab demo`). So: the records of the last
/// step over the time since the step before, held until the group has been quiet for twice that
/// step (then 0).
#[derive(Debug, Clone, Copy)]
struct CommitPace {
    committed: i64,
    /// When `committed` was last seen to change (or first seen).
    changed_at: Instant,
    step: Option<Duration>,
    rate: Option<f64>,
}

impl CommitPace {
    fn first(committed: i64, now: Instant) -> Self {
        Self {
            committed,
            changed_at: now,
            step: None,
            rate: None,
        }
    }

    fn observe(mut self, committed: i64, now: Instant) -> Self {
        let since = now.saturating_duration_since(self.changed_at);
        if committed != self.committed {
            if !since.is_zero() {
                // Moved back (offsets reset): no records consumed.
                self.rate = Some((committed - self.committed).max(0) as f64 / since.as_secs_f64());
                self.step = Some(since);
            }
            self.committed = committed;
            self.changed_at = now;
        } else if since > self.step.map_or(QUIET_AFTER, |s| (s * 2).max(QUIET_AFTER)) {
            self.rate = Some(0.0);
        }
        self
    }
}

/// The state shown for a group read by name: the broker was not asked for its state.
pub const NOT_LISTED: &str = "not listed";

pub struct KafkaProbe {
    brokers: String,
    known_groups: Vec<String>,
    dlq_topic: String,
    /// The lab's topics are `<prefix>.…`: the marker census reads only those.
    topic_prefix: String,
    clients: Option<Arc<Clients>>,
    previous: Option<Previous>,
    /// Each partition's leader and ISR at the last poll that read them, for the changes.
    replicas: Option<ReplicaMap>,
    /// The blocking read in flight. It outlives a poll that timed out, and no new read starts
    /// while it runs: at most one read per probe, whatever the broker's speed.
    reading: Option<tokio::task::JoinHandle<Result<RawRead, ProbeError>>>,
    census: CensusRunner,
}

/// A finished census run: the census (to run again) and what it counted.
type CensusRun = (Census, Result<BTreeMap<String, TopicCensus>, KafkaError>);

/// Runs the marker census on a blocking thread, one run at a time, at most every
/// [`CENSUS_EVERY`], and keeps what the last run counted.
#[derive(Default)]
struct CensusRunner {
    /// The broker writes no transaction markers into its logs (librdkafka's mock cluster, the
    /// embedded lab's broker): every offset is a record, with nothing to count.
    no_markers: bool,
    idle: Option<Census>,
    running: Option<tokio::task::JoinHandle<CensusRun>>,
    started: Option<Instant>,
    last: BTreeMap<String, TopicCensus>,
}

/// How often the census reads what is new, and how much one run reads at most: a pipeline
/// streaming faster than this is counted over several runs.
const CENSUS_EVERY: std::time::Duration = std::time::Duration::from_secs(2);
const CENSUS_BUDGET: u64 = 50_000;
const CENSUS_PATIENCE: std::time::Duration = std::time::Duration::from_millis(500);

impl CensusRunner {
    /// Takes a finished run's counts, starts the next run when due, and marks `topics` with the
    /// latest counts.
    async fn step(&mut self, brokers: &str, prefix: &str, topics: &mut [Topic]) {
        if self.no_markers {
            for t in topics.iter_mut() {
                t.not_records = Some(0);
                t.census_complete = true;
            }
            return;
        }
        if let Some(task) = self.running.take_if(|t| t.is_finished()) {
            match task.await {
                Ok((census, result)) => {
                    match result {
                        Ok(counts) => self.last = counts,
                        Err(e) => tracing::debug!(error = %e, "the marker census failed; it runs again"),
                    }
                    self.idle = Some(census);
                }
                Err(e) => tracing::warn!(error = %e, "the marker census task failed"),
            }
        }
        // Not on a probe's first poll: a one-shot `lab status` would wait for the run on exit.
        let Some(started) = self.started else {
            self.started = Some(Instant::now());
            return;
        };
        let due = started.elapsed() >= CENSUS_EVERY;
        if self.running.is_none() && due {
            let census = match self.idle.take() {
                Some(c) => Some(c),
                None => Census::new(brokers)
                    .inspect_err(|e| tracing::debug!(error = %e, "cannot create the marker census's reader"))
                    .ok(),
            };
            if let Some(mut census) = census {
                // The lab's own topics only: a shared broker's others are not this lab's to read.
                let listed: Vec<Topic> = topics
                    .iter()
                    .filter(|t| t.name.starts_with(prefix) && t.name[prefix.len()..].starts_with('.'))
                    .cloned()
                    .collect();
                self.started = Some(Instant::now());
                self.running = Some(tokio::task::spawn_blocking(move || {
                    let result = census.run(&listed, CENSUS_BUDGET, CENSUS_PATIENCE);
                    (census, result)
                }));
            }
        }
        for t in topics.iter_mut() {
            if let Some(c) = self.last.get(&t.name) {
                t.not_records = Some(c.not_records);
                // Complete for this snapshot only if the run read up to its ends: records that
                // arrived since, or an open transaction, are not counted yet.
                let end: i64 = t.partitions.iter().map(|p| p.high).sum();
                t.census_complete = c.complete && c.scanned_to == end;
            }
        }
    }
}

fn kerr(brokers: &str, what: &str, e: &rdkafka::error::KafkaError) -> ProbeError {
    ProbeError::Unreachable {
        service: LabService::Kafka,
        url: brokers.to_string(),
        detail: format!("{what}: {e}"),
    }
}

impl Clients {
    fn new(brokers: &str, known_groups: Vec<String>) -> Result<Self, ProbeError> {
        let meta = base_config(brokers)
            .create()
            .map_err(|e| kerr(brokers, "cannot create a client", &e))?;
        Ok(Self {
            brokers: brokers.to_string(),
            known_groups,
            meta,
            by_group: Mutex::new(HashMap::new()),
        })
    }

    fn group_client(&self, group: &str) -> Result<Arc<BaseConsumer>, ProbeError> {
        let mut map = self.by_group.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = map.get(group) {
            return Ok(c.clone());
        }
        let client: BaseConsumer = base_config(&self.brokers)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .map_err(|e| kerr(&self.brokers, "cannot create an offset client", &e))?;
        let client = Arc::new(client);
        map.insert(group.to_string(), client.clone());
        Ok(client)
    }

    fn read(&self) -> Result<RawRead, ProbeError> {
        let metadata = self
            .meta
            .fetch_metadata(None, REQUEST_TIMEOUT)
            .map_err(|e| kerr(&self.brokers, "metadata request failed", &e))?;
        let brokers = metadata
            .brokers()
            .iter()
            .map(|b| Broker {
                id: b.id(),
                host: b.host().to_string(),
                port: b.port(),
            })
            .collect();
        // The broker's own bookkeeping (__consumer_offsets, __transaction_state) is left out.
        let listed: Vec<_> = metadata
            .topics()
            .iter()
            .filter(|t| !t.name().starts_with("__"))
            .collect();
        // Two batched ListOffsets requests (earliest, latest) for every partition, not one
        // round trip per partition: a broker with hundreds of topics answers within the deadline.
        let mut earliest = TopicPartitionList::new();
        for t in &listed {
            for p in t.partitions() {
                earliest
                    .add_partition_offset(t.name(), p.id(), Offset::Beginning)
                    .map_err(|e| kerr(&self.brokers, "build the offset request", &e))?;
            }
        }
        let mut latest = earliest.clone();
        latest
            .set_all_offsets(Offset::End)
            .map_err(|e| kerr(&self.brokers, "build the offset request", &e))?;
        let (lows, highs) = if earliest.count() == 0 {
            (earliest, latest)
        } else {
            (
                self.meta
                    .offsets_for_times(earliest, REQUEST_TIMEOUT)
                    .map_err(|e| kerr(&self.brokers, "earliest offsets", &e))?,
                self.meta
                    .offsets_for_times(latest, REQUEST_TIMEOUT)
                    .map_err(|e| kerr(&self.brokers, "latest offsets", &e))?,
            )
        };
        let offset_of = |tpl: &TopicPartitionList, topic: &str, partition: i32| match tpl
            .find_partition(topic, partition)
            .map(|e| e.offset())
        {
            Some(Offset::Offset(o)) => Ok(o),
            other => Err(format!("{other:?}")),
        };
        let mut unknown_offsets = Vec::new();
        let mut topics = Vec::new();
        for t in listed {
            let mut partitions = Vec::new();
            for p in t.partitions() {
                // One partition the cluster cannot answer for (offline, or its leader just went
                // away) is shown with its offsets unknown and named as a problem: the probe goes
                // on with the rest of the cluster instead of calling Kafka down.
                let (low, high) = match (offset_of(&lows, t.name(), p.id()), offset_of(&highs, t.name(), p.id())) {
                    (Ok(low), Ok(high)) => (low, high),
                    (low, high) => {
                        let why = if p.leader() == NO_LEADER {
                            "no leader".to_string()
                        } else {
                            format!("no offsets ({})", low.err().or(high.err()).unwrap_or_default())
                        };
                        unknown_offsets.push(format!("{}[{}]: {why}", t.name(), p.id()));
                        (0, 0)
                    }
                };
                partitions.push(Partition {
                    id: p.id(),
                    leader: p.leader(),
                    low,
                    high,
                    replicas: p.replicas().to_vec(),
                    isr: p.isr().to_vec(),
                });
            }
            partitions.sort_by_key(|p| p.id);
            let messages = partitions.iter().map(|p| (p.high - p.low).max(0)).sum();
            topics.push(Topic {
                name: t.name().to_string(),
                partitions,
                messages,
                rate_in: None,
                not_records: None,
                census_complete: false,
            });
        }
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        let mut problems = Vec::new();
        if !unknown_offsets.is_empty() {
            let more = unknown_offsets.len().saturating_sub(3);
            unknown_offsets.truncate(3);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            problems.push(format!("offsets unknown for {}{more}", unknown_offsets.join(", ")));
        }
        let groups = if self.known_groups.is_empty() {
            self.listed_groups(&topics, &mut problems)?
        } else {
            let mut groups = Vec::new();
            for name in &self.known_groups {
                let group = self.group(name, NOT_LISTED, Vec::new(), &BTreeSet::new(), &topics)?;
                // A group that never committed is not there yet (the stage has not started).
                if !group.partitions.is_empty() {
                    groups.push(group);
                }
            }
            groups
        };
        Ok(RawRead {
            brokers,
            topics,
            groups,
            problems,
        })
    }

    /// Every group the broker lists, with its members and their assignments.
    fn listed_groups(&self, topics: &[Topic], problems: &mut Vec<String>) -> Result<Vec<Group>, ProbeError> {
        let list = match self.meta.fetch_group_list(None, REQUEST_TIMEOUT) {
            Ok(list) => list,
            Err(e) => {
                problems.push(format!("cannot list consumer groups: {e}"));
                return Ok(Vec::new());
            }
        };
        let mut groups = Vec::new();
        for info in list.groups() {
            let members: Vec<Member> = info
                .members()
                .iter()
                .map(|m| Member {
                    id: m.id().to_string(),
                    client_id: m.client_id().to_string(),
                    host: m.client_host().to_string(),
                    partitions: m
                        .assignment()
                        .map(decode_assignment)
                        .unwrap_or_default()
                        .into_iter()
                        .flat_map(|(topic, parts)| parts.into_iter().map(move |p| (topic.clone(), p)))
                        .collect(),
                    lag: 0,
                    rate: None,
                })
                .collect();
            let assigned: BTreeSet<(String, i32)> = members.iter().flat_map(|m| m.partitions.iter().cloned()).collect();
            groups.push(self.group(info.name(), info.state(), members, &assigned, topics)?);
        }
        // Clients of groups that are gone are dropped (each holds threads and sockets).
        self.by_group
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|name, _| list.groups().iter().any(|g| g.name() == name));
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(groups)
    }

    /// Committed offsets and lag of one group over every partition it committed on or is assigned.
    fn group(
        &self,
        name: &str,
        state: &str,
        members: Vec<Member>,
        assigned: &BTreeSet<(String, i32)>,
        topics: &[Topic],
    ) -> Result<Group, ProbeError> {
        let mut tpl = TopicPartitionList::new();
        for t in topics {
            for p in &t.partitions {
                tpl.add_partition(&t.name, p.id);
            }
        }
        let client = self.group_client(name)?;
        let committed = client
            .committed_offsets(tpl, REQUEST_TIMEOUT)
            .map_err(|e| kerr(&self.brokers, &format!("committed offsets of group {name}"), &e))?;
        let delivery = committed.elements().iter().find_map(|e| {
            e.metadata()
                .strip_prefix(crate::pipeline::kafka::DELIVERY_TAG)
                .map(str::to_string)
        });
        let mut partitions = Vec::new();
        for t in topics {
            for p in &t.partitions {
                let offset = match committed.find_partition(&t.name, p.id).map(|e| e.offset()) {
                    Some(Offset::Offset(o)) => Some(o),
                    _ => None,
                };
                if offset.is_none() && !assigned.contains(&(t.name.clone(), p.id)) {
                    continue; // this group does not read that partition
                }
                partitions.push(GroupPartition {
                    topic: t.name.clone(),
                    partition: p.id,
                    committed: offset,
                    high: p.high,
                    lag: crate::pipeline::kafka::partition_lag(offset, p.low, p.high),
                });
            }
        }
        let mut members = members;
        for m in &mut members {
            m.lag = partitions
                .iter()
                .filter(|p| m.partitions.iter().any(|(t, id)| *t == p.topic && *id == p.partition))
                .map(|p| p.lag)
                .sum();
        }
        Ok(Group {
            name: name.to_string(),
            state: state.to_string(),
            members,
            total_lag: partitions.iter().map(|p| p.lag).sum(),
            partitions,
            rate: None,
            catch_up_s: None,
            delivery,
        })
    }
}

fn base_config(brokers: &str) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", brokers)
        .set("socket.timeout.ms", REQUEST_TIMEOUT.as_millis().to_string())
        // Don't hammer a broker that is down: librdkafka retries connections on its own.
        .set("reconnect.backoff.max.ms", "2000");
    cfg
}

impl KafkaProbe {
    #[must_use]
    pub fn new(brokers: &str, topic_prefix: &str) -> Self {
        Self {
            brokers: brokers.to_string(),
            known_groups: Vec::new(),
            dlq_topic: crate::pipeline::Topics::new(topic_prefix).dlq(),
            topic_prefix: topic_prefix.to_string(),
            clients: None,
            previous: None,
            replicas: None,
            reading: None,
            census: CensusRunner::default(),
        }
    }

    /// For the embedded lab's broker, librdkafka's in-process mock cluster, which has no
    /// ListGroups: reads these groups by name (their committed offsets and lag, no members)
    /// instead of asking the broker for its groups. Only there: a broker that lists its groups
    /// gets them listed, and the marker census.
    #[must_use]
    pub fn on_embedded_broker(mut self, groups: Vec<String>) -> Self {
        self.known_groups = groups;
        // No marker census there: the mock cluster writes no transaction markers into its logs
        // (tests/kafka_probe_embedded.rs), so its offsets are records; a census would only read
        // the whole stream again beside the embedded stages on the same cores (seen slowing a
        // stage's stop in the embedded monitor's test).
        self.census.no_markers = true;
        self
    }

    pub async fn poll(&mut self) -> Probed<KafkaSnapshot> {
        let started = Instant::now();
        let result = self.read().await;
        Probed::from_result(result, started)
    }

    async fn read(&mut self) -> Result<(KafkaSnapshot, Vec<String>), ProbeError> {
        let clients = match &self.clients {
            Some(c) => c.clone(),
            None => {
                let c = Arc::new(Clients::new(&self.brokers, self.known_groups.clone())?);
                self.clients = Some(c.clone());
                c
            }
        };
        if self.reading.as_ref().is_some_and(|r| !r.is_finished()) {
            return Err(ProbeError::Other {
                service: LabService::Kafka,
                detail: "the previous poll has not answered yet (the broker is slow)".into(),
            });
        }
        // A read that finished after its poll gave up is still fresh enough to use.
        let reading = self
            .reading
            .get_or_insert_with(|| tokio::task::spawn_blocking(move || clients.read()));
        let raw = reading.await.map_err(|e| ProbeError::Other {
            service: LabService::Kafka,
            detail: format!("probe task failed: {e}"),
        });
        self.reading = None;
        let raw = raw?;
        let raw = match raw {
            Ok(raw) => raw,
            Err(e) => {
                self.previous = None; // rates across an outage would be meaningless
                return Err(e);
            }
        };
        let cluster = kafka_cluster::health(&raw.brokers, &raw.topics);
        let mut snap = KafkaSnapshot {
            brokers: raw.brokers,
            topics: raw.topics,
            groups: raw.groups,
            dlq_topic: self.dlq_topic.clone(),
            dlq_messages: 0,
            cluster,
        };
        // Kept across an outage (unlike the rates): what moved while the probe could not read is
        // what a user wants to see when it can again.
        let replicas = kafka_cluster::replica_map(&snap.topics);
        if let Some(before) = &self.replicas {
            snap.cluster.changes = kafka_cluster::changes(before, &snap.topics);
        }
        self.replicas = Some(replicas);
        self.previous = Some(apply_rates(&mut snap, self.previous.take(), Instant::now()));
        self.census
            .step(&self.brokers, &self.topic_prefix, &mut snap.topics)
            .await;
        // After the census: the transform writes dead letters in its transactions, so the DLQ's
        // offsets hold a marker per partition per transaction that are no dead letters.
        snap.dlq_messages = snap
            .topics
            .iter()
            .find(|t| t.name == self.dlq_topic)
            .map_or(0, Topic::records);
        let mut problems = raw.problems;
        let c = &snap.cluster;
        let missing: Vec<String> = c.unlisted().map(|id| id.to_string()).collect();
        if !missing.is_empty() {
            problems.push(format!(
                "broker(s) {} hold replicas but are not in the cluster",
                missing.join(", ")
            ));
        }
        if !c.under_replicated.is_empty() {
            problems.push(format!("{} under-replicated partition(s)", c.under_replicated.len()));
        }
        if !c.offline.is_empty() {
            problems.push(format!("{} offline partition(s)", c.offline.len()));
        }
        if snap.brokers.is_empty() {
            problems.push("the cluster reports no broker".to_string());
        }
        Ok((snap, problems))
    }
}

/// Fills rates and catch-up estimates from what the previous polls left; returns this poll's.
/// Topics: records appended since the previous poll. Groups and their members: the sum of their
/// partitions' [`CommitPace`]s.
fn apply_rates(snap: &mut KafkaSnapshot, previous: Option<Previous>, now: Instant) -> Previous {
    let topic_high: HashMap<String, i64> = snap
        .topics
        .iter()
        .map(|t| (t.name.clone(), t.partitions.iter().map(|p| p.high).sum()))
        .collect();
    let mut partition_before = HashMap::new();
    if let Some(prev) = previous {
        let dt = now.duration_since(prev.at).as_secs_f64();
        if dt > 0.0 {
            for t in &mut snap.topics {
                if let (Some(before), Some(now)) = (prev.topic_high.get(&t.name), topic_high.get(&t.name)) {
                    t.rate_in = Some(((now - before).max(0)) as f64 / dt);
                }
            }
        }
        partition_before = prev.partition_pace;
    }
    let pace = |before: Option<CommitPace>, committed: i64| match before {
        Some(p) => p.observe(committed, now),
        None => CommitPace::first(committed, now),
    };
    let mut partition_pace = HashMap::new();
    for g in &mut snap.groups {
        let mut rate_of = HashMap::new();
        for gp in &g.partitions {
            let Some(committed) = gp.committed else { continue };
            let key = (g.name.clone(), gp.topic.clone(), gp.partition);
            let p = pace(partition_before.remove(&key), committed);
            rate_of.insert((gp.topic.as_str(), gp.partition), p.rate);
            partition_pace.insert(key, p);
        }
        for m in &mut g.members {
            let rates = m
                .partitions
                .iter()
                .filter_map(|(t, p)| rate_of.get(&(t.as_str(), *p)).copied().flatten());
            m.rate = rates.reduce(|a, b| a + b);
        }
        // The sum of its partitions' paces: its total moves at every partition's commit, and a
        // pace of the total would take one partition's step over the time since another's.
        g.rate = rate_of.values().copied().flatten().reduce(|a, b| a + b);
        g.catch_up_s = g.rate.and_then(|r| catch_up(g.total_lag, r));
    }
    Previous {
        at: now,
        topic_high,
        partition_pace,
    }
}

/// Seconds to consume `lag` at `rate` records/s; `None` when lag is not shrinking.
#[must_use]
pub fn catch_up(lag: i64, rate: f64) -> Option<f64> {
    if lag <= 0 {
        Some(0.0)
    } else if rate > 0.0 {
        Some(lag as f64 / rate)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment_bytes_decode_to_topics_and_partitions() {
        let mut b = vec![0, 0, 0, 0, 0, 1];
        b.extend_from_slice(&[0, 11]);
        b.extend_from_slice(b"yelp.review");
        b.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2]);
        b.extend_from_slice(&[0, 0, 0, 0]); // user data
        assert_eq!(decode_assignment(&b), vec![("yelp.review".to_string(), vec![0, 2])]);
        // Truncated: what decoded so far is kept, nothing panics.
        assert!(decode_assignment(&b[..9]).is_empty());
        assert!(decode_assignment(&[]).is_empty());
    }

    #[test]
    fn rates_come_from_watermark_and_commit_deltas() {
        let t0 = Instant::now();
        let snap_at = |high: i64, committed: i64| KafkaSnapshot {
            topics: vec![Topic {
                name: "yelp.review".into(),
                partitions: vec![Partition {
                    id: 0,
                    leader: 1,
                    low: 0,
                    high,
                    ..Partition::default()
                }],
                messages: high,
                rate_in: None,
                ..Topic::default()
            }],
            groups: vec![Group {
                name: "lab-transform-yelp".into(),
                partitions: vec![GroupPartition {
                    topic: "yelp.review".into(),
                    partition: 0,
                    committed: Some(committed),
                    high,
                    lag: high - committed,
                }],
                total_lag: high - committed,
                ..Group::default()
            }],
            ..KafkaSnapshot::default()
        };
        let mut first = snap_at(100, 0);
        let prev = apply_rates(&mut first, None, t0);
        assert_eq!(first.topics[0].rate_in, None);
        let mut second = snap_at(300, 100);
        apply_rates(&mut second, Some(prev), t0 + std::time::Duration::from_secs(2));
        assert_eq!(second.topics[0].rate_in, Some(100.0));
        assert_eq!(second.groups[0].rate, Some(50.0));
        assert_eq!(second.groups[0].catch_up_s, Some(4.0)); // lag 200 at 50/s
    }

    #[test]
    fn each_worker_gets_the_rate_of_its_own_partitions() {
        let t0 = Instant::now();
        let member = |name: &str, partition: i32| Member {
            id: format!("{name}-id"),
            client_id: name.into(),
            host: "127.0.0.1".into(),
            partitions: vec![("yelp.review".into(), partition)],
            lag: 0,
            rate: None,
        };
        let snap_at = |committed: [i64; 2]| KafkaSnapshot {
            groups: vec![Group {
                name: "lab-transform-yelp".into(),
                members: vec![member("w0", 0), member("w1", 1)],
                partitions: (0..2)
                    .map(|p| GroupPartition {
                        topic: "yelp.review".into(),
                        partition: p,
                        committed: Some(committed[p as usize]),
                        high: 1_000,
                        lag: 1_000 - committed[p as usize],
                    })
                    .collect(),
                ..Group::default()
            }],
            ..KafkaSnapshot::default()
        };
        let mut first = snap_at([0, 100]);
        let prev = apply_rates(&mut first, None, t0);
        assert_eq!(first.groups[0].members[0].rate, None);
        let mut second = snap_at([400, 120]);
        apply_rates(&mut second, Some(prev), t0 + std::time::Duration::from_secs(2));
        let rates: Vec<Option<f64>> = second.groups[0].members.iter().map(|m| m.rate).collect();
        assert_eq!(rates, vec![Some(200.0), Some(10.0)]);
        assert_eq!(second.groups[0].rate, Some(210.0));
    }

    /// A group that commits 1,000 records every 5 s (the monitor's consumer, one raw-zone file per
    /// roll), polled every second, reads 200/s between its commits, not 0 and then 1,000/s; once it
    /// stops committing for twice its step, 0 and no catch-up estimate.
    #[test]
    fn a_group_committing_in_steps_reads_its_pace_between_them() {
        let t0 = Instant::now();
        let snap_at = |committed: i64| KafkaSnapshot {
            groups: vec![Group {
                name: "lab-consumer-yelp".into(),
                members: vec![Member {
                    id: "c".into(),
                    client_id: "c".into(),
                    host: "127.0.0.1".into(),
                    partitions: vec![("yelp.review.clean".into(), 0)],
                    lag: 0,
                    rate: None,
                }],
                partitions: vec![GroupPartition {
                    topic: "yelp.review.clean".into(),
                    partition: 0,
                    committed: Some(committed),
                    high: 100_000,
                    lag: 100_000 - committed,
                }],
                total_lag: 100_000 - committed,
                ..Group::default()
            }],
            ..KafkaSnapshot::default()
        };
        let mut previous = None;
        let mut seen = Vec::new();
        for second in 0..=30u64 {
            // Commits at 0 s, 5 s, … 15 s, then none.
            let committed = 1_000 * (second.min(15) / 5) as i64;
            let mut snap = snap_at(committed);
            previous = Some(apply_rates(&mut snap, previous, t0 + Duration::from_secs(second)));
            let g = &snap.groups[0];
            seen.push((g.rate, g.members[0].rate, g.catch_up_s));
        }
        // Unknown at first sight, 0 once quiet for 3 s with no step seen yet, then the first step's
        // 1,000 records over the 5 s since first sight: 200/s from 5 s on, between the commits too.
        for (second, (group, member, catch_up)) in seen.iter().enumerate() {
            let expected = match second {
                0..=3 => None,
                4 => Some(0.0),
                5..=25 => Some(200.0),
                _ => Some(0.0),
            };
            assert_eq!(*group, expected, "the group's rate at {second} s");
            assert_eq!(*member, expected, "its member's rate at {second} s");
            match expected {
                Some(r) if r > 0.0 => assert!(catch_up.is_some(), "catch-up at {second} s"),
                _ => assert_eq!(*catch_up, None, "catch-up at {second} s"),
            }
        }
    }

    /// Fifteen partitions each committing 1,000 records every 5 s, eight of them a second before
    /// the others (files roll per partition): the group reads 3,000/s, not the seven partitions'
    /// step over the second since the eight's (7,000/s, then 2,000/s: `lab demo`'s consumer read
    /// 495/s at a producer's 200/s).
    #[test]
    fn a_group_of_partitions_committing_at_their_own_times_reads_their_sum() {
        let t0 = Instant::now();
        let snap_at = |second: u64| KafkaSnapshot {
            groups: vec![Group {
                name: "lab-consumer-yelp".into(),
                partitions: (0..15)
                    .map(|p| {
                        // Partition p commits at seconds p % 2, p % 2 + 5, …
                        let steps = (second + 5 - (p % 2)) / 5;
                        let committed = 1_000 * steps as i64;
                        GroupPartition {
                            topic: "yelp.review.clean".into(),
                            partition: p as i32,
                            committed: Some(committed),
                            high: 1_000_000,
                            lag: 1_000_000 - committed,
                        }
                    })
                    .collect(),
                ..Group::default()
            }],
            ..KafkaSnapshot::default()
        };
        let mut previous = None;
        for second in 0..=40u64 {
            let mut snap = snap_at(second);
            previous = Some(apply_rates(&mut snap, previous, t0 + Duration::from_secs(second)));
            if second >= 10 {
                assert_eq!(snap.groups[0].rate, Some(3_000.0), "at {second} s");
            }
        }
    }

    #[test]
    fn catch_up_is_unknown_while_the_group_is_not_consuming() {
        assert_eq!(catch_up(0, 0.0), Some(0.0));
        assert_eq!(catch_up(10, 0.0), None);
        assert_eq!(catch_up(10, 5.0), Some(2.0));
    }
}
