//! The real-broker harness, end to end: a record produced to Apache Kafka is read back
//! through roadwatch's own Kafka module. `scripts/test` starts the broker (or uses
//! KAFKA_BOOTSTRAP); without one this test fails rather than pretending to pass.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::Consumer;
use rdkafka::message::Message as _;
use rdkafka::producer::FutureRecord;
use roadwatch::io::kafka::{self, TopicSpec};

fn settings() -> roadwatch::config::KafkaSettings {
    let mut s = roadwatch::config::defaults().kafka;
    if let Ok(b) = std::env::var("KAFKA_BOOTSTRAP") {
        s.bootstrap_servers = b;
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_and_consume_through_the_real_broker() {
    let k = settings();
    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let topic = format!("roadwatch-harness-{nonce}");
    kafka::create_topics(
        &k,
        &[TopicSpec {
            name: topic.clone(),
            partitions: 1,
            replication: 1,
        }],
    )
    .await
    .unwrap_or_else(|e| {
        panic!(
            "no Kafka broker at {} (run scripts/test): {e:#}",
            k.bootstrap_servers
        )
    });
    assert!(kafka::topic_exists(&k, &topic).unwrap());

    let producer = kafka::producer(&k).unwrap();
    let payload = format!(
        r#"{{"unit_id":"P-12","ts":{},"lon":105.3,"lat":27.29,"status":"available"}}"#,
        nonce / 1_000_000
    );
    producer
        .send(
            FutureRecord::to(&topic).key("P-12").payload(&payload),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .expect("delivery report");

    let consumer = kafka::consumer(&k, &format!("{topic}-reader")).unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    // Detach at once: a BorrowedMessage still alive when its consumer is dropped keeps
    // librdkafka's destroy waiting forever, and the borrow checker does not prevent it.
    let msg = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
        .await
        .expect("a record within 30 s")
        .expect("no consumer error")
        .detach();
    assert_eq!(msg.key(), Some(&b"P-12"[..]));
    assert_eq!(msg.payload_view::<str>().unwrap().unwrap(), payload);
    // The bytes decode as the contract's patrol position.
    let rec = roadwatch::core::model::decode_record(
        roadwatch::core::model::Stream::Patrol,
        msg.payload().unwrap(),
        &roadwatch::core::model::DecodeContext::without_clock(),
    )
    .unwrap();
    assert_eq!(rec.stream(), roadwatch::core::model::Stream::Patrol);

    consumer.unsubscribe();
    drop(consumer);
    kafka::delete_topics(&k, &[&topic]).await.unwrap();
}
