//! Producer: dataset files → raw topics, one message per line, keyed by business or user id.
//!
//! Every line is forwarded, even one that is not valid JSON: the stream transform dead-letters it
//! with a reason, so nothing in the input is silently lost. Such lines carry a `lab.source` header
//! (`file:line`) and are counted as malformed here too.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Message};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::{Backpressure, PipelineError, StageCounters, Topics, kafka};
use crate::dataset::Entity;
use crate::dataset::reader::{DatasetSource, LineRef, read_lines};

#[derive(Debug, Clone)]
pub struct ProducerOptions {
    pub brokers: String,
    pub topics: Topics,
    /// Messages per second; `None` = as fast as the broker takes them.
    pub rate: Option<u32>,
    /// Entities to send; empty = all.
    pub entities: Vec<Entity>,
    /// Stay at most this far ahead of the transform (used by `lab demo`).
    pub backpressure: Option<Backpressure>,
}

/// How long a producer paced at `rate` records per second gathers records into a batch: about
/// fifty records a batch, 20 ms (the unpaced default) to 250 ms.
///
/// At 20 ms the embedded lab's 200 records/s over fifteen partitions went out as one-record
/// batches, each a message set the in-process broker keeps in a list it walks from the start on
/// every fetch of every partition (`rd_kafka_mock_msgset_find`, "FIXME: Maintain an index");
/// and every batch woke the readers at the tail for a fetch of their own. `lab demo` used 45 %
/// of a core on average over its first 36 minutes, most of it in that walk (`perf`). A quarter
/// of a second is not something a person watching the monitor sees.
#[must_use]
pub fn paced_linger_ms(rate: u32) -> u32 {
    (50_000 / rate.max(1)).clamp(20, 250)
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ProducerReport {
    pub sent: u64,
    pub delivered: u64,
    pub malformed_lines: u64,
    /// Lines too large for a Kafka record, sent to the DLQ as an excerpt with their size and origin.
    pub dead_lettered: u64,
    /// The first malformed lines, as `file:line`.
    pub malformed_examples: Vec<String>,
    pub bytes: u64,
    pub elapsed_ms: u128,
    /// Stopped (Ctrl-C) before the end of the dataset: `delivered` is what reached Kafka.
    pub interrupted: bool,
}

/// Counts deliveries; the only place that learns whether Kafka accepted a message.
struct DeliveryCounter {
    counters: Arc<StageCounters>,
    failed: AtomicU64,
    last_error: std::sync::Mutex<Option<String>>,
}

impl DeliveryCounter {
    fn new(counters: &Arc<StageCounters>) -> Self {
        DeliveryCounter {
            counters: counters.clone(),
            failed: AtomicU64::new(0),
            last_error: std::sync::Mutex::default(),
        }
    }
}

impl ClientContext for DeliveryCounter {}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, (): ()) {
        match result {
            Ok(_) => StageCounters::add(&self.counters.output, 1),
            Err((err, msg)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(topic = msg.topic(), %err, "delivery failed");
                if let Ok(mut last) = self.last_error.lock() {
                    *last = Some(err.to_string());
                }
            }
        }
    }
}

#[derive(Deserialize)]
struct Keys<'a> {
    #[serde(borrow, default)]
    business_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    user_id: Option<Cow<'a, str>>,
}

/// The message key: business_id (business, review, tip, checkin) or user_id (user).
/// `None` when the line is not a JSON object with that id.
/// Borrowed from the line unless the id holds JSON escapes.
fn key_of(entity: Entity, line: &[u8]) -> Option<Cow<'_, str>> {
    let keys: Keys<'_> = serde_json::from_slice(line).ok()?;
    if entity == Entity::User {
        keys.user_id
    } else {
        keys.business_id
    }
}

const MAX_MALFORMED_EXAMPLES: usize = 20;
/// How many records are queued between two servings of the delivery reports (see the loop).
const REPORTS_EVERY: u64 = 256;

