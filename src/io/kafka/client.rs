//! librdkafka client configuration. Pass-through options from `kafka.options` are applied
//! last so that an operator can override anything we choose (security, timeouts, tuning).
use anyhow::Context as _;
use rdkafka::consumer::StreamConsumer;
use rdkafka::producer::FutureProducer;
use rdkafka::ClientConfig;

use crate::config::KafkaSettings;

/// Brokers, client id, `[kafka.security]`, the role's own defaults, then the operator's
/// options.
pub fn client_config(k: &KafkaSettings, role_defaults: &[(&str, &str)]) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", &k.bootstrap_servers)
        .set("client.id", &k.client_id);
    for (name, value) in k.security.client_properties() {
        cfg.set(name, value);
    }
    for (name, value) in role_defaults {
        cfg.set(*name, *value);
    }
    for (name, value) in &k.options {
        cfg.set(name, value);
    }
    cfg
}

/// A plain (non-transactional) idempotent producer, for tools and tests.
pub fn producer(k: &KafkaSettings) -> anyhow::Result<FutureProducer> {
    client_config(k, &[("enable.idempotence", "true"), ("linger.ms", "5")])
        .create()
        .with_context(|| format!("creating a Kafka producer for {}", k.bootstrap_servers))
}

/// A consumer in `group_id` that reads only committed transactional data, as patrol apps
/// and the command center do.
///
/// Detach (`.detach()`) or drop every message before dropping the consumer: a live
/// `BorrowedMessage` keeps librdkafka's destroy waiting forever, and the borrow checker
/// does not catch it because the message's drop glue does not name the borrow.
pub fn consumer(k: &KafkaSettings, group_id: &str) -> anyhow::Result<StreamConsumer> {
    client_config(
        k,
        &[
            ("group.id", group_id),
            ("isolation.level", "read_committed"),
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", "earliest"),
        ],
    )
    .create()
    .with_context(|| format!("creating a Kafka consumer for {}", k.bootstrap_servers))
}
