//! `roadwatch report --kafka`: the alerts topic, read as the command center reads it
//! (`read_committed`), from the beginning of every partition to the end offsets asked
//! for at start. The consumer assigns partitions and never commits: a report must not
//! move anybody's offsets, and records produced while it reads belong to the next one.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message as _;
use rdkafka::{Offset, TopicPartitionList};

use super::kafka::client_config;
use super::report::Tally;
use crate::config::KafkaSettings;

/// Metadata and offset requests; a broker that does not answer in this time is down.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A partition that stays short of its end offset this long fails the report rather
/// than printing figures that silently miss part of the topic.
const STALL_LIMIT: Duration = Duration::from_secs(30);

/// Folds every record of `kafka.topics.alerts` up to the current end into `tally`.
pub fn read_alerts_topic(k: &KafkaSettings, tally: &mut Tally) -> anyhow::Result<()> {
    let topic = k.topics.alerts.as_str();
    let servers = k.bootstrap_servers.as_str();
    // librdkafka's manual assignment needs a group id; it is never joined or committed.
    let group = format!("{}.report", k.client_id);
    let consumer: BaseConsumer = client_config(
        k,
        &[
            ("group.id", group.as_str()),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
            ("isolation.level", "read_committed"),
        ],
    )
    .create()
    .with_context(|| format!("creating a Kafka consumer for {servers}"))?;

    let metadata = consumer
        .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
        .with_context(|| format!("fetching metadata for topic {topic} from {servers}"))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        bail!("topic {topic} does not exist on {servers} (kafka.topics.alerts)");
    }

    // Under read_committed the high watermark is the last stable offset: records of a
    // transaction still open at start are not waited for.
    let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    for p in partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, REQUEST_TIMEOUT)
            .with_context(|| format!("asking {servers} for the offsets of {topic}[{p}]"))?;
        if high > low {
            ends.insert(p, high);
            assignment.add_partition_offset(topic, p, Offset::Beginning)?;
        }
    }
    if ends.is_empty() {
        return Ok(());
    }
    consumer
        .assign(&assignment)
        .with_context(|| format!("assigning {topic} on {servers}"))?;

    let mut progress_at = Instant::now();
    while !ends.is_empty() {
        let mut reached = Vec::new();
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let (p, offset) = (m.partition(), m.offset());
                if let Some(&end) = ends.get(&p) {
                    if offset < end {
                        tally.add_record(p, offset, m.payload());
                        progress_at = Instant::now();
                    }
                    if offset + 1 >= end {
                        reached.push(p);
                    }
                }
            }
            Some(Err(e)) => tracing::warn!(error = %e, %topic, "report: reading the alerts topic"),
            None => {
                // Transaction markers take offsets but are never delivered; the
                // consumer's position moves past them.
                let positions = consumer.position().unwrap_or_default();
                for (&p, &end) in &ends {
                    let at = positions
                        .find_partition(topic, p)
                        .and_then(|e| e.offset().to_raw())
                        .unwrap_or(-1);
                    if at >= end {
                        reached.push(p);
                    }
                }
            }
        }
        for p in reached {
            ends.remove(&p);
            let mut done = TopicPartitionList::new();
            done.add_partition(topic, p);
            // Later records are for the next report; stop fetching them.
            let _ = consumer.pause(&done);
        }
        if !ends.is_empty() && progress_at.elapsed() >= STALL_LIMIT {
            bail!(
                "reading {topic} from {servers}: partitions {:?} made no progress for {STALL_LIMIT:?}",
                ends.keys().collect::<Vec<_>>()
            );
        }
    }
    Ok(())
}
