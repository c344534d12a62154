//! The users' screens (issue #15, docs/CONSOLE.md): `roadwatch console` and the demo's
//! console. `picture` is what the console knows (pure), `auth` who may ask, `server` the
//! HTTP API and live events, `kafka` the feed and outbox against the broker.
mod assets;
pub mod auth;
pub mod kafka;
pub mod picture;
mod run;
pub mod server;

pub use run::{accounts, run_console, session_secret};
pub use server::{serve, Console, ConsoleParts, Event, Outbox};
