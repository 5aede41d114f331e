//! The lessons (datanode-lost in its own file). Each breaks one thing, waits for the signal in the service's own API (Kafka
//! group lag and DLQ records, the broker's and NameNode's answers, Airflow's task states), repairs,
//! and waits for the recovery. Stages run in-process through [`crate::pipeline::stage`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use super::watch::until;
use super::{Lesson, LessonContext, LessonError, SignalLog};
use crate::pipeline::kafka::partition_lag;
use crate::pipeline::stage::{StageKind, StageStart, execute};
use crate::pipeline::{StageCounters, Topics, kafka, sink};
use crate::probes::Health;
use crate::probes::airflow::{AirflowProbe, AirflowTarget};
use crate::probes::hdfs::HdfsProbe;
use crate::probes::kafka::KafkaProbe;

pub(super) const POLL: Duration = Duration::from_secs(1);
/// Longest a lesson waits for a signal or a recovery: 180 s, or `LAB_LESSON_PATIENCE_S` (a
/// course on slow machines raises it; the tests lower it to see a lesson fail in reasonable time).
pub(super) fn patience() -> Duration {
    std::env::var("LAB_LESSON_PATIENCE_S")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(180), Duration::from_secs)
}

pub(super) async fn play(lesson: Lesson, ctx: &LessonContext, log: &mut SignalLog) -> Result<bool, LessonError> {
    match lesson {
        Lesson::ConsumerLag => consumer_lag(ctx, log).await,
        Lesson::PoisonMessages => poison_messages(ctx, log).await,
        Lesson::BrokerRestart => broker_restart(ctx, log).await,
        Lesson::DatanodeDown => datanode_down(ctx, log).await,
        Lesson::DatanodeLost => super::datanode_lost::play(ctx, log).await,
        Lesson::SlowBatch => slow_batch(ctx, log).await,
    }
}

pub(super) fn failed(lesson: Lesson, detail: impl Into<String>) -> LessonError {
    LessonError::Failed {
        lesson: lesson.name(),
        detail: detail.into(),
    }
}

/// A stage running in the background; cancelled (cleanly) when dropped.
struct Stage {
    counters: Arc<StageCounters>,
    cancel: CancellationToken,
    handle: Option<tokio::task::JoinHandle<Result<String, String>>>,
}

impl Stage {
    fn start(ctx: &LessonContext, kind: StageKind, how: StageStart) -> Self {
        let counters = Arc::new(StageCounters::default());
        let cancel = ctx.cancel.child_token();
        let config = ctx.stages.clone();
        let handle = {
            let (counters, cancel) = (counters.clone(), cancel.clone());
            tokio::spawn(async move { execute(kind, &how, &config, &counters, &cancel).await })
        };
        Self {
            counters,
            cancel,
            handle: Some(handle),
        }
    }

    /// Waits for the stage to end on its own (the producer) or after a stop; its summary.
    async fn finish(mut self, lesson: Lesson) -> Result<String, LessonError> {
        let handle = self
            .handle
            .take()
            .ok_or_else(|| failed(lesson, "stage already finished"))?;
        handle
            .await
            .map_err(|e| failed(lesson, format!("stage task: {e}")))?
            .map_err(|e| failed(lesson, e))
    }

