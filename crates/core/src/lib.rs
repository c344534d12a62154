//! The I/O-free core: wire types, road geometry, detectors, dispatch and the engine.
//! Nothing here touches tokio, rdkafka, prometheus, files or the system clock: adapters
//! hand it bytes and event time, and take its outputs.
pub mod alert;
pub mod detect;
pub mod dispatch;
pub mod engine;
pub mod keys;
pub mod lifecycle;
pub mod model;
pub mod pseudonym;
pub mod roads;
pub mod settings;
