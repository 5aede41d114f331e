//! The in-process Kafka broker of `lab demo` and of `lab lesson run --embedded`: librdkafka's mock
//! cluster, which speaks the real Kafka protocol on 127.0.0.1. A `MockCluster` holds raw pointers
//! and must stay on the thread that made it, so one thread owns it and takes commands over a
//! channel; the handle can be shared by async tasks and stops the cluster when dropped.

use std::sync::mpsc;
use std::thread::JoinHandle;

use rdkafka::mocking::MockCluster;

use super::Topics;

/// The mock cluster's only broker.
const BROKER_ID: i32 = 1;

#[derive(Debug, thiserror::Error)]
#[error("the in-process Kafka broker (librdkafka's mock cluster): {0}")]
pub struct EmbeddedError(String);

enum Command {
    /// Refuse connections (`false`) or accept them again (`true`), like a stopped and restarted broker.
    Accept(bool, mpsc::Sender<Result<(), String>>),
}

pub struct EmbeddedBroker {
    brokers: String,
    commands: Option<mpsc::Sender<Command>>,
    thread: Option<JoinHandle<()>>,
}

impl EmbeddedBroker {
    /// Starts a one-broker cluster holding `topics` (name, partitions). The admin API does not
    /// create topics on a mock cluster, so every topic the stages use must be listed here.
    pub fn start(topics: Vec<(String, i32)>) -> Result<Self, EmbeddedError> {
        let started = std::time::Instant::now();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<String, String>>();
        let (commands, inbox) = mpsc::channel::<Command>();
        let thread = std::thread::Builder::new()
            .name("lab-embedded-kafka".into())
            .spawn(move || {
                let cluster = match MockCluster::new(1) {
                    Ok(c) => c,
                    Err(e) => {
                        drop(ready_tx.send(Err(format!("cannot start it: {e}"))));
                        return;
                    }
                };
                for (topic, partitions) in &topics {
                    if let Err(e) = cluster.create_topic(topic, *partitions, 1) {
                        drop(ready_tx.send(Err(format!("cannot create topic {topic}: {e}"))));
                        return;
                    }
                }
                drop(ready_tx.send(Ok(cluster.bootstrap_servers())));
                // Until the handle is dropped (the channel closes).
                while let Ok(Command::Accept(up, reply)) = inbox.recv() {
                    let result = if up {
                        cluster.broker_up(BROKER_ID)
                    } else {
                        cluster.broker_down(BROKER_ID)
                    };
                    drop(reply.send(result.map_err(|e| e.to_string())));
                }
            })
            .map_err(|e| EmbeddedError(format!("cannot start its thread: {e}")))?;
        let brokers = ready_rx
            .recv()
            .map_err(|_| EmbeddedError("its thread ended before it was ready".into()))?
            .map_err(EmbeddedError)?;
        // With how long the start took: `lab demo` was seen waiting 3 s between its PostgreSQL's
        // start and this line (README, Performance), and the log must tell which step it was.
        tracing::info!(%brokers, elapsed_ms = started.elapsed().as_millis(), "embedded Kafka broker started");
        Ok(Self {
            brokers,
            commands: Some(commands),
            thread: Some(thread),
        })
    }

    /// A cluster with every topic the stages use: `partitions` each, and one for the DLQ (its
    /// order is the order things went wrong).
    pub fn for_stages(topics: &Topics, partitions: i32) -> Result<Self, EmbeddedError> {
        let dlq = topics.dlq();
        Self::start(
            topics
                .all()
                .into_iter()
                .map(|t| {
                    let n = if t == dlq { 1 } else { partitions };
                    (t, n)
                })
                .collect(),
        )
    }

    /// The bootstrap servers to give clients (`127.0.0.1:PORT`).
    #[must_use]
    pub fn brokers(&self) -> &str {
        &self.brokers
    }

    /// Stops the broker: it drops every connection and refuses new ones until [`Self::start_serving`].
    pub fn stop_serving(&self) -> Result<(), EmbeddedError> {
        self.accept(false)
    }

    pub fn start_serving(&self) -> Result<(), EmbeddedError> {
        self.accept(true)
    }

    fn accept(&self, up: bool) -> Result<(), EmbeddedError> {
        let gone = || EmbeddedError("it is no longer running".into());
        let (reply, answer) = mpsc::channel();
        self.commands
            .as_ref()
            .ok_or_else(gone)?
            .send(Command::Accept(up, reply))
            .map_err(|_| gone())?;
        answer.recv().map_err(|_| gone())?.map_err(EmbeddedError)
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        drop(self.commands.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::warn!("the embedded Kafka broker's thread panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use std::time::Duration;

    fn partitions(broker: &EmbeddedBroker, topic: &str) -> Result<usize, String> {
        let client: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", broker.brokers())
            .create()
            .map_err(|e| e.to_string())?;
        let meta = client
            .fetch_metadata(Some(topic), Duration::from_secs(2))
            .map_err(|e| e.to_string())?;
        Ok(meta.topics().first().map_or(0, |t| t.partitions().len()))
    }

    #[test]
    fn holds_its_topics_and_stops_and_starts_serving() {
        let broker = EmbeddedBroker::start(vec![("t.a".into(), 3), ("t.b".into(), 1)]).unwrap();
        assert!(broker.brokers().starts_with("127.0.0.1:"), "{}", broker.brokers());
        assert_eq!(partitions(&broker, "t.a"), Ok(3));
        assert_eq!(partitions(&broker, "t.b"), Ok(1));
        broker.stop_serving().unwrap();
        assert!(partitions(&broker, "t.a").is_err(), "a stopped broker answers nothing");
        broker.start_serving().unwrap();
        assert_eq!(partitions(&broker, "t.a"), Ok(3));
    }
}