    async fn stop(self, lesson: Lesson) -> Result<String, LessonError> {
        self.cancel.cancel();
        self.finish(lesson).await
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn sample_at(rate: u32) -> StageStart {
    StageStart {
        rate: Some(rate),
        data: None,
    }
}

/// The consumer group's lag as the broker reports it: per partition of `topics`, the high
/// watermark minus the group's committed offset (all the partition holds while nothing is
/// committed). Asked of the group's coordinator directly rather than through a group listing,
/// which the in-process broker of an embedded lesson cannot answer.
fn committed_lag(brokers: &str, group: &str, topics: &[String]) -> Result<i64, String> {
    let meta = kafka::watermark_client(brokers).map_err(|e| e.to_string())?;
    let offsets: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| format!("offset client: {e}"))?;
    let mut tpl = TopicPartitionList::new();
    let mut marks = Vec::new();
    for topic in topics {
        let md = meta
            .fetch_metadata(Some(topic), kafka::QUERY_TIMEOUT)
            .map_err(|e| format!("metadata of {topic}: {e}"))?;
        for p in md.topics().iter().flat_map(|t| t.partitions()) {
            let (low, high) = meta
                .fetch_watermarks(topic, p.id(), kafka::QUERY_TIMEOUT)
                .map_err(|e| format!("watermarks of {topic}/{}: {e}", p.id()))?;
            tpl.add_partition(topic, p.id());
            marks.push((topic, p.id(), low, high));
        }
    }
    let committed = offsets
        .committed_offsets(tpl, kafka::QUERY_TIMEOUT)
        .map_err(|e| format!("committed offsets of group {group}: {e}"))?;
    Ok(marks
        .into_iter()
        .map(|(topic, partition, low, high)| {
            let offset = match committed.find_partition(topic, partition).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => Some(o),
                _ => None,
            };
            partition_lag(offset, low, high)
        })
        .sum())
}

async fn group_lag(brokers: &str, group: &str, topics: &[String]) -> Result<i64, String> {
    let (brokers, group, topics) = (brokers.to_string(), group.to_string(), topics.to_vec());
    tokio::task::spawn_blocking(move || committed_lag(&brokers, &group, &topics))
        .await
        .map_err(|e| e.to_string())?
}

async fn consumer_lag(ctx: &LessonContext, log: &mut SignalLog) -> Result<bool, LessonError> {
    let lesson = Lesson::ConsumerLag;
    let name = lesson.name();
    let config = &ctx.config;
    let group = kafka::default_group(sink::GROUP_STAGE, &config.topic_prefix);
    let topics = Topics::new(&config.topic_prefix);
    let clean: Vec<String> = crate::dataset::Entity::ALL.iter().map(|e| topics.clean(*e)).collect();
    let lag = || group_lag(&config.brokers, &group, &clean);
    let n = &ctx.narrator;

    n.step("Starting the transform and the consumer, and sending the sample once.");
    let transform = Stage::start(ctx, StageKind::Transform, StageStart::default());
    let consumer = Stage::start(ctx, StageKind::Consumer, StageStart::default());
    let first = Stage::start(ctx, StageKind::Producer, StageStart::default());
    let sent_counter = first.counters.clone();
    first.finish(lesson).await?;
    let sent = sent_counter.snapshot().output;
    // Caught up means the sample went all the way through, not merely "no lag yet": before the
    // transform's first output the clean topics are empty and the lag is trivially 0.
    until!(name, "the consumer catching up", patience(), POLL, {
        let (t, c) = (transform.counters.snapshot(), consumer.counters.snapshot());
        let cleaned = t.output;
        if t.input < sent || cleaned == 0 || c.output < cleaned {
            return Err(format!(
                "transform read {} of {sent}, consumer landed {} of {cleaned}",
                t.input, c.output
            ));
        }
        match lag().await? {
            0 => Ok(()),
            lag => Err(format!("lag {lag}")),
        }
    })?;
    n.step(format!("Caught up: group {group} has lag 0. Pausing the consumer now."));
    consumer.stop(lesson).await?;

    n.step("The producer sends the sample again at 300 msg/s; nobody lands it in the raw zone.");
    let producer = Stage::start(ctx, StageKind::Producer, sample_at(300));
    let grown = until!(name, "the consumer lag growing", patience(), POLL, {
        match lag().await? {
            lag if lag >= 300 => Ok(lag),
            lag => Err(format!("lag {lag}")),
        }
    })?;
    log.saw("consumer lag grew", format!("group {group}: {grown} messages behind"));

    n.step("Restarting the consumer: watch the lag drain.");
    let consumer = Stage::start(ctx, StageKind::Consumer, StageStart::default());
    producer.finish(lesson).await?;
    let restarted = Instant::now();
    let mut peak = grown;
    until!(name, "the consumer lag draining to 0", patience(), POLL, {
        match lag().await? {
            0 => Ok(()),
            lag => {
                peak = peak.max(lag);
                Err(format!("lag {lag}"))
            }
        }
    })?;
    log.saw(
        "consumer lag drained",
        format!(
            "0 messages behind {:.0} s after the restart (peak {peak})",
            restarted.elapsed().as_secs_f64()
        ),
    );
    consumer.stop(lesson).await?;
    transform.stop(lesson).await?;
    Ok(true)
}

