//! Tools that act on a broker's data for the user, the way Kafka's own scripts do: a consumer
//! group's offsets, read and reset ([`offsets`]); a topic's records, read and filtered ([`tail`]). The CLI (`lab kafka …`) and, later, the monitor
//! call them; they never see either.
//!
//! librdkafka calls block: call these from a blocking thread or `block_in_place`.

pub mod commands;
pub mod dlq;
pub mod offsets;
pub mod tail;

use std::time::Duration;

/// How long one broker request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum KafkaToolError {
    #[error(
        "Kafka: cannot {action} (brokers {brokers}): {detail}\nis the broker running and reachable? pass --brokers HOST:PORT or set LAB_KAFKA_BROKERS"
    )]
    Kafka {
        action: String,
        brokers: String,
        detail: String,
    },
    #[error(
        "consumer group {group} still has {} connected member(s) ({}): offsets can only be reset while no one \
         reads with the group. Stop those consumers first (Ctrl-C on `lab transform` or `lab consume`, `:stop` \
         in the monitor), then try again. A member still listed after its process ended is a static member the \
         broker has not expired yet: the lab's stages register as static members, which Kafka drops after \
         session.timeout.ms (10 s); the test broker (noida-db) never drops them, so there use a new --group",
        members.len(), members.join(", ")
    )]
    ActiveMembers { group: String, members: Vec<String> },
    #[error(
        "{topic}[{partition}]: consumer group {group} has no committed offset there to shift from; \
         use --to-earliest, --to-latest or --to-datetime for that partition"
    )]
    NothingToShift {
        group: String,
        topic: String,
        partition: i32,
    },
    #[error(
        "consumer group {group}: {} partition(s) this reset moves ({}) stayed with another member for the \
         {waited_s} s the reset waited in the group, so someone still reads with it and would commit over the \
         reset. The broker at {brokers} cannot list groups, so it cannot say who: stop the group's consumers \
         (`:stop` in the monitor, Ctrl-C on `lab transform` or `lab consume`), then try again. Nothing was \
         changed",
        partitions.len(), partitions.join(", ")
    )]
    PartitionsHeld {
        group: String,
        brokers: String,
        partitions: Vec<String>,
        waited_s: u64,
    },
    #[error("{0}")]
    Input(String),
}

/// The offset of the first record at or after `at` on each partition, `None` where there is none
/// (Kafka's ListOffsets by timestamp). Blocking.
fn offsets_at<'a>(
    client: &rdkafka::consumer::BaseConsumer,
    brokers: &str,
    partitions: impl IntoIterator<Item = (&'a str, i32)>,
    at: &chrono::DateTime<chrono::FixedOffset>,
) -> Result<std::collections::BTreeMap<(String, i32), Option<i64>>, KafkaToolError> {
    use rdkafka::consumer::Consumer;
    let failed = |e| KafkaToolError::kafka("look up offsets by time", brokers, e);
    let mut tpl = rdkafka::TopicPartitionList::new();
    for (topic, partition) in partitions {
        tpl.add_partition_offset(topic, partition, rdkafka::Offset::Offset(at.timestamp_millis()))
            .map_err(failed)?;
    }
    // librdkafka refuses an empty list as an invalid argument, which would read as a broker fault.
    if tpl.count() == 0 {
        return Ok(std::collections::BTreeMap::new());
    }
    let found = client.offsets_for_times(tpl, REQUEST_TIMEOUT).map_err(failed)?;
    Ok(found
        .elements()
        .iter()
        .map(|e| {
            let offset = match e.offset() {
                rdkafka::Offset::Offset(o) if o >= 0 => Some(o),
                _ => None,
            };
            ((e.topic().to_string(), e.partition()), offset)
        })
        .collect())
}

impl KafkaToolError {
    fn kafka(action: &str, brokers: &str, e: impl std::fmt::Display) -> Self {
        KafkaToolError::Kafka {
            action: action.to_string(),
            brokers: brokers.to_string(),
            detail: e.to_string(),
        }
    }
}