/// Sends the dataset to Kafka. Blocking: run it on a blocking thread.
pub fn run_producer(
    source: &DatasetSource,
    opts: &ProducerOptions,
    counters: &Arc<StageCounters>,
    cancel: &CancellationToken,
) -> Result<ProducerReport, PipelineError> {
    let started = Instant::now();
    let context = DeliveryCounter::new(counters);
    // Polled by this thread (as kcat does), not by a ThreadedProducer's own thread: that thread
    // and the crate's flush each wait up to 100 ms for delivery reports the other one takes, which
    // added up to 0.2 s at the end of every run (strace: last report to exit).
    let mut config = kafka::producer_config(&opts.brokers);
    if let Some(rate) = opts.rate.filter(|r| *r > 0) {
        config.set("linger.ms", paced_linger_ms(rate).to_string());
    }
    let producer: BaseProducer<DeliveryCounter> = config
        .create_with_context(context)
        .map_err(|e| PipelineError::kafka("create a producer", &opts.brokers, e))?;
    let first_entity = opts.entities.first().copied().unwrap_or(Entity::Review);
    kafka::hasten_producer_id(producer.client(), &opts.topics.raw(first_entity));
    let topic_names: Vec<(Entity, String)> = Entity::ALL.iter().map(|e| (*e, opts.topics.raw(*e))).collect();
    let dlq_topic = opts.topics.dlq();
    let mut report = ProducerReport::default();
    let pacing = opts.rate.filter(|r| *r > 0).map(|r| Duration::from_secs(1) / r);

    let read = read_lines(
        source,
        &opts.entities,
        |line: LineRef<'_>| -> Result<(), PipelineError> {
            if cancel.is_cancelled() {
                return Err(PipelineError::Cancelled);
            }
            if let Some(bp) = &opts.backpressure {
                while bp.should_wait(counters) && !cancel.is_cancelled() {
                    serve_a_report_then_sleep(&producer, Duration::from_millis(1));
                }
            }
            let topic = &topic_names
                .iter()
                .find(|(e, _)| *e == line.entity)
                .map_or("", |(_, t)| t.as_str());
            if line.text.len() > MAX_RECORD_BYTES {
                let origin = format!("{}:{}", line.source, line.line_no);
                tracing::warn!(%origin, bytes = line.text.len(), "line too large for a record: dead-lettered");
                report.malformed_lines += 1;
                report.dead_lettered += 1;
                if report.malformed_examples.len() < MAX_MALFORMED_EXAMPLES {
                    report
                        .malformed_examples
                        .push(format!("{origin} ({} bytes, over the record limit)", line.text.len()));
                }
                let record = oversized_record(&dlq_topic, topic, &origin, line.text);
                send_with_backpressure(&producer, record, &opts.brokers)?;
                report.sent += 1;
                StageCounters::add(&counters.input, 1);
                StageCounters::add(&counters.dlq, 1);
                StageCounters::add(&counters.bytes, line.text.len() as u64);
                return Ok(());
            }
            let key = key_of(line.entity, line.text);
            let mut record: BaseRecord<'_, [u8], [u8], ()> = BaseRecord::to(topic).payload(line.text);
            let key_ref;
            let headers;
            if let Some(k) = &key {
                key_ref = k.as_bytes();
                record = record.key(key_ref);
            } else {
                report.malformed_lines += 1;
                let origin = format!("{}:{}", line.source, line.line_no);
                tracing::warn!(%origin, "malformed line forwarded for dead-lettering");
                if report.malformed_examples.len() < MAX_MALFORMED_EXAMPLES {
                    report.malformed_examples.push(origin.clone());
                }
                headers = OwnedHeaders::new().insert(Header {
                    key: "lab.source",
                    value: Some(origin.as_bytes()),
                });
                record = record.headers(headers);
            }
            send_with_backpressure(&producer, record, &opts.brokers)?;
            report.sent += 1;
            report.bytes += line.text.len() as u64;
            StageCounters::add(&counters.input, 1);
            StageCounters::add(&counters.bytes, line.text.len() as u64);
            StageCounters::add(&counters.out_bytes, line.text.len() as u64);
            // Delivery reports: served here, between records, so they never pile up. Every
            // `REPORTS_EVERY` records, not after each one: the crate's `poll` reads the clock
            // several times per call, which was 8 % of the stage's CPU when called per record.
            if report.sent % REPORTS_EVERY == 0 {
                producer.poll(Duration::ZERO);
            }
            if let Some(gap) = pacing {
                let due = started + gap * u32::try_from(report.sent).unwrap_or(u32::MAX);
                loop {
                    let left = due.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    serve_a_report_then_sleep(&producer, left.min(Duration::from_millis(100)));
                }
            }
            Ok(())
        },
    );
    let flush = flush(&producer, Duration::from_secs(300));
    let failed = producer.context().failed.load(Ordering::Relaxed);
    report.delivered = counters.output.load(Ordering::Relaxed);
    report.elapsed_ms = started.elapsed().as_millis();
    counters.finish();
    let stats = match read {
        Ok(stats) => stats,
        // A clean stop: what was sent is flushed above and reported, nothing more is read.
        Err(PipelineError::Cancelled) => {
            report.interrupted = true;
            crate::dataset::reader::ReadStats::default()
        }
        Err(e) => return Err(e),
    };
    // Lines over the reader's cap never reach Kafka (no broker takes them); they are reported.
    for long in &stats.too_long {
        report.malformed_lines += 1;
        if report.malformed_examples.len() < MAX_MALFORMED_EXAMPLES {
            report.malformed_examples.push(format!(
                "{}:{} ({} bytes, over the line limit)",
                long.source, long.line_no, long.bytes
            ));
        }
    }
    flush.map_err(|e| PipelineError::kafka("flush pending messages", &opts.brokers, e))?;
    if failed > 0 {
        let last = producer
            .context()
            .last_error
            .lock()
            .ok()
            .and_then(|l| l.clone())
            .unwrap_or_default();
        return Err(PipelineError::kafka(
            &format!("deliver {failed} of {} messages", report.sent),
            &opts.brokers,
            last,
        ));
    }
    Ok(report)
}