/// Malformed reviews, one per reason the transform knows, each tagged so it can be told apart.
fn poison_lines() -> Vec<Vec<u8>> {
    vec![
        br#"{"review_id":"poison-truncated","user_id":"u","business_id":"b","stars":4,"#.to_vec(),
        br#"{"review_id":"poison-stars","user_id":"u","business_id":"b","stars":7,"date":"2020-01-01 10:00:00","text":"seven stars"}"#.to_vec(),
        br#"{"user_id":"u","business_id":"b","stars":3,"date":"2020-01-01 10:00:00","text":"no review_id"}"#.to_vec(),
        br#"{"review_id":"poison-type","user_id":"u","business_id":"b","stars":"five","date":"2020-01-01 10:00:00"}"#.to_vec(),
        b"{\"review_id\":\"poison-utf8\",\"user_id\":\"u\",\"business_id\":\"b\",\"stars\":2,\"text\":\"\xff\xfe\"}".to_vec(),
        br#"{"review_id":"poison-date","user_id":"u","business_id":"b","stars":2,"date":"yesterday"}"#.to_vec(),
        br#"[1, 2, 3]"#.to_vec(),
    ]
}

/// A dataset dir of `good` sample reviews with the poison lines spread between them.
fn write_poisoned_dataset(ctx: &LessonContext, good: usize) -> Result<(PathBuf, usize, usize), String> {
    let dir = ctx.config.state_dir.join("lessons/poison-messages");
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let sample = crate::dataset::sample(&ctx.config.state_dir)
        .map_err(|e| e.to_string())?
        .join("yelp_academic_dataset_review.json");
    let text = std::fs::read(&sample).map_err(|e| format!("read {}: {e}", sample.display()))?;
    // Only lines the transform accepts: the sample has a few invalid ones of its own.
    let good_lines: Vec<&[u8]> = text
        .split(|b| *b == b'\n')
        .filter(|l| crate::pipeline::clean::clean(crate::dataset::Entity::Review, l).is_ok())
        .take(good)
        .collect();
    let poison = poison_lines();
    let every = (good_lines.len() / poison.len()).max(1);
    let mut out = Vec::new();
    let mut poison_iter = poison.iter();
    for (i, line) in good_lines.iter().enumerate() {
        out.extend_from_slice(line);
        out.push(b'\n');
        if i % every == every - 1
            && let Some(p) = poison_iter.next()
        {
            out.extend_from_slice(p);
            out.push(b'\n');
        }
    }
    for p in poison_iter {
        out.extend_from_slice(p);
        out.push(b'\n');
    }
    let file = dir.join("yelp_academic_dataset_review.json");
    std::fs::write(&file, out).map_err(|e| format!("write {}: {e}", file.display()))?;
    Ok((dir, good_lines.len(), poison.len()))
}

/// The DLQ's end offsets per partition: where this lesson's dead letters will start.
fn dlq_ends(brokers: &str, topic: &str) -> Result<BTreeMap<i32, i64>, String> {
    let client = kafka::watermark_client(brokers).map_err(|e| e.to_string())?;
    let meta = client
        .fetch_metadata(Some(topic), kafka::QUERY_TIMEOUT)
        .map_err(|e| format!("metadata of {topic}: {e}"))?;
    let mut ends = BTreeMap::new();
    for t in meta.topics() {
        for p in t.partitions() {
            let (_, high) = client
                .fetch_watermarks(topic, p.id(), kafka::QUERY_TIMEOUT)
                .map_err(|e| format!("watermarks of {topic}/{}: {e}", p.id()))?;
            ends.insert(p.id(), high);
        }
    }
    Ok(ends)
}

