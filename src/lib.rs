//! roadwatch — an expressway event-perception stream processor.
//!
//! Map of the workspace (docs/ARCHITECTURE.md):
//! - [`core`] (crates/core, the `roadwatch-core` crate): the I/O-free heart. Wire types ([`core::model`]), road geometry
//!   ([`core::roads`]), detectors, dispatch and the engine. No tokio, rdkafka, prometheus,
//!   files or clock: the same code runs live, in replay, in the demo and in benches.
//! - [`config`]: layered configuration (defaults → file → environment) into typed settings.
//! - [`io`]: adapters around the core — Kafka, replay files, HTTP, metrics.
//! - [`sim`] (crates/sim, `roadwatch-sim`): the simulated expressway with ground truth (`simulate`, `demo`, benches);
//!   a pure generator like the core: no I/O, no clock.
//! - [`cli`]: the command line (`run`, `replay`, `demo`, `simulate`, `check-config`, `roads`).
//! - [`logging`]: tracing set-up (text or JSON, `RUST_LOG`).
pub mod cli;
pub mod config;
pub mod io;
pub mod logging;

// The pure crates under the names the adapters and tests have always used.
pub use roadwatch_core as core;
pub use roadwatch_sim as sim;
