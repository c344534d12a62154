//! Start-up of the Kafka runtime: which topics must exist, the identity of this instance
//! (its transactional id), and the librdkafka configuration of each client role. The
//! operator's `kafka.options` are applied last by [`client_config`], so everything here
//! is a default that can be overridden.
use anyhow::bail;
use rdkafka::ClientConfig;
use std::collections::{BTreeMap, BTreeSet};

use super::admin::{create_topics, TopicSpec};
use super::client::client_config;
use super::probe::{denied_message, Probe};
use crate::config::{Guarantee, KafkaSettings, Settings};
use crate::core::model::Stream;

/// librdkafka doubles the wait between reconnection attempts up to 10 s by default: after
/// a broker outage of more than a few seconds, clients noticed it was back up to 10 s
/// late. One second bounds that. It matters most to the transactional producer: an abort
/// left pending by the outage must reach the coordinator before the coordinator's own
/// check for timed-out transactions (every 10 s) aborts it by bumping the producer epoch,
/// which fences the producer (fatal, and the process exits). docs/KAFKA_RUNTIME.md,
/// "Broker outage".
const RECONNECT_BACKOFF_MAX_MS: &str = "1000";

/// The topics `run` reads and writes (per-unit topics aside), with their config keys.
fn required_topics(k: &KafkaSettings) -> Vec<(&'static str, &str)> {
    let t = &k.topics;
    vec![
        ("kafka.topics.camera", &t.camera),
        ("kafka.topics.plate", &t.plate),
        ("kafka.topics.weather", &t.weather),
        ("kafka.topics.patrol", &t.patrol),
        ("kafka.topics.ack", &t.ack),
        ("kafka.topics.operator", &t.operator),
        ("kafka.topics.alerts", &t.alerts),
        ("kafka.topics.dlq", &t.dlq),
    ]
}

/// Connects (a wrong password or certificate stops here, naming the key), then checks
/// that every input and output topic exists and that this principal may use it; creates
/// the missing ones when `kafka.create_topics = true` (broker-default partitions and
/// replication), otherwise fails naming each missing topic and its key. Returns the
/// topics this principal sees.
pub(crate) fn ensure_topics(k: &KafkaSettings) -> anyhow::Result<BTreeMap<String, i32>> {
    let required = required_topics(k);
    let names: BTreeSet<&str> = required.iter().map(|(_, n)| *n).collect();
    if names.len() != required.len() {
        bail!("kafka.topics: every input and output topic needs its own name (two keys name the same topic)");
    }
    let probe = Probe::connect(k)?;
    let (missing, denied) = probe.sort(&required)?;
    // Not retried: an ACL does not appear by waiting, and creating the topic would be
    // refused as well.
    if !denied.is_empty() {
        bail!(
            "{}",
            denied_message(
                &k.bootstrap_servers,
                &denied,
                "read its inputs and write its outputs"
            )
        );
    }
    if missing.is_empty() {
        return probe.topics();
    }
    if !k.create_topics {
        let list: Vec<String> = missing
            .iter()
            .map(|(key, name)| format!("{name} ({key})"))
            .collect();
        bail!(
            "missing Kafka topics on {}: {}. Create them, or set kafka.create_topics = true",
            k.bootstrap_servers,
            list.join(", ")
        );
    }
    let names: Vec<&str> = missing.iter().map(|(_, name)| *name).collect();
    create_missing(
        k,
        &names,
        -1,
        "created missing topic (kafka.create_topics = true)",
    )?;
    // Read back the partition counts the broker chose.
    probe.topics()
}