/// Reads every committed dead letter after `from`, to the end of each partition (so extras show
/// too): their `lab.reason.code` headers, counted.
fn read_dead_letters(brokers: &str, topic: &str, from: &BTreeMap<i32, i64>) -> Result<BTreeMap<String, usize>, String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "lab-lesson-dlq-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create()
        .map_err(|e| format!("DLQ reader: {e}"))?;
    let mut tpl = TopicPartitionList::new();
    for (partition, offset) in from {
        tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))
            .map_err(|e| e.to_string())?;
    }
    consumer.assign(&tpl).map_err(|e| format!("assign {topic}: {e}"))?;
    let mut reasons = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut at_end = std::collections::BTreeSet::new();
    while at_end.len() < from.len() {
        if Instant::now() > deadline {
            return Err(format!("{topic}: could not read to the end of every partition in 20 s"));
        }
        let Some(msg) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let msg = match msg {
            Ok(msg) => msg,
            Err(rdkafka::error::KafkaError::PartitionEOF(p)) => {
                at_end.insert(p);
                continue;
            }
            Err(e) => return Err(format!("read {topic}: {e}")),
        };
        at_end.remove(&msg.partition());
        let code = msg
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == "lab.reason.code"))
            .and_then(|h| h.value)
            .map_or_else(|| "?".to_string(), |v| String::from_utf8_lossy(v).into_owned());
        *reasons.entry(code).or_insert(0) += 1;
    }
    Ok(reasons)
}

async fn poison_messages(ctx: &LessonContext, log: &mut SignalLog) -> Result<bool, LessonError> {
    let lesson = Lesson::PoisonMessages;
    let name = lesson.name();
    let config = &ctx.config;
    let topics = Topics::new(&config.topic_prefix);
    let dlq = topics.dlq();
    let n = &ctx.narrator;
    ctx.stages
        .ensure_topics()
        .await
        .map_err(|e| failed(lesson, e.to_string()))?;
    let (data, good, poison) = write_poisoned_dataset(ctx, 300).map_err(|e| failed(lesson, e))?;
    let brokers = config.brokers.clone();
    let dlq_topic = dlq.clone();
    let from = tokio::task::spawn_blocking(move || dlq_ends(&brokers, &dlq_topic))
        .await
        .map_err(|e| failed(lesson, e.to_string()))?
        .map_err(|e| failed(lesson, e))?;

    n.step(format!(
        "Starting the transform, then sending {good} good reviews with {poison} poisoned ones between them."
    ));
    let transform = Stage::start(ctx, StageKind::Transform, StageStart::default());
    let producer = Stage::start(
        ctx,
        StageKind::Producer,
        StageStart {
            rate: Some(100),
            data: Some(data),
        },
    );
    producer.finish(lesson).await?;
    let counters = transform.counters.clone();
    let sent = (good + poison) as u64;
    // Handled: delivered clean (`output`) or dead-lettered (`dlq`).
    until!(name, "the transform handling every record", patience(), POLL, {
        let now = counters.snapshot();
        let done = now.output + now.dlq;
        if done >= sent {
            Ok(())
        } else {
            Err(format!("{done} of {sent} handled"))
        }
    })?;
    let handled = counters.snapshot();
    let clean = handled.output;
    log.saw(
        "good records flow past the poison",
        format!("{clean} of {good} good reviews cleaned"),
    );
    let mut got = BTreeMap::new();
    until!(name, "every poisoned record in the DLQ", patience(), POLL, {
        let (brokers, dlq, from) = (config.brokers.clone(), dlq.clone(), from.clone());
        got = tokio::task::spawn_blocking(move || read_dead_letters(&brokers, &dlq, &from))
            .await
            .map_err(|e| e.to_string())??;
        let total: usize = got.values().sum();
        if total >= poison {
            Ok(())
        } else {
            Err(format!("{total} of {poison} dead letters"))
        }
    })?;
    let total: usize = got.values().sum();
    let reasons: Vec<String> = got.iter().map(|(code, count)| format!("{code} ×{count}")).collect();
    log.saw("DLQ grew", format!("{dlq}: +{total} ({})", reasons.join(", ")));
    n.step(format!(
        "Each dead letter keeps its original bytes and says why in its headers (lab.reason, lab.source.*): \
         kcat -b {} -C -t {dlq} -f '%h\\n%s\\n\\n' shows them.",
        config.brokers
    ));
    transform.stop(lesson).await?;
    Ok(clean == good as u64 && total == poison)
}

