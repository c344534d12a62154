//! The simulator's view of the road network: where its devices stand (ANPR readers,
//! cameras, service-area readers), the trip origins and destinations (interchanges and
//! road ends), and routes between them. Built once from a [`RoadNetwork`]; everything
//! here is derived from the road file plus the seed, so it is the same on every run.
//!
//! Positions are addressed as (road, travel direction, stake). Travel direction is `Up`
//! (growing stakes) or `Down`; a road drawn as one undivided `both` line serves both.
use std::collections::BTreeSet;
use std::sync::Arc;

use super::rng::Rng;
use super::SimConfig;
use roadwatch_core::model::EventTime;
use roadwatch_core::roads::{
    distance_m, Direction, LineId, LineKind, RoadNetwork, Scale, Structure, ZoneId, ZoneKind,
};

/// Interchanges of two roads closer than this are one hub: traffic changes road there.
const HUB_LINK_M: f64 = 1500.0;
/// Interchanges of one road closer than this are one trip end (OSM maps a junction on
/// each carriageway).
const SAME_NODE_M: f64 = 300.0;
/// Odometer table resolution, metres of stake.
const ODO_STEP_M: f64 = 100.0;
/// How far a roadside camera sees up and down the road, metres.
const ROAD_CAMERA_VIEW_M: f64 = 200.0;
/// How far a tunnel camera sees along its tube at least, metres; with the default
/// spacing neighbouring views touch, so a tube is watched end to end.
const TUNNEL_CAMERA_VIEW_M: f64 = 150.0;
/// Spacing of the precomputed lane points of a camera's view, metres.
const LANE_POINT_STEP_M: f64 = 25.0;

/// A carriageway point with what is needed to step sideways from it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Frame {
    pub lon: f64,
    pub lat: f64,
    /// Unit vector to the right of the travel direction, in degrees per metre.
    pub right_dlon: f64,
    pub right_dlat: f64,
    pub half_width_m: f64,
    pub structure: Option<Structure>,
    pub line: LineId,
}

impl Frame {
    /// The point `offset_m` to the right of the centre line (negative: to the left).
    pub fn offset(&self, offset_m: f64) -> (f64, f64) {
        (
            self.lon + self.right_dlon * offset_m,
            self.lat + self.right_dlat * offset_m,
        )
    }
}

#[derive(Debug, Clone)]
pub(crate) struct SimRoad {
    pub id: Arc<str>,
    /// The road id as it may appear inside device identifiers.
    pub ident: String,
    pub lo: f64,
    pub hi: f64,
    /// Line direction that carries `Up` / `Down` travel (`Both` on undivided roads).
    pub up: Option<Direction>,
    pub down: Option<Direction>,
    /// Odometer tables (metres driven from `lo`) for `Up` and `Down` travel, sampled
    /// every `ODO_STEP_M` of stake: stakes are not distances (chain breaks).
    odo_up: Vec<f64>,
    odo_down: Vec<f64>,
}

impl SimRoad {
    pub fn line_dir(&self, travel: Direction) -> Option<Direction> {
        match travel {
            Direction::Down => self.down,
            _ => self.up,
        }
    }

    pub fn travels(&self) -> impl Iterator<Item = Direction> + '_ {
        [Direction::Up, Direction::Down]
            .into_iter()
            .filter(|t| self.line_dir(*t).is_some())
    }

    /// Metres driven from `lo` to `stake` in `travel` direction.
    pub fn odo(&self, travel: Direction, stake: f64) -> f64 {
        let table = if travel == Direction::Down && !self.odo_down.is_empty() {
            &self.odo_down
        } else {
            &self.odo_up
        };
        if table.is_empty() {
            return stake - self.lo;
        }
        let x = ((stake - self.lo) / ODO_STEP_M).clamp(0.0, (table.len() - 1) as f64);
        let i = (x.floor() as usize).min(table.len().saturating_sub(2));
        let t = x - i as f64;
        if table.len() == 1 {
            return table[0];
        }
        table[i] + (table[i + 1] - table[i]) * t
    }

    /// Metres driven between two stakes.
    pub fn drive_m(&self, travel: Direction, a: f64, b: f64) -> f64 {
        (self.odo(travel, b) - self.odo(travel, a)).abs()
    }
}

