#!/usr/bin/env python3
"""Self-check for config/roads/bijie.geojson (the illustrative Bijie demo network).

    python3 scripts/check-bijie-network.py [FILE]

Python 3 standard library only. Prints a summary and every failed check; exits 0 when
all checks pass, 1 otherwise. What it checks (see docs/BIJIE_NETWORK.md):

- FeatureCollection with a metadata member saying illustrative / not surveyed / WGS 84 /
  generator; every feature has properties.illustrative == true; file < 3 MB;
  coordinates finite, inside 104.9..106.3 E, 26.8..27.6 N, at most 6 decimals.
- Every LineString has >= 2 points; polygons have closed counter-clockwise rings.
- Per road: both carriageways exist; each forms one connected chain; stakes are
  monotonic in the direction of travel (up increasing, down decreasing) and continuous
  across splits, except at a chain break listed in metadata; each carriageway feature's
  stake span matches its haversine length within 5 %; vertices every 20..200 m; up and
  down are 10..40 m apart, each has the other on its left (right-hand traffic) and they
  run in opposite directions; road length 40..120 km; tunnel + bridge share.
- Interchanges: stake inside the road's stake range, point within 300 m of the road and
  of the road position at that stake; spacing 5..15 km; a hub shared by two roads.
- Service areas: >= 3 names incl. 西溪服务区, rings within 200 m of a carriageway.
- Weather stations: exactly wx-01..wx-14, beside (not on) a carriageway, within 50 m of
  it, stake_m consistent with the position, spread over every road.
- Work zones: one with active_from/active_to (RFC 3339, +08:00, late 2026), one without.
- Ramps end on (or near) a carriageway; toll plazas exist.
"""

import datetime
import json
import math
import os
import re
import sys
from collections import defaultdict

BBOX = (104.9, 26.8, 106.3, 27.6)
R_EARTH = 6371008.8
LAT0 = 27.2
KX = R_EARTH * math.cos(math.radians(LAT0)) * math.pi / 180.0
KY = R_EARTH * math.pi / 180.0

failures = []


def fail(msg):
    failures.append(msg)


def haversine(a, b):
    p1, p2 = math.radians(a[1]), math.radians(b[1])
    dp, dl = p2 - p1, math.radians(b[0] - a[0])
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * R_EARTH * math.asin(min(1.0, math.sqrt(h)))


def xy(p):
    return (p[0] * KX, p[1] * KY)


def line_length(coords):
    return sum(haversine(a, b) for a, b in zip(coords, coords[1:]))