async fn broker_up(probe: &mut KafkaProbe) -> Result<(), String> {
    let snap = probe.poll().await;
    match snap.status.health {
        Health::Up | Health::Degraded => Ok(()),
        _ => Err(format!("Kafka: {}", snap.status.reason)),
    }
}

async fn broker_restart(ctx: &LessonContext, log: &mut SignalLog) -> Result<bool, LessonError> {
    let lesson = Lesson::BrokerRestart;
    let name = lesson.name();
    let n = &ctx.narrator;
    ctx.control.check("kafka").await?;
    let mut probe = KafkaProbe::new(&ctx.config.brokers, &ctx.config.topic_prefix);
    until!(name, "a healthy broker to start from", Duration::from_secs(30), POLL, {
        broker_up(&mut probe).await
    })?;

    let topics = Topics::new(&ctx.config.topic_prefix);
    ctx.stages
        .ensure_topics()
        .await
        .map_err(|e| failed(lesson, e.to_string()))?;
    let held_before = raw_records(ctx, &topics).await.map_err(|e| failed(lesson, e))?;
    n.step("The producer streams the sample at 200 msg/s.");
    let producer = Stage::start(ctx, StageKind::Producer, sample_at(200));
    let counters = producer.counters.clone();
    let delivered = || counters.snapshot().output;
    let sent = || counters.snapshot().input;
    until!(name, "the first deliveries", patience(), Duration::from_millis(200), {
        if delivered() > 0 {
            Ok(())
        } else {
            Err("nothing delivered".into())
        }
    })?;

    n.step("Stopping the broker.");
    ctx.control.stop("kafka").await?;
    let reason = until!(name, "Kafka going down", patience(), POLL, {
        let snap = probe.poll().await;
        match snap.status.health {
            Health::Down => Ok(snap.status.reason),
            other => Err(format!("Kafka still {other:?}")),
        }
    })?;
    log.saw("broker down", reason);
    let stalled_at = delivered();
    let buffered = until!(name, "the producer buffering", patience(), POLL, {
        let (s, d) = (sent(), delivered());
        if s > stalled_at + 50 && d == stalled_at {
            Ok(s - d)
        } else {
            Err(format!("{s} sent, {d} delivered"))
        }
    })?;
    log.saw(
        "producer buffering",
        format!("{buffered} records sent to the client's queue, none delivered since the broker stopped"),
    );

    n.step("Starting the broker again.");
    ctx.control.start("kafka").await?;
    until!(name, "Kafka back up", patience(), POLL, { broker_up(&mut probe).await })?;
    log.saw("broker back", "Kafka answers again");
    let summary = producer.finish(lesson).await?;
    let (s, d) = (sent(), delivered());
    // The broker's own count, not the producer's: a lost or doubled record shows here.
    let held = raw_records(ctx, &topics).await.map_err(|e| failed(lesson, e))? - held_before;
    log.saw(
        "every record delivered once",
        format!("{held} new records in the raw topics for {s} sent ({summary})"),
    );
    Ok(u64::try_from(held).is_ok_and(|h| h == s) && s == d)
}

