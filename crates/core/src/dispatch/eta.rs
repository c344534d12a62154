//! Road-aware route length from a patrol unit to a target (DOMAIN.md "Flat dispatch").
//!
//! On a divided expressway a unit cannot simply turn round: a unit behind the target on
//! the target's carriageway drives straight there; a unit on the other carriageway goes
//! on to the next interchange where it can turn (beyond the target if it has to pass
//! it); a unit already past the target on its carriageway goes on to the next
//! interchange, comes back on the other carriageway to an interchange behind the target
//! and turns again. Different roads, or no interchange to turn at: straight line × 1.3.
//! With `allow_median_uturn` (police in an emergency, Road Traffic Safety Law art. 53)
//! a unit on the same road crosses the median where it is: the distance along the road.
use std::sync::Arc;

use crate::roads::{distance_m, Direction, RoadNetwork};
use crate::settings::DispatchSettings;

/// A point and, when it lies on a road, where.
#[derive(Debug, Clone, PartialEq)]
pub struct Place {
    pub lon: f64,
    pub lat: f64,
    pub road: Option<OnRoad>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OnRoad {
    pub road_id: Arc<str>,
    pub direction: Direction,
    pub stake_m: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// Same carriageway, behind the target (or an undivided road).
    Direct,
    /// From the other carriageway, turning once at an interchange.
    OneTurn,
    /// Past the target on its carriageway: on to an interchange, back, and round again.
    TwoTurns,
    /// Across the median where the unit is (only with `allow_median_uturn`).
    MedianUturn,
    /// Different roads, off the network, or nowhere to turn: straight line × factor.
    StraightLine,
}

impl RouteKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteKind::Direct => "direct",
            RouteKind::OneTurn => "one_turn",
            RouteKind::TwoTurns => "two_turns",
            RouteKind::MedianUturn => "median_uturn",
            RouteKind::StraightLine => "straight_line",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Route {
    pub metres: f64,
    pub kind: RouteKind,
}

/// Whether `x` lies behind `target` (or at it) for traffic travelling in `d`.
fn behind(d: Direction, x: f64, target: f64) -> bool {
    if d.ahead_is_increasing() {
        x <= target
    } else {
        x >= target
    }
}

/// The route from `from` (a unit) to `to` (a target).
pub fn route(net: &RoadNetwork, s: &DispatchSettings, from: &Place, to: &Place) -> Route {
    let straight = Route {
        metres: distance_m([from.lon, from.lat], [to.lon, to.lat]) * s.straight_line_factor,
        kind: RouteKind::StraightLine,
    };
    let (Some(u), Some(t)) = (&from.road, &to.road) else {
        return straight;
    };
    if u.road_id != t.road_id {
        return straight;
    }
    road_route(net, s, u, t).unwrap_or(straight)
}

fn road_route(net: &RoadNetwork, s: &DispatchSettings, u: &OnRoad, t: &OnRoad) -> Option<Route> {
    let road = &*t.road_id;
    let d = t.direction;
    let along = |dir: Direction, a: f64, b: f64| net.distance_along(road, dir, a, b);
    let route = |metres: f64, kind| Some(Route { metres, kind });
    // An undivided road (or a target on one) has no median to respect.
    let (Some(opposite), Some(_)) = (d.opposite(), u.direction.opposite()) else {
        let dir = if d == Direction::Both { u.direction } else { d };
        return route(along(dir, u.stake_m, t.stake_m)?, RouteKind::Direct);
    };
    if u.direction == d && behind(d, u.stake_m, t.stake_m) {
        return route(along(d, u.stake_m, t.stake_m)?, RouteKind::Direct);
    }
    if s.allow_median_uturn {
        return route(along(d, u.stake_m, t.stake_m)?, RouteKind::MedianUturn);
    }
    // The interchange where a unit travelling in `opposite` from `stake` turns back onto
    // `d` behind the target: the first one it reaches that is not ahead of the target.
    let turn_back_from = |stake: f64| {
        let from = if behind(d, stake, t.stake_m) {
            stake
        } else {
            t.stake_m
        };
        net.next_interchange(road, opposite, from, true)
            .map(|i| i.stake_m)
    };
    if u.direction == d {
        let a = net.next_interchange(road, d, u.stake_m, true)?.stake_m;
        let x = turn_back_from(a)?;
        let metres = along(d, u.stake_m, a)? + along(opposite, a, x)? + along(d, x, t.stake_m)?;
        return route(metres, RouteKind::TwoTurns);
    }
    let x = turn_back_from(u.stake_m)?;
    let metres = along(opposite, u.stake_m, x)? + along(d, x, t.stake_m)?;
    route(metres, RouteKind::OneTurn)
}
