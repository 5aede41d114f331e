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
    #[error("{0}")]
    Input(String),
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