/// Largest line sent as a record. Brokers refuse messages over about 1 MB by default
/// (`message.max.bytes`, and librdkafka's own limit), and one refused message would stop the whole
/// producer; a larger line goes to the DLQ instead (see [`oversized_record`]).
pub const MAX_RECORD_BYTES: usize = 900 * 1024;
/// How much of an oversized line its DLQ record keeps.
pub const DLQ_EXCERPT_BYTES: usize = 64 * 1024;

/// The DLQ record for a line too large to send: its first [`DLQ_EXCERPT_BYTES`], the reason
/// (`too_large`), its size, the topic it was meant for and where it was read (`file:line`), so it
/// can be found and fixed at the source.
fn oversized_record<'a>(dlq: &'a str, meant_for: &str, origin: &str, text: &'a [u8]) -> BaseRecord<'a, [u8], [u8], ()> {
    let reason = format!(
        "too_large: {} bytes, over the {MAX_RECORD_BYTES}-byte record limit (first {DLQ_EXCERPT_BYTES} bytes kept)",
        text.len()
    );
    let size = text.len().to_string();
    let headers = kafka::headers(&[
        ("lab.reason", reason.as_bytes()),
        ("lab.reason.code", b"too_large".as_slice()),
        ("lab.source", origin.as_bytes()),
        ("lab.source.topic", meant_for.as_bytes()),
        ("lab.original.bytes", size.as_bytes()),
    ]);
    BaseRecord::to(dlq)
        .payload(&text[..text.len().min(DLQ_EXCERPT_BYTES)])
        .headers(headers)
}

/// Waits until every queued record is delivered or failed, serving the delivery reports.
///
/// Not the crate's `flush`: it polls in slices of 100 ms that it always waits out, so it returned
/// up to 100 ms after the last report.
fn flush(producer: &BaseProducer<DeliveryCounter>, patience: Duration) -> rdkafka::error::KafkaResult<()> {
    let deadline = Instant::now() + patience;
    while producer.in_flight_count() > 0 && Instant::now() < deadline {
        serve_a_report_then_sleep(producer, Duration::from_micros(500));
    }
    // Confirms (without waiting) that nothing is left, or says what is.
    producer.flush(Duration::ZERO)
}

/// Serves one delivery report if one is ready, then sleeps `pause`.
///
/// A sleep, not `producer.poll(pause)`: rdkafka 0.39 truncates what is left of a poll's timeout to
/// whole milliseconds before asking librdkafka, so the last millisecond of every such wait (all of
/// a 1 ms one) was a loop reading the clock. Waiting on its backpressure, `lab demo`'s producer
/// spent most of a core in it (`perf`: 15 % of the demo's samples).
fn serve_a_report_then_sleep(producer: &BaseProducer<DeliveryCounter>, pause: Duration) {
    producer.poll(Duration::ZERO);
    std::thread::sleep(pause);
}

