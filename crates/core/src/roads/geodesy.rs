//! Metres from degrees, at any latitude.
//!
//! Every distance the road module measures is short (a snap radius of 100 m,
//! a segment of at most a few km), so a local equirectangular projection is
//! exact enough — if its two scale factors are the WGS 84 radii of curvature
//! at the right latitude rather than one spherical radius. With them the error
//! against the ellipsoidal geodesic is a few millimetres for a 20 m offset at
//! any latitude short of the poles (tested in `tests/roads_geodesy.rs`
//! against geo's Karney geodesic); a sphere would be off by up to 0.3 %.
//!
//! Lines are straight in longitude/latitude between vertices (RFC 7946
//! section 3.1.1), and a linear map keeps them straight, so projecting around
//! the query point and measuring in the plane is consistent with the file.
//! The antimeridian is not handled: no expressway crosses it.

/// WGS 84 semi-major axis, metres.
const WGS84_A: f64 = 6_378_137.0;
/// WGS 84 first eccentricity squared.
const WGS84_E2: f64 = 0.006_694_379_990_141_317;

/// The smallest east-west scale used, in metres per degree. It only matters
/// within a few metres of a pole, where it keeps search boxes finite.
const MIN_METRES_PER_DEGREE_LON: f64 = 1.0;

/// Metres per degree of longitude (`kx`) and of latitude (`ky`) at a latitude.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    pub kx: f64,
    pub ky: f64,
}

impl Scale {
    /// Local scale at `lat_deg`: the prime-vertical radius times cos φ east-west
    /// and the meridional radius north-south, both per degree.
    pub fn at(lat_deg: f64) -> Scale {
        let phi = lat_deg.to_radians();
        let (sin, cos) = phi.sin_cos();
        let w2 = 1.0 - WGS84_E2 * sin * sin;
        let w = w2.sqrt();
        let prime_vertical = WGS84_A / w;
        let meridional = WGS84_A * (1.0 - WGS84_E2) / (w2 * w);
        let per_degree = std::f64::consts::PI / 180.0;
        Scale {
            kx: (prime_vertical * cos * per_degree).max(MIN_METRES_PER_DEGREE_LON),
            ky: meridional * per_degree,
        }
    }

    /// Half-widths in degrees of a box of `metres` around a point.
    pub fn degrees_for(self, metres: f64) -> (f64, f64) {
        (metres / self.kx, metres / self.ky)
    }
}

/// Distance in metres between two nearby points (local projection at their
/// mid-latitude). Good to ~1e-6 relative for distances of a few km.
pub fn distance_m(a: [f64; 2], b: [f64; 2]) -> f64 {
    let s = Scale::at((a[1] + b[1]) * 0.5);
    let dx = (b[0] - a[0]) * s.kx;
    let dy = (b[1] - a[1]) * s.ky;
    dx.hypot(dy)
}

/// The closest point of segment `a`–`b` to `q`, measured in the local plane
/// of `q` with `scale` (which the caller computes once per query).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegmentProjection {
    /// Position of the closest point along the segment, 0 at `a`, 1 at `b`.
    pub t: f64,
    /// Squared distance in square metres from `q` to that point.
    pub dist2_m2: f64,
    /// Which side of the segment `q` lies on: positive left of `a`→`b`.
    pub side: f64,
}

#[inline]
pub fn project_on_segment(
    q: [f64; 2],
    a: [f64; 2],
    b: [f64; 2],
    scale: Scale,
) -> SegmentProjection {
    let ax = (a[0] - q[0]) * scale.kx;
    let ay = (a[1] - q[1]) * scale.ky;
    let dx = (b[0] - a[0]) * scale.kx;
    let dy = (b[1] - a[1]) * scale.ky;
    let len2 = dx * dx + dy * dy;
    // A zero-length segment (repeated vertex) projects onto its only point.
    let t = if len2 > 0.0 {
        (-(ax * dx + ay * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let px = ax + t * dx;
    let py = ay + t * dy;
    // Cross product of the segment with a→q: positive when q is to the left.
    let side = dx * (-ay) - dy * (-ax);
    SegmentProjection {
        t,
        dist2_m2: px * px + py * py,
        side,
    }
}

/// Linear interpolation between two lon/lat points (straight in degrees, as
/// the file's segments are).
#[inline]
pub fn lerp(a: [f64; 2], b: [f64; 2], t: f64) -> [f64; 2] {
    [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t]
}

/// Whether a lon/lat pair is a usable WGS 84 position.
pub fn valid_position(lon: f64, lat: f64) -> bool {
    lon.is_finite()
        && lat.is_finite()
        && (-180.0..=180.0).contains(&lon)
        && (-90.0..=90.0).contains(&lat)
}

/// A regular polygon approximating a circle of `radius_m` around a point:
/// OSM maps some service areas and toll booths as single nodes, and a zone
/// needs an area.
pub fn circle(center: [f64; 2], radius_m: f64, vertices: usize) -> Vec<[f64; 2]> {
    let scale = Scale::at(center[1]);
    let (rx, ry) = scale.degrees_for(radius_m);
    let mut ring: Vec<[f64; 2]> = (0..vertices)
        .map(|i| {
            let angle = std::f64::consts::TAU * i as f64 / vertices as f64;
            [center[0] + rx * angle.cos(), center[1] + ry * angle.sin()]
        })
        .collect();
    ring.push(ring[0]);
    ring
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equator_degree_is_about_111_km() {
        let s = Scale::at(0.0);
        // 2πa/360 at the equator for longitude; meridian degree is shorter.
        assert!((s.kx - 111_319.49).abs() < 0.1, "{}", s.kx);
        assert!((s.ky - 110_574.3).abs() < 0.5, "{}", s.ky);
    }

    #[test]
    fn projection_of_point_beside_a_segment() {
        let scale = Scale::at(0.0);
        let a = [0.0, 0.0];
        let b = [0.01, 0.0];
        // 0.0001° north of the middle of an east-going segment: left side.
        let q = [0.005, 0.0001];
        let p = project_on_segment(q, a, b, scale);
        assert!((p.t - 0.5).abs() < 1e-12);
        assert!((p.dist2_m2.sqrt() - 0.0001 * scale.ky).abs() < 1e-9);
        assert!(p.side > 0.0);
        let below = project_on_segment([0.005, -0.0001], a, b, scale);
        assert!(below.side < 0.0);
    }

    #[test]
    fn projection_clamps_to_the_ends() {
        let scale = Scale::at(45.0);
        let p = project_on_segment([-0.01, 45.0], [0.0, 45.0], [0.01, 45.0], scale);
        assert_eq!(p.t, 0.0);
        assert!((p.dist2_m2.sqrt() - 0.01 * scale.kx).abs() < 1e-9);
    }

    #[test]
    fn degenerate_segment_is_a_point() {
        let scale = Scale::at(10.0);
        let p = project_on_segment([1.0, 10.0], [1.0, 10.001], [1.0, 10.001], scale);
        assert_eq!(p.t, 0.0);
        assert!((p.dist2_m2.sqrt() - 0.001 * scale.ky).abs() < 1e-9);
    }

    #[test]
    fn circle_is_closed_and_round() {
        let ring = circle([105.0, 27.0], 150.0, 16);
        assert_eq!(ring.len(), 17);
        assert_eq!(ring[0], ring[16]);
        for p in &ring {
            let d = distance_m([105.0, 27.0], *p);
            assert!((d - 150.0).abs() < 0.01, "{d}");
        }
    }
}
