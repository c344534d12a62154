//! Stake numbers (桩号): their text form and how a line maps length to stake.
//!
//! A stake is the distance along the route *as signposted*, which is not the
//! geodesic length: realignments leave chain breaks (断链) where the stake
//! jumps or stalls. So a line never derives its stakes from its length alone;
//! it carries a [`StakeProfile`] — anchor pairs (metres along the geometry,
//! stake) that the file gives — and interpolates linearly between them.

use std::fmt;

use serde::{Serialize, Serializer};

/// A stake in metres that prints as `K1203+450` (rounded to the metre).
///
/// Negative stakes can only come from extrapolating before a route's zero
/// point; they print with a leading minus (`-K0+120`) rather than being
/// clamped, so the oddity stays visible.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Stake(pub f64);

impl Stake {
    pub fn metres(self) -> f64 {
        self.0
    }

    /// Parses `K1203+450` (also `k1203+450.5` and `-K0+120`) into metres.
    pub fn parse(text: &str) -> Option<Stake> {
        let text = text.trim();
        let (negative, rest) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let rest = rest.strip_prefix(['K', 'k'])?;
        let (km, m) = rest.split_once('+')?;
        let km: u64 = km.trim().parse().ok()?;
        let m: f64 = m.trim().parse().ok()?;
        if !(0.0..1000.0).contains(&m) {
            return None;
        }
        let total = km as f64 * 1000.0 + m;
        Some(Stake(if negative { -total } else { total }))
    }
}

impl fmt::Display for Stake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.0.is_finite() {
            return f.write_str("K?");
        }
        let rounded = self.0.round();
        let sign = if rounded < 0.0 { "-" } else { "" };
        // f64 → u64 saturates, which is fine for a value that is only shown.
        let metres = rounded.abs() as u64;
        write!(f, "{sign}K{}+{:03}", metres / 1000, metres % 1000)
    }
}

impl Serialize for Stake {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// How stakes run along one line: piecewise linear between anchors.
///
/// Invariants (checked by the constructors): anchors are sorted by strictly
/// increasing `along`, their stakes strictly monotone (all increasing or all
/// decreasing), every value finite, and `outside_slope` is ±1 with the sign
/// of the stake trend. Monotone stakes make the inverse ([`Self::along_at`])
/// well defined, which `point_at` relies on.
#[derive(Debug, Clone, PartialEq)]
pub struct StakeProfile {
    /// `[along_m, stake_m]` pairs.
    anchors: Vec<[f64; 2]>,
    /// Stake metres per geometry metre beyond the first and last anchor.
    /// ±1: beyond the last milestone the signposted distance is the best
    /// guess for the real one.
    outside_slope: f64,
}

impl StakeProfile {
    /// Stakes given at both ends of a line of `length_m` (native schema).
    /// `None` when the two are equal or not finite: no direction of growth.
    pub fn between_ends(length_m: f64, stake_start: f64, stake_end: f64) -> Option<StakeProfile> {
        StakeProfile::from_anchors(vec![[0.0, stake_start], [length_m, stake_end]])
    }

    /// A profile through at least two anchors, which must already satisfy the
    /// invariants (sorted by along, strictly monotone stakes).
    pub fn from_anchors(anchors: Vec<[f64; 2]>) -> Option<StakeProfile> {
        if anchors.len() < 2
            || anchors
                .iter()
                .any(|a| !a[0].is_finite() || !a[1].is_finite())
        {
            return None;
        }
        let increasing = anchors[1][1] > anchors[0][1];
        let ordered = anchors.windows(2).all(|w| {
            w[1][0] > w[0][0]
                && if increasing {
                    w[1][1] > w[0][1]
                } else {
                    w[1][1] < w[0][1]
                }
        });
        if !ordered {
            return None;
        }
        Some(StakeProfile {
            anchors,
            outside_slope: if increasing { 1.0 } else { -1.0 },
        })
    }

    /// One known point and a sense of growth (`increasing`).
    pub fn single(along_m: f64, stake_m: f64, increasing: bool) -> Option<StakeProfile> {
        if !along_m.is_finite() || !stake_m.is_finite() {
            return None;
        }
        Some(StakeProfile {
            anchors: vec![[along_m, stake_m]],
            outside_slope: if increasing { 1.0 } else { -1.0 },
        })
    }

    /// No anchor at all: the stake is the length along the geometry.
    pub fn length_only() -> StakeProfile {
        StakeProfile {
            anchors: vec![[0.0, 0.0]],
            outside_slope: 1.0,
        }
    }

    pub fn anchors(&self) -> &[[f64; 2]] {
        &self.anchors
    }

    pub fn is_increasing(&self) -> bool {
        self.outside_slope > 0.0
    }