def seg_nearest(p, a, b):
    """(distance, t) from plane point p to segment a-b."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    L2 = dx * dx + dy * dy
    t = 0.0 if L2 == 0 else max(0.0, min(1.0, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / L2))
    q = (a[0] + dx * t, a[1] + dy * t)
    return math.hypot(p[0] - q[0], p[1] - q[1]), t


class LineIndex:
    """Grid index over line segments (plane metres) for nearest-line queries."""

    CELL = 400.0

    def __init__(self):
        self.grid = defaultdict(list)
        self.segs = []

    def add_line(self, coords, info):
        pts = [xy(c) for c in coords]
        cum = [0.0]
        for a, b in zip(coords, coords[1:]):
            cum.append(cum[-1] + haversine(a, b))
        total = cum[-1] or 1.0
        for i in range(len(pts) - 1):
            a, b = pts[i], pts[i + 1]
            k = len(self.segs)
            self.segs.append((a, b, info, cum[i] / total, cum[i + 1] / total))
            x0, x1 = sorted((a[0], b[0]))
            y0, y1 = sorted((a[1], b[1]))
            for cx in range(int(math.floor(x0 / self.CELL)), int(math.floor(x1 / self.CELL)) + 1):
                for cy in range(int(math.floor(y0 / self.CELL)), int(math.floor(y1 / self.CELL)) + 1):
                    self.grid[(cx, cy)].append(k)

    def nearest(self, lonlat, radius, pred=None):
        """(distance_m, info, fraction_along_feature, seg_a, seg_b) or None."""
        p = xy(lonlat)
        r = int(math.ceil(radius / self.CELL))
        cx, cy = int(math.floor(p[0] / self.CELL)), int(math.floor(p[1] / self.CELL))
        best = None
        seen = set()
        for i in range(cx - r, cx + r + 1):
            for j in range(cy - r, cy + r + 1):
                for k in self.grid.get((i, j), ()):
                    if k in seen:
                        continue
                    seen.add(k)
                    a, b, info, f0, f1 = self.segs[k]
                    if pred is not None and not pred(info):
                        continue
                    d, t = seg_nearest(p, a, b)
                    if d <= radius and (best is None or d < best[0]):
                        best = (d, info, f0 + (f1 - f0) * t, a, b)
        return best


def ring_is_ccw(ring):
    area = 0.0
    for a, b in zip(ring, ring[1:]):
        area += a[0] * b[1] - b[0] * a[1]
    return area > 0


def decimals_ok(v):
    return round(v, 6) == v


def iter_coords(geom):
    t, c = geom.get("type"), geom.get("coordinates")
    if t == "Point":
        yield c
    elif t in ("LineString", "MultiPoint"):
        yield from c
    elif t in ("Polygon", "MultiLineString"):
        for part in c:
            yield from part
    elif t == "MultiPolygon":
        for poly in c:
            for ring in poly:
                yield from ring
    else:
        raise ValueError("geometry type %r" % t)


def parse_rfc3339(s):
    if not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$", s or ""):
        return None
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "config", "roads", "bijie.geojson")
    path = os.path.normpath(path)
    size = os.path.getsize(path)
    with open(path, encoding="utf-8") as fh:
        fc = json.load(fh)

    # ------------------------------------------------------------ file level
    if fc.get("type") != "FeatureCollection":
        fail("not a FeatureCollection")
    if size >= 3 * 1024 * 1024:
        fail("file is %d bytes (>= 3 MB)" % size)
    meta = fc.get("metadata") or fc.get("properties") or {}
    meta_text = json.dumps(meta, ensure_ascii=False).lower()
    if meta.get("illustrative") is not True or meta.get("surveyed") is not False:
        fail("metadata must say illustrative: true, surveyed: false")
    if "gen-bijie-network.py" not in meta_text:
        fail("metadata does not name the generator")
    if "wgs 84" not in meta_text and "wgs84" not in meta_text:
        fail("metadata does not state WGS 84")
    feats = fc.get("features", [])

    kinds = defaultdict(int)
    bad = set()  # features with unusable geometry, left out of the geometric checks
    for i, f in enumerate(feats):
        props = f.get("properties") or {}
        geom = f.get("geometry") or {}
        kinds[props.get("kind")] += 1
        fid = f.get("id", "#%d" % i)
        if props.get("illustrative") is not True:
            fail("%s: properties.illustrative is not true" % fid)
        try:
            coords = list(iter_coords(geom))
        except (ValueError, TypeError) as e:
            fail("%s: %s" % (fid, e))
            bad.add(i)
            continue
        for c in coords:
            if len(c) < 2 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in c):
                fail("%s: non-finite coordinate %r" % (fid, c))
                bad.add(i)
                break
            if not (BBOX[0] <= c[0] <= BBOX[2] and BBOX[1] <= c[1] <= BBOX[3]):
                fail("%s: coordinate %r outside bbox" % (fid, c))
                break
            if not (decimals_ok(c[0]) and decimals_ok(c[1])):
                fail("%s: coordinate %r has more than 6 decimals" % (fid, c))
                break
        t = geom.get("type")
        if t == "LineString" and len(geom["coordinates"]) < 2:
            fail("%s: LineString with < 2 points" % fid)
            bad.add(i)
        if t == "Polygon":
            for ring in geom["coordinates"]:
                if len(ring) < 4 or ring[0] != ring[-1]:
                    fail("%s: polygon ring not closed / too short" % fid)
                elif not ring_is_ccw(ring):
                    fail("%s: exterior ring not counter-clockwise (RFC 7946)" % fid)
                break

    feats = [f for i, f in enumerate(feats) if i not in bad]

    # ------------------------------------------------------------ carriageways
    cws = [f for f in feats if f["properties"].get("kind") == "carriageway"]
    meta_order = [r.get("road_id") for r in meta.get("roads", [])]
    roads = sorted({f["properties"]["road_id"] for f in cws},
                   key=lambda r: (meta_order.index(r) if r in meta_order else len(meta_order), r))
    breaks = {}
    for r in meta.get("roads", []):
        for b in r.get("chain_breaks", []):
            breaks.setdefault(r["road_id"], []).append((b["stake_before_m"], b["stake_after_m"]))

    index = LineIndex()
    for f in cws:
        p = f["properties"]
        index.add_line(f["geometry"]["coordinates"], p)

    summary = {}
    max_dev = (0.0, None)
    spacing_max, spacing_min = 0.0, float("inf")
    sep_min, sep_max = float("inf"), 0.0
    for rid in roads:
        info = {}
        for direction in ("up", "down"):
            chain_feats = [f for f in cws if f["properties"]["road_id"] == rid
                           and f["properties"]["direction"] == direction]
            if not chain_feats:
                fail("%s: no %s carriageway" % (rid, direction))
                continue
            sign = 1 if direction == "up" else -1
            # order by connectivity
            starts = {tuple(f["geometry"]["coordinates"][0]): f for f in chain_feats}
            ends = {tuple(f["geometry"]["coordinates"][-1]) for f in chain_feats}
            heads = [f for f in chain_feats if tuple(f["geometry"]["coordinates"][0]) not in ends]
            if len(heads) != 1:
                fail("%s %s: carriageway is not one connected chain (%d heads)" % (rid, direction, len(heads)))
                continue
            chain = [heads[0]]
            while True:
                nxt = starts.get(tuple(chain[-1]["geometry"]["coordinates"][-1]))
                if nxt is None or nxt in chain:
                    break
                chain.append(nxt)
            if len(chain) != len(chain_feats):
                fail("%s %s: chain covers %d of %d features" % (rid, direction, len(chain), len(chain_feats)))
            length = 0.0
            struct_len = defaultdict(float)
            jumps = 0
            for k, f in enumerate(chain):
                p = f["properties"]
                c = f["geometry"]["coordinates"]
                s0, s1 = p["stake_start_m"], p["stake_end_m"]
                if (s1 - s0) * sign <= 0:
                    fail("%s: stakes %s -> %s not monotonic for %s" % (f.get("id"), s0, s1, direction))
                L = line_length(c)
                length += L
                dev = abs(abs(s1 - s0) - L) / L
                if dev > max_dev[0]:
                    max_dev = (dev, f.get("id"))
                if dev > 0.05:
                    fail("%s: stake span %.1f m vs length %.1f m (%.1f %%)" % (f.get("id"), abs(s1 - s0), L, dev * 100))
                for a, b in zip(c, c[1:]):
                    seg = haversine(a, b)
                    spacing_max, spacing_min = max(spacing_max, seg), min(spacing_min, seg)
                if p.get("structure"):
                    struct_len[p["structure"]] += L
                if not 12.0 <= p.get("width_m", 15) <= 15.0 and not p.get("structure"):
                    fail("%s: width_m %s outside 12..15" % (f.get("id"), p.get("width_m")))
                for key in ("name", "name_en", "road_id"):
                    if not p.get(key):
                        fail("%s: missing %s" % (f.get("id"), key))
                if k > 0:
                    prev = chain[k - 1]["properties"]["stake_end_m"]
                    if abs(prev - s0) > 0.01:
                        pair = (prev, s0) if direction == "up" else (s0, prev)
                        if pair in breaks.get(rid, []):
                            jumps += 1
                        else:
                            fail("%s: stake jumps %s -> %s without a documented chain break"
                                 % (f.get("id"), prev, s0))
            if len(breaks.get(rid, [])) != jumps:
                fail("%s %s: %d documented chain breaks, %d found" % (rid, direction, len(breaks.get(rid, [])), jumps))
            first, last = chain[0]["properties"]["stake_start_m"], chain[-1]["properties"]["stake_end_m"]
            info[direction] = {
                "length": length, "features": len(chain), "stakes": (first, last),
                "tunnel": struct_len["tunnel"], "bridge": struct_len["bridge"], "chain": chain,
            }
        if "up" not in info or "down" not in info:
            continue
        # separation and sidedness
        for direction, other in (("up", "down"), ("down", "up")):
            for f in info[direction]["chain"]:
                c = f["geometry"]["coordinates"]
                for i in range(1, len(c) - 1):
                    h = (xy(c[i + 1])[0] - xy(c[i - 1])[0], xy(c[i + 1])[1] - xy(c[i - 1])[1])
                    hit = index.nearest(c[i], 80.0, lambda p: p["road_id"] == rid and p["direction"] == other)
                    if hit is None:
                        fail("%s: vertex %d has no %s carriageway within 80 m" % (f.get("id"), i, other))
                        break
                    d, _, _, a, b = hit
                    sep_min, sep_max = min(sep_min, d), max(sep_max, d)
                    if not 10.0 <= d <= 40.0:
                        fail("%s: %s carriageway %.1f m away at vertex %d" % (f.get("id"), other, d, i))
                        break
                    p0 = xy(c[i])
                    proj = seg_nearest(p0, a, b)[1]
                    q = (a[0] + (b[0] - a[0]) * proj, a[1] + (b[1] - a[1]) * proj)
                    v = (q[0] - p0[0], q[1] - p0[1])
                    if h[0] * v[1] - h[1] * v[0] <= 0:
                        fail("%s: %s carriageway is not on the left at vertex %d" % (f.get("id"), other, i))
                        break
                    if h[0] * (b[0] - a[0]) + h[1] * (b[1] - a[1]) >= 0:
                        fail("%s: runs in the same direction as %s at vertex %d" % (f.get("id"), other, i))
                        break
        up = info["up"]
        lo, hi = up["stakes"]
        share = (up["tunnel"] + up["bridge"]) / up["length"]
        if not 40000 <= up["length"] <= 120000:
            fail("%s: length %.1f km outside 40..120 km" % (rid, up["length"] / 1000))
        if not 0.15 <= share <= 0.35:
            fail("%s: tunnel+bridge share %.1f %% outside 15..35 %%" % (rid, share * 100))
        name = up["chain"][0]["properties"]["name"]
        summary[rid] = {"name": name, "km": up["length"] / 1000, "km_down": info["down"]["length"] / 1000,
                        "lo": lo, "hi": hi, "tunnel": up["tunnel"] / 1000, "bridge": up["bridge"] / 1000,
                        "share": share, "features": (up["features"], info["down"]["features"])}
    if spacing_max > 200.0 or spacing_min < 20.0:
        fail("carriageway vertex spacing %.0f..%.0f m (want 20..200 m)" % (spacing_min, spacing_max))
    tot = sum(s["km"] for s in summary.values())
    tot_struct = sum(s["tunnel"] + s["bridge"] for s in summary.values())
    overall_share = tot_struct / tot if tot else 0.0
    if not 0.20 <= overall_share <= 0.30:
        fail("overall tunnel+bridge share %.1f %% outside 20..30 %%" % (overall_share * 100))

    def road_pos(lonlat, rid, radius):
        hit = index.nearest(lonlat, radius, lambda p: p["road_id"] == rid)
        if hit is None:
            return None
        d, p, frac, _, _ = hit
        return d, p, p["stake_start_m"] + (p["stake_end_m"] - p["stake_start_m"]) * frac

    def stake_point(rid, stake):
        """Up-carriageway coordinate at `stake` (linear in fraction along the feature)."""
        for f in cws:
            p = f["properties"]
            if p["road_id"] != rid or p["direction"] != "up":
                continue
            if p["stake_start_m"] <= stake <= p["stake_end_m"]:
                c = f["geometry"]["coordinates"]
                target = (stake - p["stake_start_m"]) / (p["stake_end_m"] - p["stake_start_m"]) * line_length(c)
                acc = 0.0
                for a, b in zip(c, c[1:]):
                    L = haversine(a, b)
                    if acc + L >= target:
                        u = 0 if L == 0 else (target - acc) / L
                        return [a[0] + (b[0] - a[0]) * u, a[1] + (b[1] - a[1]) * u]
                    acc += L
                return c[-1]
        return None

    # ------------------------------------------------------------ interchanges
    ics = [f for f in feats if f["properties"].get("kind") == "interchange"]
    ic_by_road = defaultdict(list)
    spacing_report = {}
    for f in ics:
        p = f["properties"]
        rid = p.get("road_id")
        if rid not in summary:
            fail("%s: interchange on unknown road %r" % (p.get("name"), rid))
            continue
        s = summary[rid]
        if not s["lo"] <= p["stake_m"] <= s["hi"]:
            fail("%s %s: stake %s outside %s..%s" % (rid, p["name"], p["stake_m"], s["lo"], s["hi"]))
        pos = road_pos(f["geometry"]["coordinates"], rid, 300.0)
        if pos is None:
            fail("%s %s: more than 300 m from the road" % (rid, p["name"]))
        sp = stake_point(rid, p["stake_m"])
        if sp is None or haversine(sp, f["geometry"]["coordinates"]) > 300.0:
            fail("%s %s: point is > 300 m from the road at its stake" % (rid, p["name"]))
        ic_by_road[rid].append(p["stake_m"])
    for rid, stakes in ic_by_road.items():
        stakes.sort()
        gaps = [(b - a) / 1000 for a, b in zip(stakes, stakes[1:])]
        # a chain break inside a gap shifts stakes without adding road
        for before, after in breaks.get(rid, []):
            for i, (a, b) in enumerate(zip(stakes, stakes[1:])):
                if a <= before and after <= b:
                    gaps[i] -= (after - before) / 1000
        spacing_report[rid] = (min(gaps), max(gaps), len(stakes))
        for g in gaps:
            if not 5.0 <= g <= 15.0:
                fail("%s: interchange spacing %.1f km outside 5..15 km" % (rid, g))
        s = summary[rid]
        if (stakes[0] - s["lo"]) / 1000 > 15 or (s["hi"] - stakes[-1]) / 1000 > 15:
            fail("%s: more than 15 km without interchange at a road end" % rid)
    for rid in summary:
        if rid not in ic_by_road:
            fail("%s: no interchanges" % rid)
    hubs = defaultdict(set)
    for f in ics:
        if f["properties"].get("interchange_type") == "hub":
            hubs[f["properties"]["name"]].add(f["properties"]["road_id"])
    if not any(len(v) >= 2 for v in hubs.values()):
        fail("no hub interchange shared by two roads")

    # ------------------------------------------------------------ polygons near roads
    def polygon_near(f, limit):
        best = None
        for c in f["geometry"]["coordinates"][0]:
            hit = index.nearest(c, limit)
            if hit is not None and (best is None or hit[0] < best):
                best = hit[0]
        return best

    sas = [f for f in feats if f["properties"].get("kind") == "service_area"]
    sa_names = sorted({f["properties"]["name"] for f in sas})
    if "西溪服务区" not in sa_names:
        fail("西溪服务区 missing")
    if not 3 <= len(sa_names) <= 5:
        fail("%d service areas (want 3..5)" % len(sa_names))
    for f in sas:
        if f["geometry"]["type"] != "Polygon":
            fail("%s: service area is not a Polygon" % f["properties"]["name"])
        elif polygon_near(f, 200.0) is None:
            fail("%s: more than 200 m from a carriageway" % f["properties"]["name"])
    for kind in ("toll_plaza", "tunnel", "bridge", "work_zone"):
        for f in feats:
            if f["properties"].get("kind") == kind and polygon_near(f, 400.0) is None:
                fail("%s %s: more than 400 m from a carriageway" % (kind, f["properties"].get("name")))
    if kinds["toll_plaza"] < 2:
        fail("fewer than 2 toll plazas")
    if kinds["tunnel"] + kinds["bridge"] < 1:
        fail("no tunnel/bridge polygon")

    # ------------------------------------------------------------ work zones
    wzs = [f["properties"] for f in feats if f["properties"].get("kind") == "work_zone"]
    timed = [p for p in wzs if "active_from" in p or "active_to" in p]
    untimed = [p for p in wzs if "active_from" not in p and "active_to" not in p]
    if len(timed) < 1 or len(untimed) < 1:
        fail("want >= 1 timed and >= 1 untimed work zone (got %d / %d)" % (len(timed), len(untimed)))
    for p in timed:
        a, b = parse_rfc3339(p.get("active_from")), parse_rfc3339(p.get("active_to"))
        if a is None or b is None or not a < b:
            fail("%s: bad active_from/active_to" % p.get("name"))
        elif not (p["active_from"].endswith("+08:00") and p["active_to"].endswith("+08:00")
                  and a.year == 2026 and a.month >= 9):
            fail("%s: active period should be late 2026 in +08:00" % p.get("name"))

    # ------------------------------------------------------------ weather stations
    stations = [f for f in feats if f["properties"].get("kind") == "weather_station"]
    ids = sorted(f["properties"].get("station_id") for f in stations)
    if ids != ["wx-%02d" % i for i in range(1, 15)]:
        fail("weather station ids are %s, want wx-01..wx-14" % ids)
    st_dist = []
    st_roads = defaultdict(int)
    for f in stations:
        p = f["properties"]
        st_roads[p.get("road_id")] += 1
        pos = road_pos(f["geometry"]["coordinates"], p.get("road_id"), 50.0)
        if pos is None:
            fail("%s: no carriageway of %s within 50 m" % (p["station_id"], p.get("road_id")))
            continue
        d, cw, stake = pos
        st_dist.append(d)
        if d <= cw.get("width_m", 15) / 2:
            fail("%s: stands on the carriageway (%.1f m from its centre line)" % (p["station_id"], d))
        if abs(stake - p["stake_m"]) > 100:
            fail("%s: stake_m %s but position is at %.0f" % (p["station_id"], p["stake_m"], stake))
        if not p.get("name"):
            fail("%s: no name" % p["station_id"])
    for rid in summary:
        if st_roads.get(rid, 0) < 2:
            fail("%s: fewer than 2 weather stations" % rid)

    # ------------------------------------------------------------ ramps
    ramps = [f for f in feats if f["properties"].get("kind") == "ramp"]
    for f in ramps:
        c = f["geometry"]["coordinates"]
        hits = [index.nearest(c[0], 15.0), index.nearest(c[-1], 15.0)]
        if all(h is None for h in hits):
            fail("%s: neither end of the ramp touches a carriageway" % f.get("id"))
        p = f["properties"]
        if p.get("direction") not in ("up", "down", "both"):
            fail("%s: bad direction" % f.get("id"))
    if not ramps:
        fail("no ramps")

    # ------------------------------------------------------------ summary
    print("checked %s (%d bytes, %d features)" % (path, size, sum(kinds.values())))
    print("features by kind: " + ", ".join("%s %d" % kv for kv in sorted(kinds.items())))
    for rid, s in summary.items():
        print("  %-4s %-6s %6.1f km (down %.1f km)  K%d+%03d .. K%d+%03d  tunnels %.1f km, bridges %.1f km "
              "(%.1f %%)  features up/down %d/%d"
              % (rid, s["name"], s["km"], s["km_down"], s["lo"] // 1000, round(s["lo"] % 1000), s["hi"] // 1000,
                 round(s["hi"] % 1000), s["tunnel"], s["bridge"], s["share"] * 100, *s["features"]))
        if rid in spacing_report:
            a, b, n = spacing_report[rid]
            print("       %d interchanges, spacing %.1f..%.1f km" % (n, a, b))
    for rid, bl in breaks.items():
        for before, after in bl:
            print("  chain break %s: %.2f -> %.2f (%+.2f m)" % (rid, before, after, after - before))
    print("  total %.1f km, tunnel+bridge share %.1f %%" % (tot, overall_share * 100))
    print("  up/down separation %.1f..%.1f m; max stake-vs-length deviation %.2f %% (%s); vertex spacing %.0f..%.0f m"
          % (sep_min, sep_max, max_dev[0] * 100, max_dev[1], spacing_min, spacing_max))
    if st_dist:
        print("  weather stations: %d, %.1f..%.1f m from a carriageway centre line"
              % (len(stations), min(st_dist), max(st_dist)))
    print("  service areas: %s" % ", ".join(sa_names))
    if failures:
        for m in failures[:200]:
            print("FAIL " + m)
        print("%d check(s) failed" % len(failures))
        return 1
    print("OK: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