/// A trip end: an interchange, or a road end where traffic enters from outside.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub name: String,
    pub road: usize,
    pub stake: f64,
    pub lon: f64,
    pub lat: f64,
    /// Road end: traffic from and to the world beyond the network.
    pub boundary: bool,
    /// Links to another road.
    pub hub: bool,
    /// An interchange of the file (not a road end the simulator added): only these
    /// can link roads.
    pub interchange: bool,
}

/// Part of a route on one carriageway.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Leg {
    pub road: usize,
    pub travel: Direction,
    pub from: f64,
    pub to: f64,
    /// Metres of hub ramp driven before this leg starts.
    pub ramp_m: f64,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Route {
    pub legs: Vec<Leg>,
    pub length_m: f64,
}

/// An ANPR reader: a gantry over one carriageway, or a service-area entrance.
#[derive(Debug, Clone)]
pub(crate) struct Reader {
    pub id: String,
    pub road: usize,
    pub travel: Direction,
    pub stake: f64,
    pub lon: f64,
    pub lat: f64,
    /// The service area this reader watches the entrance of.
    pub service_area: Option<usize>,
}

#[derive(Debug, Clone)]
pub(crate) struct ServiceArea {
    pub zone: ZoneId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CameraSite {
    /// A pole camera on open road, watching both carriageways.
    Road,
    /// A camera in one tunnel tube.
    Tunnel,
    /// A camera over a service area's car park.
    ServiceArea(usize),
    /// A construction-site camera over a work zone.
    WorkZone(ZoneId),
}

#[derive(Debug, Clone)]
pub(crate) struct Camera {
    pub id: String,
    pub road: usize,
    /// The carriageway watched; `None` = both.
    pub travel: Option<Direction>,
    pub stake: f64,
    /// Stake range in view.
    pub lo: f64,
    pub hi: f64,
    pub site: CameraSite,
    pub structure: Option<Structure>,
    /// This vendor sends `ts` as epoch milliseconds rather than RFC 3339.
    pub epoch_ts: bool,
    /// Carriageway points in view every 25 m, ready for detections.
    pub lanes: Vec<Frame>,
    /// Points inside the zone a service-area or work-zone camera watches.
    pub interior: Vec<(f64, f64)>,
}

impl Camera {
    pub fn sees(&self, travel: Direction, stake: f64) -> bool {
        matches!(
            self.site,
            CameraSite::Road | CameraSite::Tunnel | CameraSite::WorkZone(_)
        ) && self.travel.map_or(true, |t| t == travel)
            && (self.lo..=self.hi).contains(&stake)
    }
}

/// Everything the simulator places on the network.
#[derive(Debug)]
pub(crate) struct SimNetwork {
    pub roads: Vec<SimRoad>,
    pub nodes: Vec<Node>,
    /// Node indices of each road, by stake.
    pub road_nodes: Vec<Vec<usize>>,
    /// `routes[a * n + b]`: the shortest route from node a to node b, if connected.
    routes: Vec<Option<Route>>,
    pub readers: Vec<Reader>,
    /// Reader indices per (road, travel), by stake: index `road * 2 + (travel == Down)`.
    pub readers_by_way: Vec<Vec<usize>>,
    pub service_areas: Vec<ServiceArea>,
    pub cameras: Vec<Camera>,
    /// Camera indices per road, by stake.
    pub cameras_by_road: Vec<Vec<usize>>,
    pub work_zones: Vec<ZoneId>,
}

/// An identifier part from a road id: `[A-Za-z0-9._]`, anything else as `_`.
pub(crate) fn ident_part(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(24)
        .collect();
    if out.is_empty() {
        out.push('R');
    }
    out
}

fn way_index(road: usize, travel: Direction) -> usize {
    road * 2 + usize::from(travel == Direction::Down)
}

fn travel_letter(travel: Direction) -> char {
    match travel {
        Direction::Up => 'U',
        Direction::Down => 'D',
        Direction::Both => 'B',
    }
}

impl SimNetwork {
    pub fn build(net: &RoadNetwork, cfg: &SimConfig) -> SimNetwork {
        let mut rng = Rng::derive(cfg.seed, 0x4E45_5457, 0);
        let roads = build_roads(net);
        let mut sim = SimNetwork {
            road_nodes: vec![Vec::new(); roads.len()],
            readers_by_way: vec![Vec::new(); roads.len() * 2],
            cameras_by_road: vec![Vec::new(); roads.len()],
            roads,
            nodes: Vec::new(),
            routes: Vec::new(),
            readers: Vec::new(),
            service_areas: Vec::new(),
            cameras: Vec::new(),
            work_zones: Vec::new(),
        };
        sim.build_nodes(net);
        sim.build_routes();
        sim.build_service_areas(net, cfg);
        sim.build_gantries(net, cfg, &mut rng);
        sim.build_cameras(net, cfg, &mut rng);
        sim
    }

