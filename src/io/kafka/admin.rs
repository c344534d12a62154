//! Topic administration with the AdminClient: start-up checks and per-unit topics.
use std::time::Duration;

use anyhow::{bail, Context as _};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;

use super::client::client_config;
use crate::config::KafkaSettings;

const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    /// -1 asks for the broker's default.
    pub replication: i32,
}

fn admin(k: &KafkaSettings) -> anyhow::Result<AdminClient<DefaultClientContext>> {
    client_config(k, &[])
        .create()
        .with_context(|| format!("creating a Kafka admin client for {}", k.bootstrap_servers))
}

/// Creates the topics that do not exist yet; existing ones are left as they are.
pub async fn create_topics(k: &KafkaSettings, specs: &[TopicSpec]) -> anyhow::Result<()> {
    let admin = admin(k)?;
    let new: Vec<NewTopic> = specs
        .iter()
        .map(|s| {
            NewTopic::new(
                &s.name,
                s.partitions,
                TopicReplication::Fixed(s.replication),
            )
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT));
    let results = admin
        .create_topics(&new, &opts)
        .await
        .context("asking the broker to create topics")?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => bail!("creating topic {name}: {code}"),
        }
    }
    Ok(())
}

/// Deletes topics; a topic that is already gone is not an error.
pub async fn delete_topics(k: &KafkaSettings, names: &[&str]) -> anyhow::Result<()> {
    let admin = admin(k)?;
    let opts = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT));
    let results = admin
        .delete_topics(names, &opts)
        .await
        .context("asking the broker to delete topics")?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
            Err((name, code)) => bail!("deleting topic {name}: {code}"),
        }
    }
    Ok(())
}

/// Whether the broker knows the topic (blocking metadata request; call off the hot path).
pub fn topic_exists(k: &KafkaSettings, name: &str) -> anyhow::Result<bool> {
    let consumer: BaseConsumer = client_config(k, &[])
        .create()
        .context("creating a metadata client")?;
    let md = consumer
        .fetch_metadata(Some(name), ADMIN_TIMEOUT)
        .with_context(|| format!("fetching metadata for {name} from {}", k.bootstrap_servers))?;
    Ok(md
        .topics()
        .iter()
        .any(|t| t.name() == name && t.error().is_none() && !t.partitions().is_empty()))
}

/// The number of partitions of `topic`, from `consumer`'s metadata; an error naming the
/// topic when it does not exist (`kafka.topics`).
pub fn partition_count<C: rdkafka::consumer::ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
) -> anyhow::Result<i32> {
    let md = consumer
        .fetch_metadata(Some(topic), ADMIN_TIMEOUT)
        .with_context(|| format!("reading the metadata of {topic}"))?;
    let partitions = md.topics().first().map_or(0, |t| t.partitions().len());
    if partitions == 0 {
        bail!("topic {topic} does not exist (kafka.topics)");
    }
    Ok(partitions as i32)
}
