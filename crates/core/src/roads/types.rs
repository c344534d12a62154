//! Small value types shared by the whole road module: directions, kinds, ids.
//!
//! Their serialized spellings are part of the external contract (CONTRACT.md
//! sections 3, 4 and 7), so each one is spelled out by hand rather than left
//! to a derive whose renaming could drift.

use std::fmt;

use serde::{Serialize, Serializer};

/// Travel direction of a carriageway.
///
/// `Up` (上行) is the direction in which stakes grow, `Down` (下行) the one in
/// which they shrink; this is the Chinese convention (JTG) and the one
/// DOMAIN.md uses. `Both` is an undivided line or one whose direction could
/// not be established (see docs/ROADS.md, "Direction").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    Up,
    Down,
    Both,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
            Direction::Both => "both",
        }
    }

    /// Parses the contract spelling; the Chinese terms are accepted too
    /// because hand-made files from the command centre use them.
    pub fn parse(text: &str) -> Option<Direction> {
        match text.trim() {
            "up" | "上行" => Some(Direction::Up),
            "down" | "下行" => Some(Direction::Down),
            "both" => Some(Direction::Both),
            _ => None,
        }
    }

    /// The other carriageway's direction; `Both` has none.
    pub fn opposite(self) -> Option<Direction> {
        match self {
            Direction::Up => Some(Direction::Down),
            Direction::Down => Some(Direction::Up),
            Direction::Both => None,
        }
    }

    /// Whether moving "ahead" in this direction means growing stakes.
    /// `Both` has no travel sense, so it takes the stake order.
    pub fn ahead_is_increasing(self) -> bool {
        !matches!(self, Direction::Down)
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Direction {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// What a line is: a main carriageway or a ramp (slip road).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LineKind {
    Carriageway,
    Ramp,
}

impl LineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LineKind::Carriageway => "carriageway",
            LineKind::Ramp => "ramp",
        }
    }
}

impl fmt::Display for LineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for LineKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A structure the road runs through or over; it raises pedestrian severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Structure {
    Tunnel,
    Bridge,
}

impl Structure {
    pub fn as_str(self) -> &'static str {
        match self {
            Structure::Tunnel => "tunnel",
            Structure::Bridge => "bridge",
        }
    }

    pub fn parse(text: &str) -> Option<Structure> {
        match text.trim() {
            "tunnel" => Some(Structure::Tunnel),
            "bridge" => Some(Structure::Bridge),
            _ => None,
        }
    }
}

impl fmt::Display for Structure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Structure {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The kind of a polygon in the network.
///
/// `Tunnel` and `Bridge` polygons mark structures (they feed
/// `RoadPosition::structure`); the other three are the zones that
/// `RoadPosition::zone` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ZoneKind {
    ServiceArea,
    TollPlaza,
    WorkZone,
    Tunnel,
    Bridge,
}

impl ZoneKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ZoneKind::ServiceArea => "service_area",
            ZoneKind::TollPlaza => "toll_plaza",
            ZoneKind::WorkZone => "work_zone",
            ZoneKind::Tunnel => "tunnel",
            ZoneKind::Bridge => "bridge",
        }
    }

    pub fn parse(text: &str) -> Option<ZoneKind> {
        match text.trim() {
            "service_area" => Some(ZoneKind::ServiceArea),
            "toll_plaza" => Some(ZoneKind::TollPlaza),
            "work_zone" => Some(ZoneKind::WorkZone),
            "tunnel" => Some(ZoneKind::Tunnel),
            "bridge" => Some(ZoneKind::Bridge),
            _ => None,
        }
    }

    /// The structure this polygon marks, if it is a structure polygon.
    pub fn structure(self) -> Option<Structure> {
        match self {
            ZoneKind::Tunnel => Some(Structure::Tunnel),
            ZoneKind::Bridge => Some(Structure::Bridge),
            _ => None,
        }
    }

    /// Which zone wins when a point lies in several: the most specific and
    /// most temporary first (a work zone inside a service area is what the
    /// officer on the spot must know about). Lower is stronger.
    pub(crate) fn zone_priority(self) -> u8 {
        match self {
            ZoneKind::WorkZone => 0,
            ZoneKind::TollPlaza => 1,
            ZoneKind::ServiceArea => 2,
            ZoneKind::Tunnel | ZoneKind::Bridge => u8::MAX,
        }
    }
}

impl fmt::Display for ZoneKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ZoneKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Index of a line in [`RoadNetwork::lines`](super::RoadNetwork::lines).
///
/// Stable for a given file: lines are numbered in the order they are built
/// (native features in file order, then OSM chains in the order of their
/// first way), so the same bytes always give the same ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct LineId(pub u32);

impl LineId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Index of a polygon in [`RoadNetwork::zones`](super::RoadNetwork::zones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ZoneId(pub u32);

impl ZoneId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Where a line's stakes came from, best first. Operators see it in
/// `roads stats`; a detector may prefer to say less about a position whose
/// stake is only a guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StakeSource {
    /// Native file: `stake_start_m`/`stake_end_m` (and optional `stakes_m`).
    Given,
    /// OSM: at least two milestones on this chain.
    Milestones,
    /// OSM: taken from the other carriageway of the same road alongside.
    Borrowed,
    /// OSM: continued from a connected chain (one anchor, slope ±1).
    Continued,
    /// OSM: a single milestone and no way to tell the sense; slope +1.
    SingleAnchor,
    /// OSM: nothing to anchor to; stakes are metres along the geometry.
    Unanchored,
}

impl StakeSource {
    pub fn as_str(self) -> &'static str {
        match self {
            StakeSource::Given => "given",
            StakeSource::Milestones => "milestones",
            StakeSource::Borrowed => "borrowed",
            StakeSource::Continued => "continued",
            StakeSource::SingleAnchor => "single_anchor",
            StakeSource::Unanchored => "unanchored",
        }
    }
}

impl fmt::Display for StakeSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