    pub fn road_index(&self, road_id: &str) -> Option<usize> {
        self.roads.iter().position(|r| &*r.id == road_id)
    }

    /// The carriageway point at a stake (clamped to the line that serves it).
    pub fn frame(
        &self,
        net: &RoadNetwork,
        road: usize,
        travel: Direction,
        stake: f64,
        at_ms: i64,
    ) -> Option<Frame> {
        let r = &self.roads[road];
        let dir = r.line_dir(travel)?;
        let id = net.carriageway_at(&r.id, dir, stake)?;
        let line = net.line(id)?;
        let (lo, hi) = line.stake_range();
        let s = stake.clamp(lo, hi);
        let along = line.along_at_stake(s)?;
        let len = line.length_m();
        let (lon, lat) = line.point_at_along(along);
        let (x0, y0) = line.point_at_along((along - 5.0).max(0.0));
        let (x1, y1) = line.point_at_along((along + 5.0).min(len));
        let scale = Scale::at(lat);
        let (mut e, mut n) = ((x1 - x0) * scale.kx, (y1 - y0) * scale.ky);
        let norm = e.hypot(n);
        if norm < 1e-9 {
            (e, n) = (1.0, 0.0);
        } else {
            (e, n) = (e / norm, n / norm);
        }
        // Geometry runs with growing `along`; travel may run against it.
        let with_geometry = (travel != Direction::Down) == line.stake_profile().is_increasing();
        if !with_geometry {
            (e, n) = (-e, -n);
        }
        let seg = line
            .along()
            .partition_point(|&a| a <= along)
            .saturating_sub(1)
            .min(line.segments().len() - 1);
        let half_width_m = f64::from(line.segments()[seg].half_width_m);
        let structure = net
            .position_at_stake(id, s, EventTime::from_ms(at_ms))
            .and_then(|p| p.structure);
        Some(Frame {
            lon,
            lat,
            right_dlon: n / scale.kx,
            right_dlat: -e / scale.ky,
            half_width_m,
            structure,
            line: id,
        })
    }

    /// The centre-line point at a stake, fast (no structure lookup).
    pub fn point(
        &self,
        net: &RoadNetwork,
        road: usize,
        travel: Direction,
        stake: f64,
    ) -> Option<(f64, f64)> {
        let r = &self.roads[road];
        let id = net.carriageway_at(&r.id, r.line_dir(travel)?, stake)?;
        let line = net.line(id)?;
        let (lo, hi) = line.stake_range();
        line.point_at_stake(stake.clamp(lo, hi))
    }

    pub fn route(&self, a: usize, b: usize) -> Option<&Route> {
        self.routes.get(a * self.nodes.len() + b)?.as_ref()
    }

    /// Readers of one carriageway met between two stakes, in driving order, `from`
    /// excluded and `to` included (so consecutive legs never read a gantry twice).
    pub fn readers_between(&self, leg: &Leg, out: &mut Vec<usize>) {
        out.clear();
        let list = &self.readers_by_way[way_index(leg.road, leg.travel)];
        let (lo, hi) = (leg.from.min(leg.to), leg.from.max(leg.to));
        let up = leg.travel != Direction::Down;
        let start = list.partition_point(|&i| self.readers[i].stake < lo);
        for &i in &list[start..] {
            let s = self.readers[i].stake;
            if s > hi {
                break;
            }
            let inside = if up {
                s > leg.from && s <= leg.to
            } else {
                s < leg.from && s >= leg.to
            };
            if inside {
                out.push(i);
            }
        }
        if !up {
            out.reverse();
        }
    }

