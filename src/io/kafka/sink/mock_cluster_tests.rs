//! The sink against librdkafka's in-process mock cluster: broker answers a real broker
//! gives only by chance, injected on purpose. Unit tests of the sink's logic, beside the
//! real-broker tests in tests/kafka_*.rs.
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::ClientConfig;

use super::{Sink, SinkError};
use crate::config::{defaults, Guarantee};
use crate::io::kafka::broker::librdkafka::RdProducer;
use crate::io::kafka::broker::Producer as _;
use crate::io::kafka::dispatch_topics::DispatchTopics;
use crate::io::kafka::startup::{self, StreamTopics};
use crate::io::metrics::Metrics;
use crate::io::pipeline::{Content, Produced};

const TOPIC: &str = "alerts";

fn record() -> Produced {
    Produced {
        topic: TOPIC.to_owned(),
        partition: None,
        key: Some("k".to_owned()),
        payload: b"{}".to_vec(),
        content: Content::AlertCopy,
    }
}

type Cluster<'c> = MockCluster<'c, rdkafka::producer::DefaultProducerContext>;

/// A sink and a consumer (for the commit's group metadata) on `cluster`.
fn sink(cluster: &Cluster<'_>, guarantee: Guarantee) -> (Box<dyn Sink>, BaseConsumer) {
    let mut settings = defaults();
    settings.kafka.bootstrap_servers = cluster.bootstrap_servers();
    settings.processing.guarantee = guarantee;
    let k = &settings.kafka;
    let config = startup::producer_config(&settings, "sink-mock-test");
    let mut producer =
        RdProducer::new(config, DispatchTopics::new(k, std::iter::empty()).unwrap()).unwrap();
    if guarantee == Guarantee::ExactlyOnce {
        producer.init_transactions(Duration::from_secs(10)).unwrap();
    }
    let sink = super::new(
        guarantee,
        Box::new(producer),
        StreamTopics::new(k),
        Arc::new(Metrics::new()),
        crate::io::clock::system(),
        Duration::from_millis(100),
    );
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .set("group.id", "sink-mock-test")
        .create()
        .unwrap();
    (sink, consumer)
}

/// A produce answered with DUPLICATE_SEQUENCE_NUMBER is reported by librdkafka as
/// delivered, without an offset; the record is not in the log. Committing that
/// transaction would lose it (docs/KAFKA_RUNTIME.md, cause 4): the sink must abort and
/// rewind instead, and the work done again must commit.
#[test]
fn a_record_acknowledged_without_an_offset_fails_the_transaction_instead_of_committing() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic(TOPIC, 1, 1).unwrap();
    let (mut sink, consumer) = sink(&cluster, Guarantee::ExactlyOnce);

    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_DUPLICATE_SEQUENCE_NUMBER],
    );
    sink.send(&record()).unwrap();
    match sink.commit(&consumer) {
        Err(SinkError::Rewind(why)) => {
            assert!(why.contains("without an offset"), "{why}")
        }
        Err(SinkError::Fatal(e)) => panic!("fatal: {e:#}"),
        Ok(()) => panic!("a transaction whose record has no offset was committed"),
    }

    // The runtime's redo after a rewind: recover, then the same work again. librdkafka
    // took the lost record's sequence number as used, so the next produce finds the
    // broker's sequence behind its own, a fatal error of the idempotent producer: the
    // sink replaces the producer on the way, as it does after any such error.
    let mut attempts = 0;
    loop {
        attempts += 1;
        assert!(attempts <= 5, "the redo did not commit in 5 attempts");
        match sink.recover() {
            Ok(()) => {}
            Err(SinkError::Rewind(_)) => continue,
            Err(SinkError::Fatal(e)) => panic!("fatal: {e:#}"),
        }
        match sink.send(&record()).and_then(|()| sink.commit(&consumer)) {
            Ok(()) => break,
            Err(SinkError::Rewind(_)) => continue,
            Err(SinkError::Fatal(e)) => panic!("fatal: {e:#}"),
        }
    }
    assert_eq!(
        committed_records(&cluster),
        1,
        "the record is in the log once"
    );
}

/// At-least-once, the same answer fails the batch: its offsets are not committed and
/// the runtime reads its input again.
#[test]
fn at_least_once_a_record_acknowledged_without_an_offset_is_a_failed_delivery() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic(TOPIC, 1, 1).unwrap();
    let (mut sink, consumer) = sink(&cluster, Guarantee::AtLeastOnce);
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_DUPLICATE_SEQUENCE_NUMBER],
    );
    sink.send(&record()).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let why = loop {
        assert!(std::time::Instant::now() < deadline, "no delivery report");
        match sink.poll(&consumer) {
            Ok(()) => std::thread::sleep(Duration::from_millis(5)),
            Err(SinkError::Rewind(why)) => break why,
            Err(SinkError::Fatal(e)) => panic!("fatal: {e:#}"),
        }
    };
    assert!(why.contains("without an offset"), "{why}");
}

/// Records a read_committed reader finds in the topic.
fn committed_records(cluster: &Cluster<'_>) -> usize {
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .set("group.id", "sink-mock-reader")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, rdkafka::Offset::Beginning)
        .unwrap();
    reader.assign(&tpl).unwrap();
    let mut n = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut quiet = 0;
    while std::time::Instant::now() < deadline && quiet < 10 {
        match reader.poll(Duration::from_millis(100)) {
            Some(Ok(_)) => {
                n += 1;
                quiet = 0;
            }
            _ => quiet += 1,
        }
    }
    n
}