/// Makes sure the repartition topics exist with `scaling.partitions` each: creates
/// the missing ones (they are this application's own, as Kafka Streams creates its
/// internal topics), and stops when one has another count, since keys would then reach
/// other owners than the ones the count names.
pub(crate) fn ensure_repartition_topics(
    k: &KafkaSettings,
    names: &[&str],
    partitions: i32,
) -> anyhow::Result<()> {
    let required: Vec<(&str, &str)> = names.iter().map(|n| ("scaling.partitions", *n)).collect();
    let probe = Probe::connect(k)?;
    let (missing, denied) = probe.sort(&required)?;
    if !denied.is_empty() {
        bail!(
            "{}",
            denied_message(
                &k.bootstrap_servers,
                &denied,
                "write and read its repartition topics"
            )
        );
    }
    let absent: Vec<&str> = missing.iter().map(|(_, name)| *name).collect();
    create_missing(k, &absent, partitions, "created repartition topic")?;
    let found = probe.topics()?;
    for name in names {
        match found.get(*name) {
            Some(&n) if n == partitions => {}
            Some(&n) => bail!(
                "scaling.partitions: the repartition topic {name} has {n} partitions, not \
                 {partitions}. Set scaling.partitions = {n}, or recreate the topic (all \
                 instances stopped: its records would reach other owners)"
            ),
            None => bail!("scaling.partitions: the repartition topic {name} was not created"),
        }
    }
    Ok(())
}

/// Creates `names` with `partitions` each (-1: the broker's default) and the broker's
/// default replication, logging `what` for each.
fn create_missing(
    k: &KafkaSettings,
    names: &[&str],
    partitions: i32,
    what: &str,
) -> anyhow::Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    let specs: Vec<TopicSpec> = names
        .iter()
        .map(|name| TopicSpec {
            name: (*name).to_owned(),
            partitions,
            replication: -1,
        })
        .collect();
    futures::executor::block_on(create_topics(k, &specs))?;
    for name in names {
        tracing::info!(topic = name, partitions, "{what}");
    }
    Ok(())
}

/// This instance's stable suffix: `kafka.instance_id`, else the host name.
pub(crate) fn instance_id(k: &KafkaSettings) -> String {
    if !k.instance_id.is_empty() {
        return k.instance_id.clone();
    }
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    let cleaned: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "0".to_owned()
    } else {
        cleaned
    }
}

/// `<client_id>-<group_id>-<instance>`: the same after a restart, so that the new
/// producer fences the old one and aborts its open transaction (docs/KAFKA_RUNTIME.md).
pub(crate) fn transactional_id(k: &KafkaSettings, instance: &str) -> String {
    format!("{}-{}-{}", k.client_id, k.group_id, instance)
}

/// The group consumer over camera, plate and weather.
pub(crate) fn group_consumer_config(s: &Settings) -> ClientConfig {
    let k = &s.kafka;
    client_config(
        k,
        &[
            ("group.id", k.group_id.as_str()),
            // Incremental rebalances: partitions that stay put keep flowing.
            ("partition.assignment.strategy", "cooperative-sticky"),
            // Offsets move only with the transaction (exactly-once) or after the delivery
            // reports (at-least-once), never on a timer.
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
            ("isolation.level", "read_committed"),
            // A crashed instance's partitions move after 10 s rather than librdkafka's 45.
            ("session.timeout.ms", "10000"),
            ("heartbeat.interval.ms", "1000"),
            // Lag per partition and broker round trips for /readyz and the metrics.
            ("statistics.interval.ms", "1000"),
            // librdkafka stops fetching while 100,000 records wait in its queue and by
            // default looks again only after 1 s; the engine drains that in well under
            // a second, so the default halves throughput (docs/PERFORMANCE.md).
            ("fetch.queue.backoff.ms", "20"),
            // A partition the event-time merge resumes is fetched with the next fetch
            // request; behind librdkafka's 500 ms long poll for caught-up partitions it
            // waited that long while the others were held for it.
            ("fetch.wait.max.ms", "100"),
            ("fetch.error.backoff.ms", "20"),
            ("reconnect.backoff.max.ms", RECONNECT_BACKOFF_MAX_MS),
        ],
    )
}

/// The group-less consumer that reads the global streams (`patrol-positions`,
/// `dispatch-acks`) in full and re-reads input windows when state is rebuilt. It has a group id only because librdkafka's manual
/// assignment needs one; it never joins the group and never commits.
pub(crate) fn side_consumer_config(s: &Settings, instance: &str) -> ClientConfig {
    let k = &s.kafka;
    let group = format!("{}.global.{}", k.group_id, instance);
    client_config(
        k,
        &[
            ("group.id", group.as_str()),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
            ("isolation.level", "read_committed"),
            ("fetch.queue.backoff.ms", "20"),
            // A partition the event-time merge resumes is fetched with the next fetch
            // request; behind librdkafka's 500 ms long poll for caught-up partitions it
            // waited that long while the others were held for it.
            ("fetch.wait.max.ms", "100"),
            ("fetch.error.backoff.ms", "20"),
            ("reconnect.backoff.max.ms", RECONNECT_BACKOFF_MAX_MS),
        ],
    )
}