    /// The route a patrol car drives from a point of a carriageway to another, turning
    /// only at interchanges and road ends (no median U-turns). `None` when the network
    /// does not connect them.
    pub fn route_between_points(
        &self,
        from: (usize, Direction, f64),
        to: (usize, Direction, f64),
    ) -> Option<Route> {
        let (road, travel, stake) = from;
        let (t_road, t_travel, t_stake) = to;
        let ahead = |a: f64, b: f64, dir: Direction| {
            if dir == Direction::Down {
                b <= a
            } else {
                b >= a
            }
        };
        let mut best: Option<(f64, Route)> = None;
        if road == t_road && travel == t_travel && ahead(stake, t_stake, travel) {
            let leg = Leg {
                road,
                travel,
                from: stake,
                to: t_stake,
                ramp_m: 0.0,
            };
            let d = self.roads[road].drive_m(travel, stake, t_stake);
            best = Some((
                d,
                Route {
                    legs: vec![leg],
                    length_m: d,
                },
            ));
        }
        // The first interchange ahead, where the car can leave or turn.
        let first = self.road_nodes[road]
            .iter()
            .copied()
            .filter(|&n| {
                let s = self.nodes[n].stake;
                s != stake && ahead(stake, s, travel)
            })
            .min_by(|&a, &b| {
                let da = (self.nodes[a].stake - stake).abs();
                let db = (self.nodes[b].stake - stake).abs();
                da.total_cmp(&db).then(a.cmp(&b))
            })
            // Past the last node (beyond the network's end): turn at the last one.
            .or_else(|| {
                self.road_nodes[road].iter().copied().min_by(|&a, &b| {
                    let da = (self.nodes[a].stake - stake).abs();
                    let db = (self.nodes[b].stake - stake).abs();
                    da.total_cmp(&db).then(a.cmp(&b))
                })
            })?;
        let d0 = self.roads[road].drive_m(travel, stake, self.nodes[first].stake);
        for &last in &self.road_nodes[t_road] {
            let ls = self.nodes[last].stake;
            if !ahead(ls, t_stake, t_travel) {
                continue;
            }
            let Some(mid) = (if first == last {
                Some(Route::default())
            } else {
                self.route(first, last).cloned()
            }) else {
                continue;
            };
            let d1 = self.roads[t_road].drive_m(t_travel, ls, t_stake);
            let total = d0 + mid.length_m + d1;
            if best.as_ref().map_or(true, |(b, _)| total < *b) {
                let mut legs = Vec::with_capacity(mid.legs.len() + 2);
                push_leg(
                    &mut legs,
                    Leg {
                        road,
                        travel,
                        from: stake,
                        to: self.nodes[first].stake,
                        ramp_m: 0.0,
                    },
                );
                for leg in mid.legs {
                    push_leg(&mut legs, leg);
                }
                push_leg(
                    &mut legs,
                    Leg {
                        road: t_road,
                        travel: t_travel,
                        from: ls,
                        to: t_stake,
                        ramp_m: 0.0,
                    },
                );
                best = Some((
                    total,
                    Route {
                        legs,
                        length_m: total,
                    },
                ));
            }
        }
        best.map(|(_, r)| r)
    }

    fn build_nodes(&mut self, net: &RoadNetwork) {
        for ic in net.interchanges() {
            let Some(road) = self.road_index(&ic.road_id) else {
                continue;
            };
            let dup = self.road_nodes[road]
                .iter()
                .any(|&n| (self.nodes[n].stake - ic.stake_m).abs() < SAME_NODE_M);
            if dup {
                continue;
            }
            self.nodes.push(Node {
                name: ic.name.to_string(),
                road,
                stake: ic.stake_m,
                lon: ic.lon,
                lat: ic.lat,
                boundary: false,
                hub: false,
                interchange: true,
            });
            self.road_nodes[road].push(self.nodes.len() - 1);
        }
        // Hubs: interchanges of different roads at one place.
        for a in 0..self.nodes.len() {
            for b in 0..self.nodes.len() {
                if self.nodes[a].road != self.nodes[b].road
                    && distance_m(
                        [self.nodes[a].lon, self.nodes[a].lat],
                        [self.nodes[b].lon, self.nodes[b].lat],
                    ) <= HUB_LINK_M
                {
                    self.nodes[a].hub = true;
                }
            }
        }
        // Road ends are where through traffic comes from and goes to, unless a hub
        // sits there (the road then continues as another road of the network).
        for road in 0..self.roads.len() {
            let (lo, hi) = (self.roads[road].lo, self.roads[road].hi);
            for end in [lo, hi] {
                let near = self.road_nodes[road]
                    .iter()
                    .copied()
                    .find(|&n| (self.nodes[n].stake - end).abs() < SAME_NODE_M);
                match near {
                    Some(n) if self.nodes[n].hub => {}
                    Some(n) => self.nodes[n].boundary = true,
                    None => {
                        let travel = self.roads[road].travels().next().unwrap_or(Direction::Up);
                        let Some((lon, lat)) = self.point(net, road, travel, end) else {
                            continue;
                        };
                        self.nodes.push(Node {
                            name: format!("{} {}", self.roads[road].id, stake_text(end)),
                            road,
                            stake: end,
                            lon,
                            lat,
                            boundary: true,
                            hub: false,
                            interchange: false,
                        });
                        self.road_nodes[road].push(self.nodes.len() - 1);
                    }
                }
            }
        }
        for list in &mut self.road_nodes {
            let nodes = &self.nodes;
            list.sort_by(|&a, &b| nodes[a].stake.total_cmp(&nodes[b].stake).then(a.cmp(&b)));
        }
    }

