//! Detectors: one file each. Each is a synchronous state machine driven by validated
//! records and event time; each pushes [`AlertDraft`](super::alert::AlertDraft)s.
pub mod pedestrian;
pub mod ride_hailing;
pub mod weather;
