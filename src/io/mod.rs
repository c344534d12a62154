//! Adapters around the core: Kafka, replay files, HTTP, metrics. They convert at the
//! boundary (bytes in, owned core values; core outputs, bytes out) and stay thin.
pub mod clock;
pub mod console;
pub mod demo;
pub mod http;
pub mod kafka;
pub mod liveness;
pub mod metrics;
pub mod output;
pub mod pipeline;
pub mod plate_lists;
pub mod replay;
pub mod report;
pub mod report_kafka;
pub mod roads_cmd;
pub mod simulate;
pub mod simulate_answers;
