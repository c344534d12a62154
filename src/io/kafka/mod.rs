//! Kafka adapter: client configuration from settings, topic administration, the
//! producer/consumer constructors the runtime and the tests share, and the runtime of
//! `roadwatch run` (docs/KAFKA_RUNTIME.md).
mod admin;
mod broker;
mod client;
mod dispatch_topics;
mod group;
pub mod locate;
mod merge;
mod probe;
pub(crate) mod repartition;
mod runtime;
mod sink;
mod startup;
mod state_rebuild;

pub use admin::{create_topics, delete_topics, partition_count, topic_exists, TopicSpec};
pub use client::{client_config, consumer, producer};
pub use probe::{Probe, TopicAccess};
pub use runtime::{run, run_command, Shutdown};