/// Queues a record, waiting while librdkafka's local queue is full instead of failing.
fn send_with_backpressure<'a>(
    producer: &BaseProducer<DeliveryCounter>,
    mut record: BaseRecord<'a, [u8], [u8], ()>,
    brokers: &str,
) -> Result<(), PipelineError> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                // A queued message leaves the queue once its delivery report is served.
                serve_a_report_then_sleep(producer, Duration::from_millis(1));
            }
            Err((e, _)) => return Err(PipelineError::kafka("queue a message", brokers, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::embedded::EmbeddedBroker;
    use rdkafka::consumer::Consumer;

    #[test]
    fn a_paced_producer_gathers_about_fifty_records_a_batch() {
        assert_eq!(paced_linger_ms(200), 250, "the embedded lab's teaching pace");
        assert_eq!(paced_linger_ms(1_000), 50);
        assert_eq!(paced_linger_ms(100_000), 20, "never under the unpaced default");
        assert_eq!(paced_linger_ms(1), 250, "never over a quarter of a second");
        assert_eq!(paced_linger_ms(0), 250);
    }

    fn high_watermark(brokers: &str, topic: &str) -> i64 {
        let client = kafka::watermark_client(brokers).unwrap();
        client.fetch_watermarks(topic, 0, Duration::from_secs(5)).unwrap().1
    }

    /// The stage's producer, with its delivery counter, on an embedded broker with topic `t`.
    fn producer_on_embedded_broker() -> (EmbeddedBroker, Arc<StageCounters>, BaseProducer<DeliveryCounter>) {
        let broker = EmbeddedBroker::start(vec![("t".into(), 1)]).unwrap();
        let counters = Arc::new(StageCounters::default());
        let producer: BaseProducer<DeliveryCounter> = kafka::producer_config(broker.brokers())
            .create_with_context(DeliveryCounter::new(&counters))
            .unwrap();
        kafka::hasten_producer_id(producer.client(), "t");
        (broker, counters, producer)
    }

    /// The stage's flush serves the delivery reports itself (no thread of its own polls them) and
    /// says when something is still undelivered at its deadline.
    #[test]
    fn flush_serves_every_delivery_report_and_fails_on_what_is_left() {
        let (broker, counters, producer) = producer_on_embedded_broker();
        for i in 0..100 {
            let payload = format!("{{\"n\":{i}}}");
            let record = BaseRecord::to("t").payload(payload.as_bytes()).key(b"k".as_slice());
            send_with_backpressure(&producer, record, broker.brokers()).unwrap();
        }
        flush(&producer, Duration::from_secs(30)).unwrap();
        assert_eq!(
            high_watermark(broker.brokers(), "t"),
            100,
            "the broker holds every record"
        );
        assert_eq!(
            counters.output.load(Ordering::Relaxed),
            100,
            "every delivery report was served"
        );
        assert_eq!(producer.in_flight_count(), 0);

        broker.stop_serving().unwrap();
        let record = BaseRecord::to("t").payload(b"late".as_slice()).key(b"k".as_slice());
        send_with_backpressure(&producer, record, broker.brokers()).unwrap();
        assert!(
            flush(&producer, Duration::from_millis(300)).is_err(),
            "a record is still in flight"
        );
        assert_eq!(producer.in_flight_count(), 1);
        assert_eq!(counters.output.load(Ordering::Relaxed), 100);
    }

    #[test]
    fn keys_follow_the_entity() {
        let review = br#"{"review_id":"r","user_id":"u1","business_id":"b1","stars":4.0}"#;
        assert_eq!(key_of(Entity::Review, review).as_deref(), Some("b1"));
        assert_eq!(
            key_of(Entity::User, br#"{"user_id":"u1","name":"x"}"#).as_deref(),
            Some("u1")
        );
        // An escaped id is decoded: the key is the id's value, not its JSON spelling.
        assert_eq!(
            key_of(Entity::Review, br#"{"business_id":"b\u00e9"}"#).as_deref(),
            Some("bé")
        );
        assert_eq!(key_of(Entity::Review, br#"{"review_id":"r""#), None);
        assert_eq!(key_of(Entity::Review, br#"{"review_id":"r"}"#), None);
        assert_eq!(key_of(Entity::Review, b"\xff\xfe"), None);
    }

    /// CPU time this thread has used (Linux: utime + stime of /proc/thread-self/stat).
    #[cfg(target_os = "linux")]
    fn thread_cpu() -> Duration {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        // Fields after the command name, which is in parentheses: utime and stime are 14 and 15.
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        // In USER_HZ, which Linux fixes at 100 for /proc.
        Duration::from_millis(ticks * 10)
    }

    /// Waiting for delivery reports sleeps: it does not spin on the clock (rdkafka's `poll` does
    /// for the last millisecond of each wait, and the demo's producer waited 1 ms at a time).
    #[cfg(target_os = "linux")]
    #[test]
    fn waiting_for_delivery_reports_does_not_spin() {
        let (broker, _counters, producer) = producer_on_embedded_broker();
        broker.stop_serving().unwrap();
        let record = BaseRecord::to("t")
            .payload(b"undeliverable".as_slice())
            .key(b"k".as_slice());
        send_with_backpressure(&producer, record, broker.brokers()).unwrap();
        let (cpu, started) = (thread_cpu(), Instant::now());
        assert!(
            flush(&producer, Duration::from_secs(2)).is_err(),
            "the record is still in flight"
        );
        let (used, waited) = (thread_cpu() - cpu, started.elapsed());
        // A busy wait uses about all of it, even on a loaded machine more than a quarter.
        assert!(used < waited / 4, "used {used:?} of CPU while waiting {waited:?}");
    }
}
