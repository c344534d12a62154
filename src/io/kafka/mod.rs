//! Kafka adapter: client configuration from settings, topic administration, and the
//! producer/consumer constructors the runtime and the tests share.
mod admin;
mod client;

pub use admin::{create_topics, delete_topics, topic_exists, TopicSpec};
pub use client::{client_config, consumer, producer};