    fn build_routes(&mut self) {
        let n = self.nodes.len();
        let mut dist = vec![f64::INFINITY; n * n];
        let mut next = vec![usize::MAX; n * n];
        for i in 0..n {
            dist[i * n + i] = 0.0;
            next[i * n + i] = i;
        }
        let link = |a: usize, b: usize, d: f64, dist: &mut Vec<f64>, next: &mut Vec<usize>| {
            if d < dist[a * n + b] {
                dist[a * n + b] = d;
                next[a * n + b] = b;
            }
        };
        for (road, list) in self.road_nodes.iter().enumerate() {
            for pair in list.windows(2) {
                let (a, b) = (pair[0], pair[1]);
                let r = &self.roads[road];
                let d = r.drive_m(Direction::Up, self.nodes[a].stake, self.nodes[b].stake);
                link(a, b, d, &mut dist, &mut next);
                link(b, a, d, &mut dist, &mut next);
            }
        }
        for a in 0..n {
            for b in 0..n {
                let (x, y) = (&self.nodes[a], &self.nodes[b]);
                if x.road != y.road && x.interchange && y.interchange {
                    let d = distance_m(
                        [self.nodes[a].lon, self.nodes[a].lat],
                        [self.nodes[b].lon, self.nodes[b].lat],
                    );
                    if d <= HUB_LINK_M {
                        link(a, b, d, &mut dist, &mut next);
                    }
                }
            }
        }
        // Floyd–Warshall: a few dozen nodes, so the cubic cost is nothing.
        for k in 0..n {
            for i in 0..n {
                let dik = dist[i * n + k];
                if !dik.is_finite() {
                    continue;
                }
                for j in 0..n {
                    let alt = dik + dist[k * n + j];
                    if alt < dist[i * n + j] {
                        dist[i * n + j] = alt;
                        next[i * n + j] = next[i * n + k];
                    }
                }
            }
        }
        self.routes = (0..n * n)
            .map(|ij| {
                let (a, b) = (ij / n, ij % n);
                if a == b || !dist[ij].is_finite() {
                    return None;
                }
                let mut legs: Vec<Leg> = Vec::new();
                let mut at = a;
                let mut ramp = 0.0;
                while at != b {
                    let step = next[at * n + b];
                    let (x, y) = (&self.nodes[at], &self.nodes[step]);
                    if x.road == y.road {
                        let travel = if y.stake >= x.stake {
                            Direction::Up
                        } else {
                            Direction::Down
                        };
                        push_leg(
                            &mut legs,
                            Leg {
                                road: x.road,
                                travel,
                                from: x.stake,
                                to: y.stake,
                                ramp_m: ramp,
                            },
                        );
                        ramp = 0.0;
                    } else {
                        ramp += distance_m([x.lon, x.lat], [y.lon, y.lat]);
                    }
                    at = step;
                }
                Some(Route {
                    legs,
                    length_m: dist[ij],
                })
            })
            .collect();
    }

    fn build_service_areas(&mut self, net: &RoadNetwork, cfg: &SimConfig) {
        for zone in net.zones() {
            if zone.kind() != ZoneKind::ServiceArea {
                continue;
            }
            let Some(zr) = zone.road() else { continue };
            let Some(road) = self.road_index(&zr.road_id) else {
                continue;
            };
            let b = zone.bbox();
            let (clon, clat) = ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0);
            // The side of the road it serves: the carriageway nearest its centre.
            let travel = net
                .locate_filtered(clon, clat, EventTime::from_ms(cfg.start_ms), 1000.0, |l| {
                    l.kind() == LineKind::Carriageway && *l.road_id() == *zr.road_id
                })
                .map_or(Direction::Up, |p| match p.direction {
                    Direction::Down => Direction::Down,
                    _ => Direction::Up,
                });
            let interior = sample_inside(net, zone.id(), 24, false);
            let sa = self.service_areas.len();
            self.readers.push(Reader {
                id: String::new(),
                road,
                travel,
                stake: zr.stake_m,
                lon: interior.first().map_or(clon, |p| p.0),
                lat: interior.first().map_or(clat, |p| p.1),
                service_area: Some(sa),
            });
            self.cameras.push(Camera {
                id: String::new(),
                road,
                travel: Some(travel),
                stake: zr.stake_m,
                lo: zr.stake_m - 300.0,
                hi: zr.stake_m + 300.0,
                site: CameraSite::ServiceArea(sa),
                structure: None,
                epoch_ts: false,
                lanes: Vec::new(),
                interior,
            });
            self.service_areas.push(ServiceArea { zone: zone.id() });
        }
    }