    /// Stake at `along_m` metres along the geometry.
    pub fn stake_at(&self, along_m: f64) -> f64 {
        if along_m.is_nan() {
            return f64::NAN;
        }
        let first = self.anchors[0];
        let last = self.anchors[self.anchors.len() - 1];
        if along_m <= first[0] {
            return first[1] + (along_m - first[0]) * self.outside_slope;
        }
        if along_m >= last[0] {
            return last[1] + (along_m - last[0]) * self.outside_slope;
        }
        // First anchor strictly beyond `along_m`; it exists and is not the
        // first one because of the two early returns.
        let hi = self.anchors.partition_point(|a| a[0] <= along_m);
        let (a, b) = (self.anchors[hi - 1], self.anchors[hi]);
        a[1] + (b[1] - a[1]) * (along_m - a[0]) / (b[0] - a[0])
    }

    /// Metres along the geometry where the stake is `stake_m` (extrapolating
    /// beyond the anchors like [`Self::stake_at`]; the caller clamps to the line).
    pub fn along_at(&self, stake_m: f64) -> f64 {
        if stake_m.is_nan() {
            return f64::NAN;
        }
        let first = self.anchors[0];
        let last = self.anchors[self.anchors.len() - 1];
        let slope = self.outside_slope;
        // Distance "into" the profile in its own sense of growth.
        let before_first = (stake_m - first[1]) * slope <= 0.0;
        if before_first {
            return first[0] + (stake_m - first[1]) / slope;
        }
        let after_last = (stake_m - last[1]) * slope >= 0.0;
        if after_last {
            return last[0] + (stake_m - last[1]) / slope;
        }
        let hi = self
            .anchors
            .partition_point(|a| (a[1] - stake_m) * slope <= 0.0);
        let (a, b) = (self.anchors[hi - 1], self.anchors[hi]);
        a[0] + (b[0] - a[0]) * (stake_m - a[1]) / (b[1] - a[1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stake_text() {
        assert_eq!(Stake(1_203_450.0).to_string(), "K1203+450");
        assert_eq!(Stake(1_203_449.6).to_string(), "K1203+450");
        assert_eq!(Stake(7.0).to_string(), "K0+007");
        assert_eq!(Stake(999.5).to_string(), "K1+000");
        assert_eq!(Stake(-120.0).to_string(), "-K0+120");
        assert_eq!(Stake(f64::NAN).to_string(), "K?");
    }

    #[test]
    fn stake_parse_round_trips() {
        for m in [0.0, 7.0, 999.0, 1000.0, 1_203_450.0, -120.0] {
            let text = Stake(m).to_string();
            assert_eq!(Stake::parse(&text), Some(Stake(m)), "{text}");
        }
        assert_eq!(Stake::parse("K12+1000"), None);
        assert_eq!(Stake::parse("12+100"), None);
    }

    #[test]
    fn interpolates_and_extrapolates_increasing() {
        let p = StakeProfile::from_anchors(vec![[0.0, 1000.0], [100.0, 1100.0], [300.0, 1150.0]])
            .unwrap();
        assert_eq!(p.stake_at(50.0), 1050.0);
        // A chain break compresses 200 m of road into 50 m of stake.
        assert_eq!(p.stake_at(200.0), 1125.0);
        assert_eq!(p.stake_at(-10.0), 990.0);
        assert_eq!(p.stake_at(310.0), 1160.0);
        for along in [-10.0, 0.0, 50.0, 100.0, 200.0, 300.0, 310.0] {
            assert!(
                (p.along_at(p.stake_at(along)) - along).abs() < 1e-9,
                "{along}"
            );
        }
    }

    #[test]
    fn interpolates_decreasing() {
        let p = StakeProfile::between_ends(1000.0, 5000.0, 4000.0).unwrap();
        assert!(!p.is_increasing());
        assert_eq!(p.stake_at(250.0), 4750.0);
        assert_eq!(p.along_at(4750.0), 250.0);
        assert_eq!(p.stake_at(1010.0), 3990.0);
        assert_eq!(p.along_at(5010.0), -10.0);
    }

    #[test]
    fn rejects_flat_or_unordered_anchors() {
        assert!(StakeProfile::between_ends(100.0, 5.0, 5.0).is_none());
        assert!(StakeProfile::from_anchors(vec![[0.0, 1.0], [10.0, 2.0], [20.0, 1.5]]).is_none());
        assert!(StakeProfile::from_anchors(vec![[0.0, 1.0], [0.0, 2.0]]).is_none());
        assert!(StakeProfile::from_anchors(vec![[0.0, f64::NAN], [1.0, 2.0]]).is_none());
    }

    #[test]
    fn nan_in_nan_out() {
        let p = StakeProfile::from_anchors(vec![[0.0, 0.0], [10.0, 10.0], [20.0, 30.0]]).unwrap();
        assert!(p.stake_at(f64::NAN).is_nan());
        assert!(p.along_at(f64::NAN).is_nan());
    }

    #[test]
    fn single_anchor_runs_at_unit_slope() {
        let p = StakeProfile::single(100.0, 5000.0, false).unwrap();
        assert_eq!(p.stake_at(0.0), 5100.0);
        assert_eq!(p.along_at(4900.0), 200.0);
    }
}
