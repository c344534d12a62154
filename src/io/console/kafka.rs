//! The console against the broker: a reader thread that builds the picture from the
//! `alerts` topic (read_committed, from `console.history_window_s` back, then live) and
//! from `patrol-positions`, and the outbox that produces what the pages send. The
//! console keeps no state of its own: a restarted console reads the same window again.
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures::future::BoxFuture;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde_json::Value;

use super::picture::StreamPos;
use super::server::{Console, Outbox};
use crate::config::KafkaSettings;
use crate::core::model::Stream;
use crate::io::kafka::{client_config, partition_count};

const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Positions older than this are of no use on the map.
const POSITIONS_WINDOW_MS: i64 = 10 * 60 * 1000;
/// Weather stations report every few minutes; a station silent for longer than this
/// is shown without a reading (its alerts say it is silent).
const STATIONS_WINDOW_MS: i64 = 60 * 60 * 1000;

pub struct KafkaOutbox {
    producer: FutureProducer,
    topics: crate::config::Topics,
}

impl KafkaOutbox {
    pub fn new(k: &KafkaSettings) -> anyhow::Result<KafkaOutbox> {
        Ok(KafkaOutbox {
            producer: crate::io::kafka::producer(k)?,
            topics: k.topics.clone(),
        })
    }
}

impl Outbox for KafkaOutbox {
    fn send(
        &self,
        stream: Stream,
        key: String,
        value: Value,
    ) -> BoxFuture<'static, anyhow::Result<()>> {
        let producer = self.producer.clone();
        let topic = self.topics.input(stream).to_owned();
        Box::pin(async move {
            let payload = serde_json::to_vec(&value)?;
            producer
                .send(
                    FutureRecord::to(&topic).key(&key).payload(&payload),
                    Duration::from_secs(10),
                )
                .await
                .map_err(|(e, _)| anyhow::anyhow!("producing to {topic}: {e}"))?;
            Ok(())
        })
    }
}

/// Starts the reader thread. It runs for the life of the process; errors reading a
/// record are logged and skipped (the console shows what it could read).
pub fn start_feed(
    k: &KafkaSettings,
    console: Arc<Console>,
    history_window_ms: u64,
) -> anyhow::Result<()> {
    let consumer: BaseConsumer = client_config(
        k,
        &[
            // Never committed: every console reads the window anew.
            ("group.id", "roadwatch-console"),
            ("enable.auto.commit", "false"),
            ("isolation.level", "read_committed"),
        ],
    )
    .create()
    .with_context(|| {
        format!(
            "creating the console's consumer for {}",
            k.bootstrap_servers
        )
    })?;
    let now = chrono::Utc::now().timestamp_millis();
    let mut tpl = TopicPartitionList::new();
    for (topic, from_ms) in [
        (&k.topics.alerts, now - history_window_ms as i64),
        (&k.topics.ack, now - history_window_ms as i64),
        (&k.topics.patrol, now - POSITIONS_WINDOW_MS),
        (&k.topics.weather, now - STATIONS_WINDOW_MS),
    ] {
        for p in 0..partition_count(&consumer, topic)? {
            tpl.add_partition_offset(topic, p, Offset::Offset(from_ms.max(0)))?;
        }
    }
    // Timestamps → offsets; a partition with nothing that recent starts at its end.
    let mut start = consumer
        .offsets_for_times(tpl, LOOKUP_TIMEOUT)
        .context("looking up where the console's window starts")?;
    let past_the_end: Vec<(String, i32)> = start
        .elements()
        .iter()
        .filter(|e| matches!(e.offset(), Offset::Invalid | Offset::End))
        .map(|e| (e.topic().to_owned(), e.partition()))
        .collect();
    for (topic, partition) in past_the_end {
        start.set_partition_offset(&topic, partition, Offset::End)?;
    }
    consumer
        .assign(&start)
        .context("assigning the console's partitions")?;
    let alerts = k.topics.alerts.clone();
    let acks = k.topics.ack.clone();
    let weather = k.topics.weather.clone();
    std::thread::Builder::new()
        .name("console-feed".into())
        .spawn(move || loop {
            match consumer.poll(Duration::from_millis(200)) {
                None => {}
                Some(Err(e)) => tracing::warn!(error = %e, "console feed"),
                Some(Ok(m)) => {
                    let Some(value) = m
                        .payload()
                        .and_then(|b| serde_json::from_slice::<Value>(b).ok())
                    else {
                        continue;
                    };
                    if m.topic() == alerts {
                        let pos = StreamPos {
                            partition: m.partition(),
                            offset: m.offset(),
                        };
                        console.alert(pos, value);
                    } else if m.topic() == acks {
                        console.ack(StreamPos::ack(m.partition(), m.offset()), value);
                    } else if m.topic() == weather {
                        console.station(value);
                    } else {
                        console.position(&value);
                    }
                }
            }
        })
        .context("starting the console's feed")?;
    Ok(())
}
