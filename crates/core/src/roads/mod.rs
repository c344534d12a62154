//! Road geometry: where on the expressway is a point? (issue 3)
//!
//! Every detector and the dispatcher ask this. The module is handed a road
//! file's bytes (native GeoJSON, CONTRACT.md section 4, or an OpenStreetMap
//! export) and answers with stakes, directions, structures and zones. It
//! does no I/O and reads no clock: time comes in as epoch milliseconds.
//!
//! Map of the module (docs/ROADS.md has the rules in prose):
//!
//! - `types.rs` — directions, kinds, ids, with their contract spellings.
//! - `issues.rs` — [`LoadOptions`], [`LoadIssue`], [`LoadError`].
//! - `geodesy.rs` — metres from degrees (local WGS 84 scale).
//! - `stake.rs` — [`Stake`] text (`K1203+450`) and [`StakeProfile`].
//! - `geojson.rs` — defensive reading of GeoJSON geometry and properties.
//! - `load.rs` — [`RoadNetwork::from_geojson`]: feature dispatch.
//! - `load_native.rs` — the native schema.
//! - `load_osm.rs`, `osm_chains.rs`, `osm_stakes.rs` — OSM tags, joining
//!   ways into chains, stakes and directions from milestones.
//! - `line.rs`, `zones.rs` — the parts of the network.
//! - `index.rs` — R-trees over segments and zone polygons.
//! - `network.rs` — [`RoadNetwork`] and its by-stake queries (interchanges
//!   ahead, distance along, stretches, opposite carriageway, point at stake).
//! - `locate.rs` — [`RoadNetwork::locate`] and [`RoadPosition`].
//! - `stats.rs` — counts for `roadwatch roads stats`.
//!
//! `RoadNetwork` is immutable after loading and `Send + Sync`: load once,
//! share an `Arc<RoadNetwork>`.

mod geodesy;
mod geojson;
mod index;
mod issues;
mod line;
mod load;
mod load_native;
mod load_osm;
mod locate;
mod network;
mod osm_chains;
mod osm_stakes;
mod spans;
mod stake;
mod stats;
mod types;
mod zones;

pub use geodesy::{distance_m, Scale};
pub use issues::{IssueLevel, LoadError, LoadIssue, LoadOptions};
pub use line::{Line, SegmentAttr};
pub use load_native::DEFAULT_WIDTH_M;
pub use locate::RoadPosition;
pub use network::{
    Interchange, Road, RoadNetwork, Station, StationRoad, Stretch, CARRIAGEWAY_STAKE_TOLERANCE_M,
    STATION_ROAD_SNAP_M, ZONE_ROAD_SNAP_M,
};
pub use osm_stakes::{MILESTONE_SNAP_M, TWIN_SNAP_M};
pub use stake::{Stake, StakeProfile};
pub use stats::{LineGroupStats, NetworkStats, RoadStats};
pub use types::{Direction, LineId, LineKind, StakeSource, Structure, ZoneId, ZoneKind};
pub use zones::{Zone, ZoneRoad};

// Shared across threads behind an `Arc`; fail the build if a field ever
// breaks that.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RoadNetwork>();
};