    fn structure_at(
        &self,
        net: &RoadNetwork,
        road: usize,
        travel: Direction,
        stake: f64,
        at_ms: i64,
    ) -> Option<Structure> {
        let r = &self.roads[road];
        let id = net.carriageway_at(&r.id, r.line_dir(travel)?, stake)?;
        let line = net.line(id)?;
        if !line.covers_stake(stake) {
            return None;
        }
        net.position_at_stake(id, stake, EventTime::from_ms(at_ms))?
            .structure
    }

    fn in_tunnel(&self, net: &RoadNetwork, road: usize, stake: f64, at_ms: i64) -> bool {
        self.roads[road]
            .travels()
            .any(|t| self.structure_at(net, road, t, stake, at_ms) == Some(Structure::Tunnel))
    }

    fn build_gantries(&mut self, net: &RoadNetwork, cfg: &SimConfig, rng: &mut Rng) {
        let (gmin, gmax) = cfg.gantry_spacing_m;
        for road in 0..self.roads.len() {
            let (lo, hi) = (self.roads[road].lo, self.roads[road].hi);
            let mut s = lo + rng.range(1500.0, 4000.0);
            while s < hi - 500.0 {
                // Gantries stand in the open: slide past a tunnel.
                let mut guard = 0;
                while self.in_tunnel(net, road, s, cfg.start_ms) && guard < 200 {
                    s += 200.0;
                    guard += 1;
                }
                if s >= hi - 500.0 {
                    break;
                }
                let travels: Vec<Direction> = self.roads[road].travels().collect();
                for travel in travels {
                    if let Some((lon, lat)) = self.point(net, road, travel, s) {
                        self.readers.push(Reader {
                            id: String::new(),
                            road,
                            travel,
                            stake: s,
                            lon,
                            lat,
                            service_area: None,
                        });
                    }
                }
                s += rng.range(gmin, gmax);
            }
        }
        // Identifiers: anpr-<road>-K<km>-<U|D>[-SA], unique.
        let mut taken = BTreeSet::new();
        for i in 0..self.readers.len() {
            let r = &self.readers[i];
            let mut id = format!(
                "anpr-{}-K{}-{}",
                self.roads[r.road].ident,
                (r.stake / 1000.0).floor() as i64,
                travel_letter(r.travel)
            );
            if r.service_area.is_some() {
                id.push_str("-SA");
            }
            let mut unique = id.clone();
            let mut k = 2;
            while !taken.insert(unique.clone()) {
                unique = format!("{id}-{k}");
                k += 1;
            }
            self.readers[i].id = unique;
            let way = way_index(self.readers[i].road, self.readers[i].travel);
            self.readers_by_way[way].push(i);
        }
        for list in &mut self.readers_by_way {
            let readers = &self.readers;
            list.sort_by(|&a, &b| {
                readers[a]
                    .stake
                    .total_cmp(&readers[b].stake)
                    .then(a.cmp(&b))
            });
        }
    }