/// Records held by the raw topics and the DLQ, by the broker's high and low watermarks.
async fn raw_records(ctx: &LessonContext, topics: &Topics) -> Result<i64, String> {
    let brokers = ctx.config.brokers.clone();
    let mut names: Vec<String> = crate::dataset::Entity::ALL.iter().map(|e| topics.raw(*e)).collect();
    names.push(topics.dlq());
    tokio::task::spawn_blocking(move || {
        let client = kafka::watermark_client(&brokers).map_err(|e| e.to_string())?;
        let mut total = 0;
        for topic in &names {
            let meta = client
                .fetch_metadata(Some(topic), kafka::QUERY_TIMEOUT)
                .map_err(|e| format!("metadata of {topic}: {e}"))?;
            for p in meta.topics().iter().flat_map(|t| t.partitions()) {
                let (low, high) = client
                    .fetch_watermarks(topic, p.id(), kafka::QUERY_TIMEOUT)
                    .map_err(|e| format!("watermarks of {topic}/{}: {e}", p.id()))?;
                total += high - low;
            }
        }
        Ok(total)
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Writes a small file to HDFS and reads nothing back: does the write path (NameNode + a
/// DataNode) work right now?
pub(super) async fn hdfs_write(url: &str, attempt: u32) -> Result<(), String> {
    let client = hdfs_native::ClientBuilder::new()
        .with_url(url)
        .build()
        .map_err(|e| e.to_string())?;
    let path = format!("/.lab-lesson/canary-{}-{attempt}", std::process::id());
    let write = async {
        let options = hdfs_native::WriteOptions::default().overwrite(true);
        let mut writer = client.create(&path, options).await?;
        writer.write(bytes::Bytes::from_static(b"canary")).await?;
        writer.close().await?;
        client.delete(&path, false).await.map(|_| ())
    };
    match tokio::time::timeout(Duration::from_secs(20), write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(crate::runtime::first_line(&e.to_string())),
        Err(_) => Err("no answer within 20 s".into()),
    }
}

/// What both DataNode lessons start with: a DataNode they can stop and start, and a probe of the
/// NameNode's view of the raw zone.
pub(super) async fn datanode_lesson_probe(ctx: &LessonContext, lesson: Lesson) -> Result<HdfsProbe, LessonError> {
    ctx.control.check("datanode").await?;
    let raw_root = crate::probes::hdfs::raw_root(&ctx.config.raw_zone);
    HdfsProbe::new(&ctx.config.hdfs.http, &raw_root, &ctx.config.topic_prefix)
        .map_err(|e| failed(lesson, e.to_string()))
}

async fn datanode_down(ctx: &LessonContext, log: &mut SignalLog) -> Result<bool, LessonError> {
    let lesson = Lesson::DatanodeDown;
    let name = lesson.name();
    let n = &ctx.narrator;
    let hdfs = &ctx.config.hdfs;
    let mut probe = datanode_lesson_probe(ctx, lesson).await?;
    hdfs_write(&hdfs.url, 0).await.map_err(|e| {
        failed(
            lesson,
            format!("HDFS does not accept writes even before the lesson: {e}"),
        )
    })?;

    n.step("HDFS accepts writes. Stopping the DataNode.");
    ctx.control.stop("datanode").await?;
    let mut attempt = 0;
    let error = until!(name, "writes failing", patience(), POLL, {
        attempt += 1;
        match hdfs_write(&hdfs.url, attempt).await {
            Err(e) => Ok(e),
            Ok(()) => Err("a write still succeeded".to_string()),
        }
    })?;
    log.saw("raw-zone writes fail", error);
    // The NameNode's own record: the DataNode's heartbeats stopped (every 3 s while it runs).
    let silent = until!(name, "the DataNode's heartbeats stopping", patience(), POLL, {
        let snap = probe.poll().await;
        match snap
            .detail
            .as_ref()
            .and_then(|d| d.datanodes.iter().map(|n| n.last_contact_s).min())
        {
            Some(s) if s >= SILENT_HEARTBEAT_S => Ok(s),
            Some(s) => Err(format!("last heartbeat {s} s ago")),
            None => Err(format!("HDFS: {}", snap.status.reason)),
        }
    })?;
    log.saw("DataNode silent", format!("last heartbeat {silent} s ago"));
    let snap = probe.poll().await;
    if let Some(d) = snap.detail {
        n.step(format!(
            "The NameNode counts {} live and {} dead DataNodes, {} missing blocks: it declares a silent DataNode \
             dead only after dfs.namenode.heartbeat.recheck-interval (10.5 min by default), so writes fail first.",
            d.live_datanodes, d.dead_datanodes, d.missing_blocks
        ));
    }

    n.step("Starting the DataNode again.");
    ctx.control.start("datanode").await?;
    until!(name, "writes succeeding again", patience(), POLL, {
        attempt += 1;
        hdfs_write(&hdfs.url, attempt).await
    })?;
    log.saw("raw-zone writes work again", "a test file was written and removed");
    // Live *again*: counted live and heartbeating afresh. A DataNode that was never stopped
    // passed the write checks above only if the control did nothing, and fails the silence check.
    let live = until!(name, "a live DataNode heartbeating again", patience(), POLL, {
        let snap = probe.poll().await;
        match snap.detail {
            Some(d) => {
                let fresh = d
                    .datanodes
                    .iter()
                    .filter(|n| n.live && n.last_contact_s < SILENT_HEARTBEAT_S)
                    .count();
                if d.live_datanodes > 0 && fresh > 0 {
                    Ok(d.live_datanodes)
                } else {
                    Err(format!("{} live DataNodes, {fresh} heartbeating", d.live_datanodes))
                }
            }
            None => Err(format!("HDFS: {}", snap.status.reason)),
        }
    })?;
    log.saw("DataNode live", format!("{live} live DataNode(s), heartbeating again"));
    Ok(true)
}

/// A DataNode heartbeats every 3 s: this long without one means it is gone.
const SILENT_HEARTBEAT_S: i64 = 7;

const DAG: &str = "yelp_batch";
const BATCH_TASK: &str = "batch";
/// How long the first try of the batch hangs before failing.
const SLOW_FIRST_TRY_S: u64 = 20;

async fn slow_batch(ctx: &LessonContext, log: &mut SignalLog) -> Result<bool, LessonError> {
    let lesson = Lesson::SlowBatch;
    let name = lesson.name();
    let n = &ctx.narrator;
    let mut probe =
        AirflowProbe::new(AirflowTarget::from(&ctx.config.airflow)).map_err(|e| failed(lesson, e.to_string()))?;
    let to_failed = |e: crate::probes::ProbeError| failed(lesson, e.to_string());
    probe.set_paused(DAG, false).await.map_err(to_failed)?;
    let conf = serde_json::json!({
        "teaching": true,
        "lesson_slow_first_try": SLOW_FIRST_TRY_S,
        "topic_prefix": ctx.config.topic_prefix,
    });
    let run_id = probe.trigger_with(DAG, &conf).await.map_err(to_failed)?;
    n.step(format!(
        "Triggered {DAG} run {run_id}: its batch task's first try hangs {SLOW_FIRST_TRY_S} s, then fails."
    ));

    let try_state = |snap: &crate::probes::airflow::AirflowSnapshot| {
        snap.task_instances
            .iter()
            .find(|t| t.dag_run_id == run_id && t.task_id == BATCH_TASK)
            .map(|t| (t.state.clone().unwrap_or_default(), t.try_number))
    };
    let waited = until!(name, "the batch task going up_for_retry", patience() * 2, POLL, {
        let snap = probe.poll().await;
        let detail = snap.detail.ok_or_else(|| format!("Airflow: {}", snap.status.reason))?;
        match try_state(&detail) {
            Some((state, try_number)) if state == "up_for_retry" => Ok(try_number),
            Some((state, _)) if state == "skipped" || state == "upstream_failed" => Err(format!(
                "batch {state}: is the raw zone empty? stream some data first (lab produce, transform, consume)"
            )),
            Some((state, try_number)) => Err(format!("batch try {try_number}: {state}")),
            None => Err("batch not started yet (waiting for raw files)".into()),
        }
    })?;
    log.saw(
        "batch up for retry",
        format!("try {waited} failed after hanging {SLOW_FIRST_TRY_S} s; Airflow retries with backoff"),
    );

    let (state, tries) = until!(name, "the run finishing", patience() * 2, POLL, {
        let state = probe.run_state(DAG, &run_id).await.map_err(|e| e.reason())?;
        let snap = probe.poll().await;
        let tries = snap.detail.as_ref().and_then(try_state).map_or(0, |(_, t)| t);
        match state.as_str() {
            "success" | "failed" => Ok((state, tries)),
            other => Err(format!("run {other}")),
        }
    })?;
    log.saw(
        "run finished late",
        format!("run {state}; the batch task took {tries} tries"),
    );
    Ok(state == "success" && tries >= 2)
}
