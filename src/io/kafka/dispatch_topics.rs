//! Per-unit topics `dispatch.<unit_id>`: created with the AdminClient the first time an
//! alert is addressed to a unit, then remembered. The broker refuses to auto-create
//! topics in production set-ups (and librdkafka's producer never asks it to), so without
//! this a unit's first dispatch would wait for metadata and fail.
use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{Client, ClientContext, DefaultClientContext};
use rdkafka::types::RDKafkaErrorCode;

use super::client::client_config;
use crate::config::KafkaSettings;

const CREATE_TIMEOUT: Duration = Duration::from_secs(15);

pub(crate) struct DispatchTopics {
    prefix: String,
    partitions: i32,
    replication: i32,
    /// Topics known to exist: seeded from the broker's metadata at start-up, then every
    /// topic created or found to exist. A deleted topic is not noticed (documented).
    known: HashSet<String>,
    admin: AdminClient<DefaultClientContext>,
}

impl DispatchTopics {
    pub(crate) fn new(
        k: &KafkaSettings,
        existing: impl IntoIterator<Item = String>,
    ) -> anyhow::Result<Self> {
        let admin = client_config(k, &[]).create().with_context(|| {
            format!("creating a Kafka admin client for {}", k.bootstrap_servers)
        })?;
        let prefix = k.topics.dispatch_prefix.clone();
        Ok(DispatchTopics {
            known: existing
                .into_iter()
                .filter(|t| t.starts_with(&prefix))
                .collect(),
            prefix,
            partitions: k.dispatch_topic_partitions,
            replication: k.dispatch_topic_replication,
            admin,
        })
    }

    /// Forgets what is known: after a failed transaction a per-unit topic may be the
    /// cause (deleted behind our back), so the next dispatch checks again.
    pub(crate) fn forget_all(&mut self) {
        self.known.clear();
    }

    /// Makes sure `topic` exists when it is a per-unit topic; other topics were checked at
    /// start-up. Blocks for the broker's answer on a unit's first dispatch only, then
    /// until `producer` sees the topic with a leader for every partition.
    /// Returns whether the topic was new to this process.
    pub(crate) fn ensure<C: ClientContext>(
        &mut self,
        topic: &str,
        producer: &Client<C>,
    ) -> anyhow::Result<bool> {
        if !topic.starts_with(&self.prefix) || self.known.contains(topic) {
            return Ok(false);
        }
        let new = NewTopic::new(
            topic,
            self.partitions,
            TopicReplication::Fixed(self.replication),
        );
        let opts = AdminOptions::new().operation_timeout(Some(CREATE_TIMEOUT));
        let results = futures::executor::block_on(self.admin.create_topics([&new], &opts))
            .with_context(|| format!("creating dispatch topic {topic}"))?;
        for result in results {
            match result {
                Ok(_) => tracing::info!(topic, "created dispatch topic"),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => anyhow::bail!("creating dispatch topic {name}: {code}"),
            }
        }
        wait_for_leaders(producer, topic)?;
        self.known.insert(topic.to_owned());
        Ok(true)
    }
}

/// Topic creation returns once the controller has recorded the topic; the brokers learn
/// it, and elect its leaders, a little later. The first records to a new topic went
/// missing in the backlog tests (docs/KAFKA_RUNTIME.md, cause 4): the broker answered
/// one without an offset, which the sink now treats as a failed delivery. This wait
/// keeps the first produce out of the moment before the producer knows a leader for
/// every partition, where such answers are most likely; it costs a metadata round trip
/// per new topic.
fn wait_for_leaders<C: ClientContext>(producer: &Client<C>, topic: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + CREATE_TIMEOUT;
    loop {
        let ready = producer
            .fetch_metadata(Some(topic), Duration::from_secs(1))
            .ok()
            .is_some_and(|md| {
                md.topics().iter().any(|t| {
                    t.name() == topic
                        && t.error().is_none()
                        && !t.partitions().is_empty()
                        && t.partitions()
                            .iter()
                            .all(|p| p.leader() >= 0 && p.error().is_none())
                })
            });
        if ready {
            return Ok(());
        }
        if Instant::now() >= deadline {
            anyhow::bail!("dispatch topic {topic} has no leader after {CREATE_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