    fn build_cameras(&mut self, net: &RoadNetwork, cfg: &SimConfig, rng: &mut Rng) {
        let at = cfg.start_ms;
        for road in 0..self.roads.len() {
            let (lo, hi) = (self.roads[road].lo, self.roads[road].hi);
            // Pole cameras on open road, both carriageways in view.
            let mut s = lo + rng.range(300.0, cfg.camera_spacing_m);
            while s < hi - 100.0 {
                if !self.in_tunnel(net, road, s, at) {
                    let structure = self.roads[road]
                        .travels()
                        .find_map(|t| self.structure_at(net, road, t, s, at));
                    self.cameras.push(Camera {
                        id: String::new(),
                        road,
                        travel: None,
                        stake: s,
                        lo: (s - ROAD_CAMERA_VIEW_M).max(lo),
                        hi: (s + ROAD_CAMERA_VIEW_M).min(hi),
                        site: CameraSite::Road,
                        structure,
                        epoch_ts: false,
                        lanes: Vec::new(),
                        interior: Vec::new(),
                    });
                }
                s += cfg.camera_spacing_m * rng.range(0.8, 1.2);
            }
            // Tunnel cameras, one series per tube.
            let travels: Vec<Direction> = self.roads[road].travels().collect();
            let view = TUNNEL_CAMERA_VIEW_M.max(cfg.tunnel_camera_spacing_m / 2.0);
            for travel in travels {
                for (a, b) in self.tunnel_runs(net, road, travel, at) {
                    let mut x = if b - a < 250.0 {
                        (a + b) / 2.0
                    } else {
                        a + 100.0
                    };
                    while x <= b {
                        self.cameras.push(Camera {
                            id: String::new(),
                            road,
                            travel: Some(travel),
                            stake: x,
                            lo: (x - view).max(a),
                            hi: (x + view).min(b),
                            site: CameraSite::Tunnel,
                            structure: Some(Structure::Tunnel),
                            epoch_ts: false,
                            lanes: Vec::new(),
                            interior: Vec::new(),
                        });
                        x += cfg.tunnel_camera_spacing_m;
                    }
                }
            }
        }
        // A site camera over every work zone on a carriageway.
        for zone in net.zones() {
            if zone.kind() != ZoneKind::WorkZone {
                continue;
            }
            let b = zone.bbox();
            let corners = [
                ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0),
                (b[0], b[1]),
                (b[2], b[3]),
                (b[0], b[3]),
                (b[2], b[1]),
            ];
            let mut hits = corners.iter().filter_map(|&(x, y)| {
                net.locate_filtered(x, y, EventTime::from_ms(at), 200.0, |l| {
                    l.kind() == LineKind::Carriageway
                })
            });
            let Some(first) = hits.next() else { continue };
            let Some(road) = self.road_index(&first.road_id) else {
                continue;
            };
            let (mut slo, mut shi) = (first.stake_m, first.stake_m);
            for h in hits.filter(|h| h.line == first.line) {
                slo = slo.min(h.stake_m);
                shi = shi.max(h.stake_m);
            }
            let travel = match first.direction {
                Direction::Down => Direction::Down,
                _ => Direction::Up,
            };
            self.cameras.push(Camera {
                id: String::new(),
                road,
                travel: Some(travel),
                stake: first.stake_m,
                lo: slo - 50.0,
                hi: shi + 50.0,
                site: CameraSite::WorkZone(zone.id()),
                structure: None,
                epoch_ts: false,
                lanes: Vec::new(),
                interior: sample_inside(net, zone.id(), 24, true),
            });
            self.work_zones.push(zone.id());
        }
        // Lane points, identifiers (cam-<road>-NNNN by stake), vendors.
        for i in 0..self.cameras.len() {
            let c = &self.cameras[i];
            let travels: Vec<Direction> = match c.travel {
                Some(t) => vec![t],
                None => self.roads[c.road].travels().collect(),
            };
            let mut lanes = Vec::new();
            if !matches!(c.site, CameraSite::ServiceArea(_)) {
                for t in travels {
                    let mut s = c.lo;
                    while s <= c.hi {
                        if let Some(frame) = self.frame(net, c.road, t, s, at) {
                            lanes.push(frame);
                        }
                        s += LANE_POINT_STEP_M;
                    }
                }
            }
            self.cameras[i].lanes = lanes;
            self.cameras_by_road[self.cameras[i].road].push(i);
        }
        for road in 0..self.roads.len() {
            let cams = &self.cameras;
            let list = &mut self.cameras_by_road[road];
            list.sort_by(|&a, &b| cams[a].stake.total_cmp(&cams[b].stake).then(a.cmp(&b)));
            for (k, &i) in list.iter().enumerate() {
                self.cameras[i].id = format!("cam-{}-{:04}", self.roads[road].ident, k + 1);
                // One vendor in five sends epoch milliseconds (CONTRACT: both forms).
                self.cameras[i].epoch_ts = k % 5 == 4;
            }
        }
    }

    /// Stake runs `[a, b]` inside tunnels on one carriageway (50 m resolution).
    fn tunnel_runs(
        &self,
        net: &RoadNetwork,
        road: usize,
        travel: Direction,
        at: i64,
    ) -> Vec<(f64, f64)> {
        let (lo, hi) = (self.roads[road].lo, self.roads[road].hi);
        let mut runs = Vec::new();
        let mut start: Option<f64> = None;
        let mut s = lo;
        while s <= hi {
            let tunnel = self.structure_at(net, road, travel, s, at) == Some(Structure::Tunnel);
            match (tunnel, start) {
                (true, None) => start = Some(s),
                (false, Some(a)) => {
                    runs.push((a, s - 50.0));
                    start = None;
                }
                _ => {}
            }
            s += 50.0;
        }
        if let Some(a) = start {
            runs.push((a, hi));
        }
        runs.retain(|(a, b)| b >= a);
        runs
    }
}