/// The producer: transactional under exactly-once, idempotent under at-least-once.
pub(crate) fn producer_config(s: &Settings, transactional_id: &str) -> ClientConfig {
    let k = &s.kafka;
    match s.processing.guarantee {
        Guarantee::ExactlyOnce => client_config(
            k,
            &[
                ("transactional.id", transactional_id),
                ("enable.idempotence", "true"),
                // An instance that dies mid-transaction blocks read_committed readers of
                // its output partitions until it is fenced or this runs out.
                ("transaction.timeout.ms", "10000"),
                ("linger.ms", "1"),
                ("statistics.interval.ms", "1000"),
                ("reconnect.backoff.max.ms", RECONNECT_BACKOFF_MAX_MS),
            ],
        ),
        Guarantee::AtLeastOnce => client_config(
            k,
            &[
                ("enable.idempotence", "true"),
                ("acks", "all"),
                ("linger.ms", "1"),
                ("statistics.interval.ms", "1000"),
                ("reconnect.backoff.max.ms", RECONNECT_BACKOFF_MAX_MS),
            ],
        ),
    }
}

/// The input stream read from a topic of the group subscription.
#[derive(Debug, Clone)]
pub(crate) struct StreamTopics {
    by_name: Vec<(String, Stream)>,
}

impl StreamTopics {
    pub(crate) fn new(k: &KafkaSettings) -> Self {
        StreamTopics {
            by_name: Stream::ALL
                .iter()
                .map(|s| (k.topics.input(*s).to_owned(), *s))
                .collect(),
        }
    }

    /// Linear over six names: cheaper than hashing the topic of every record.
    pub(crate) fn stream_of(&self, topic: &str) -> Option<Stream> {
        self.by_name
            .iter()
            .find(|(name, _)| name == topic)
            .map(|(_, s)| *s)
    }

    pub(crate) fn topic_of(&self, stream: Stream) -> &str {
        self.by_name
            .iter()
            .find(|(_, s)| *s == stream)
            .map(|(name, _)| name.as_str())
            .unwrap_or_default()
    }

    /// The topics of the consumer group: every input but the global streams.
    pub(crate) fn group_topics(&self) -> Vec<&str> {
        self.by_name
            .iter()
            .filter(|(_, s)| !is_global(*s))
            .map(|(n, _)| n.as_str())
            .collect()
    }

    /// The global streams and their topics.
    pub(crate) fn global_topics(&self) -> Vec<(Stream, &str)> {
        self.by_name
            .iter()
            .filter(|(_, s)| is_global(*s))
            .map(|(n, s)| (*s, n.as_str()))
            .collect()
    }
}

/// Streams every instance reads in full, outside the group: any instance may need any
/// unit's position, and an ack or an operator action must reach the instance that raised
/// its alert, which its key (`unit_id`, `alert_id` hashed over partitions) does not tell
/// (docs/KAFKA_RUNTIME.md, "Dispatch across instances").
pub(crate) fn is_global(stream: Stream) -> bool {
    matches!(stream, Stream::Patrol | Stream::Ack | Stream::Operator)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_acks_are_read_outside_the_group() {
        let k = crate::config::defaults().kafka;
        let topics = StreamTopics::new(&k);
        let t = &k.topics;
        assert_eq!(
            topics.group_topics(),
            vec![t.camera.as_str(), t.plate.as_str(), t.weather.as_str()]
        );
        assert_eq!(
            topics.global_topics(),
            vec![
                (Stream::Patrol, t.patrol.as_str()),
                (Stream::Ack, t.ack.as_str()),
                (Stream::Operator, t.operator.as_str())
            ]
        );
    }
}
