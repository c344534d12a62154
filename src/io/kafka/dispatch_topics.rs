//! Per-unit topics `dispatch.<unit_id>`: created with the AdminClient the first time an
//! alert is addressed to a unit, then remembered. The broker refuses to auto-create
//! topics in production set-ups (and librdkafka's producer never asks it to), so without
//! this a unit's first dispatch would wait for metadata and fail.
use std::collections::HashSet;
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
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
    /// start-up. Blocks for the broker's answer on a unit's first dispatch only.
    pub(crate) fn ensure(&mut self, topic: &str) -> anyhow::Result<()> {
        if !topic.starts_with(&self.prefix) || self.known.contains(topic) {
            return Ok(());
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
        self.known.insert(topic.to_owned());
        Ok(())
    }
}