/// Appends a leg, merging it into the previous one when it simply continues it.
fn push_leg(legs: &mut Vec<Leg>, leg: Leg) {
    if leg.from == leg.to && leg.ramp_m == 0.0 {
        return;
    }
    if let Some(last) = legs.last_mut() {
        if last.road == leg.road
            && last.travel == leg.travel
            && last.to == leg.from
            && leg.ramp_m == 0.0
        {
            last.to = leg.to;
            return;
        }
    }
    legs.push(leg);
}

fn stake_text(stake: f64) -> String {
    roadwatch_core::roads::Stake(stake).to_string()
}

/// Up to `n` points inside a zone polygon, by rejection sampling in its bounding box
/// with a fixed-seed generator (the same points every run). Points are rounded to the
/// 6 decimals they are sent with before the test, so what a detector receives is inside
/// too. `on_carriageway` picks points on a carriageway (workers in a work zone) or off
/// every one (people in a service area car park, not on its 0.5 m overlap with the road).
fn sample_inside(
    net: &RoadNetwork,
    zone: ZoneId,
    n: usize,
    on_carriageway: bool,
) -> Vec<(f64, f64)> {
    let Some(z) = net.zone(zone) else {
        return Vec::new();
    };
    let b = z.bbox();
    let mut rng = Rng::derive(u64::from(zone.0), 0x5A4F_4E45, 0);
    let mut out = Vec::with_capacity(n);
    for _ in 0..20_000 {
        if out.len() >= n {
            break;
        }
        let x = (rng.range(b[0], b[2]) * 1e6).round() / 1e6;
        let y = (rng.range(b[1], b[3]) * 1e6).round() / 1e6;
        if !z.contains(x, y) {
            continue;
        }
        let paved = net
            .locate(x, y, EventTime::from_ms(0))
            .is_some_and(|p| p.on_carriageway);
        if paved == on_carriageway {
            out.push((x, y));
        }
    }
    out
}

fn build_roads(net: &RoadNetwork) -> Vec<SimRoad> {
    let mut out = Vec::new();
    for road in net.roads() {
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        let mut has = [false; 3];
        for id in road.lines() {
            let Some(l) = net.line(*id) else { continue };
            if l.kind() != LineKind::Carriageway {
                continue;
            }
            let (a, b) = l.stake_range();
            lo = lo.min(a);
            hi = hi.max(b);
            has[match l.direction() {
                Direction::Up => 0,
                Direction::Down => 1,
                Direction::Both => 2,
            }] = true;
        }
        if !(lo.is_finite() && hi > lo) {
            continue;
        }
        let up = if has[0] {
            Some(Direction::Up)
        } else if has[2] {
            Some(Direction::Both)
        } else {
            None
        };
        let down = if has[1] {
            Some(Direction::Down)
        } else if has[2] {
            Some(Direction::Both)
        } else {
            None
        };
        let table = |dir: Option<Direction>| -> Vec<f64> {
            let Some(dir) = dir else { return Vec::new() };
            let steps = ((hi - lo) / ODO_STEP_M).ceil() as usize;
            let mut odo = Vec::with_capacity(steps + 1);
            let mut total = 0.0;
            odo.push(0.0);
            for k in 1..=steps {
                let a = lo + (k - 1) as f64 * ODO_STEP_M;
                let b = (lo + k as f64 * ODO_STEP_M).min(hi);
                total += net
                    .distance_along(road.road_id(), dir, a, b)
                    .unwrap_or(b - a);
                odo.push(total);
            }
            odo
        };
        out.push(SimRoad {
            id: Arc::from(road.road_id()),
            ident: ident_part(road.road_id()),
            lo,
            hi,
            odo_up: table(up),
            odo_down: table(down),
            up,
            down,
        });
    }
    out
}
