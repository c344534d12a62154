//! `roadwatch simulate` to Kafka plays the patrol units' apps too: it reads the alerts
//! the engine publishes and hands each to the simulator, whose crews answer on
//! `dispatch-acks` by the same rules as in the demo (accept, decline or stay silent;
//! arrive; resolve with what the ground truth has there). Without it, every dispatch on
//! the production path timed out to escalation: nobody answered.
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::config::KafkaSettings;
use crate::core::model::Alert;
use crate::io::kafka::{client_config, partition_count};

pub struct AlertFeed {
    alerts: mpsc::Receiver<Alert>,
}

impl AlertFeed {
    /// Reads the alerts topic from its end (read_committed: what patrol apps see) on a
    /// thread of its own, for the life of the process.
    pub fn start(k: &KafkaSettings) -> anyhow::Result<AlertFeed> {
        let consumer: BaseConsumer = client_config(
            k,
            &[
                ("group.id", "roadwatch-simulate-patrol-apps"),
                ("enable.auto.commit", "false"),
                ("isolation.level", "read_committed"),
            ],
        )
        .create()
        .context("creating the simulated patrol apps' consumer")?;
        let topic = &k.topics.alerts;
        let mut tpl = TopicPartitionList::new();
        for p in 0..partition_count(&consumer, topic)? {
            tpl.add_partition_offset(topic, p, Offset::End)?;
        }
        consumer.assign(&tpl)?;
        let (tx, alerts) = mpsc::channel();
        std::thread::Builder::new()
            .name("sim-patrol-apps".into())
            .spawn(move || loop {
                match consumer.poll(Duration::from_millis(200)) {
                    Some(Ok(m)) => {
                        let Some(alert) = m
                            .payload()
                            .and_then(|b| serde_json::from_slice::<Alert>(b).ok())
                        else {
                            continue;
                        };
                        if tx.send(alert).is_err() {
                            return;
                        }
                    }
                    Some(Err(e)) => tracing::warn!(error = %e, "simulated patrol apps"),
                    None => {}
                }
            })
            .context("starting the simulated patrol apps")?;
        Ok(AlertFeed { alerts })
    }

    /// The alerts read since the last call.
    pub fn take(&self) -> Vec<Alert> {
        self.alerts.try_iter().collect()
    }
}
