#!/usr/bin/env python3
"""Generate config/roads/bijie.geojson, roadwatch's default road network.

The network is an ILLUSTRATIVE demo around Bijie, Guizhou -- not surveyed, not
traced from any map. Town positions are approximate; alignments, stake numbers,
structures, interchanges and facilities are invented to look like mountain
expressways (see docs/BIJIE_NETWORK.md).

Deterministic: Python 3 standard library only, fixed random seeds, no clock.
Running it twice yields byte-identical output.

    python3 scripts/gen-bijie-network.py            # writes config/roads/bijie.geojson
    python3 scripts/gen-bijie-network.py -o FILE    # writes FILE instead
    python3 scripts/gen-bijie-network.py --summary  # also prints distances of towns along roads

Conventions (also written into the file's "metadata" member):
- WGS 84 lon/lat, 6 decimals.
- Each road has a centreline (not written) on which stakes are measured. Its `up`
  (上行) carriageway is the direction of increasing stake, the `down` (下行) one the
  direction of decreasing stake. Every carriageway's geometry runs in its direction of
  travel and lies to the right of the centreline as seen in that direction (China
  drives on the right), CARRIAGEWAY_OFFSET_M from it, so the carriageways are
  2 * CARRIAGEWAY_OFFSET_M apart. A down feature therefore has
  stake_start_m > stake_end_m.
- Stakes are interpolated along the geometry between stake_start_m and stake_end_m.
"""

import argparse
import json
import math
import os
import random

# --------------------------------------------------------------------------- geometry

R_EARTH = 6371008.8
LON0, LAT0 = 105.6, 27.2  # local plane origin
KX = R_EARTH * math.cos(math.radians(LAT0)) * math.pi / 180.0  # metres per degree lon
KY = R_EARTH * math.pi / 180.0  # metres per degree lat

BBOX = (104.9, 26.8, 106.3, 27.6)
CARRIAGEWAY_OFFSET_M = 10.0  # centreline -> carriageway centre line; 20 m between them
DENSE_STEP_M = 5.0  # internal sampling of the spline
CHORD_TOL_M = 0.3  # max chord error of the written polylines
VERTEX_MIN_M, VERTEX_MAX_M = 50.0, 195.0


def to_xy(lon, lat):
    return ((lon - LON0) * KX, (lat - LAT0) * KY)


def to_ll(x, y):
    return (LON0 + x / KX, LAT0 + y / KY)


def haversine(lon1, lat1, lon2, lat2):
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * R_EARTH * math.asin(min(1.0, math.sqrt(a)))


def catmull_rom(points, step=DENSE_STEP_M):
    """Centripetal Catmull-Rom spline through `points` (plane xy), sampled ~every `step` m."""
    pts = list(points)
    first = (2 * pts[0][0] - pts[1][0], 2 * pts[0][1] - pts[1][1])
    last = (2 * pts[-1][0] - pts[-2][0], 2 * pts[-1][1] - pts[-2][1])
    ext = [first] + pts + [last]
    out = [pts[0]]
    for i in range(1, len(ext) - 2):
        p0, p1, p2, p3 = ext[i - 1], ext[i], ext[i + 1], ext[i + 2]

        def tj(ti, a, b):
            return ti + math.hypot(b[0] - a[0], b[1] - a[1]) ** 0.5

        t0 = 0.0
        t1 = tj(t0, p0, p1)
        t2 = tj(t1, p1, p2)
        t3 = tj(t2, p2, p3)
        seg = math.hypot(p2[0] - p1[0], p2[1] - p1[1])
        n = max(2, int(math.ceil(seg * 1.2 / step)))
        for k in range(1, n + 1):
            t = t1 + (t2 - t1) * k / n

            def lerp(a, b, ta, tb):
                if tb == ta:
                    return a
                u = (t - ta) / (tb - ta)
                return (a[0] + (b[0] - a[0]) * u, a[1] + (b[1] - a[1]) * u)

            a1 = lerp(p0, p1, t0, t1)
            a2 = lerp(p1, p2, t1, t2)
            a3 = lerp(p2, p3, t2, t3)
            b1 = lerp(a1, a2, t0, t2)
            b2 = lerp(a2, a3, t1, t3)
            out.append(lerp(b1, b2, t1, t2))
    return out


class Centreline:
    """Dense centreline of one road in the local plane, with haversine arc length."""

    def __init__(self, dense_xy):
        self.xy = dense_xy
        self.d = [0.0]
        prev = to_ll(*dense_xy[0])
        for p in dense_xy[1:]:
            ll = to_ll(*p)
            self.d.append(self.d[-1] + haversine(prev[0], prev[1], ll[0], ll[1]))
            prev = ll
        self.length = self.d[-1]

    def _index(self, d):
        lo, hi = 0, len(self.d) - 1
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.d[mid] <= d:
                lo = mid
            else:
                hi = mid
        return lo

    def point(self, d):
        d = min(max(d, 0.0), self.length)
        i = self._index(d)
        j = min(i + 1, len(self.xy) - 1)
        span = self.d[j] - self.d[i]
        u = 0.0 if span <= 0 else (d - self.d[i]) / span
        a, b = self.xy[i], self.xy[j]
        return (a[0] + (b[0] - a[0]) * u, a[1] + (b[1] - a[1]) * u)

    def tangent(self, d, h=10.0):
        a = self.point(max(0.0, d - h))
        b = self.point(min(self.length, d + h))
        L = math.hypot(b[0] - a[0], b[1] - a[1])
        return ((b[0] - a[0]) / L, (b[1] - a[1]) / L)

    def normal_right(self, d):
        tx, ty = self.tangent(d)
        return (ty, -tx)

    def offset_point(self, d, off):
        """Point `off` metres to the right (negative: left) of the centreline at d."""
        p = self.point(d)
        n = self.normal_right(d)
        return (p[0] + n[0] * off, p[1] + n[1] * off)

    def curvature(self, d, h=40.0):
        a = self.tangent(max(0.0, d - h), 5.0)
        b = self.tangent(min(self.length, d + h), 5.0)
        ang = math.atan2(a[0] * b[1] - a[1] * b[0], a[0] * b[0] + a[1] * b[1])
        return abs(ang) / (2 * h)

    def nearest_d(self, x, y):
        best, bd = None, 0.0
        for i, p in enumerate(self.xy):
            dd = (p[0] - x) ** 2 + (p[1] - y) ** 2
            if best is None or dd < best:
                best, bd = dd, self.d[i]
        return bd

    def sample(self, d0, d1):
        """Vertex positions (arc lengths) from d0 to d1, adaptive to curvature."""
        if d1 - d0 <= 1e-6:
            return [d0, d1]

        def step_at(d):
            k = max(self.curvature(min(d + s, self.length)) for s in (-40.0, 0.0, 40.0))
            if k <= 1e-9:
                return VERTEX_MAX_M
            return min(VERTEX_MAX_M, max(VERTEX_MIN_M, math.sqrt(8.0 * CHORD_TOL_M / k)))

        # place vertices at equal steps of the integral of 1/step(d)
        L = d1 - d0
        m = max(1, int(math.ceil(L / 10.0)))
        cum = [0.0]
        for i in range(m):
            da = d0 + L * i / m
            cum.append(cum[-1] + (L / m) / step_at(da + L / (2 * m)))
        n = max(1, int(math.ceil(cum[-1] - 1e-9)))
        out = [d0]
        j = 0
        for k in range(1, n):
            target = cum[-1] * k / n
            while cum[j + 1] < target:
                j += 1
            u = (target - cum[j]) / (cum[j + 1] - cum[j])
            out.append(d0 + L * (j + u) / m)
        out.append(d1)
        return out


def build_waypoints(major, seed, spacing=3000.0, amp=1100.0):
    """Insert jittered intermediate waypoints between the fixed `major` ones.

    major: list of (lon, lat, calm) -- calm=True keeps the neighbouring inserted
    points on the straight chord (used near hubs so crossing angles stay clean).
    """
    rnd = random.Random(seed)
    pts = []
    for i in range(len(major) - 1):
        a = to_xy(major[i][0], major[i][1])
        b = to_xy(major[i + 1][0], major[i + 1][1])
        calm_a, calm_b = major[i][2], major[i + 1][2]
        pts.append(a)
        D = math.hypot(b[0] - a[0], b[1] - a[1])
        n = max(1, int(round(D / spacing)))
        ux, uy = (b[0] - a[0]) / D, (b[1] - a[1]) / D
        nx, ny = uy, -ux
        for k in range(1, n):
            f = k / n
            j = rnd.uniform(-1.0, 1.0) * amp
            # taper the jitter towards calm waypoints
            dist_a, dist_b = f * D, (1 - f) * D
            if calm_a and dist_a < 3000:
                j *= max(0.0, (dist_a - 1500) / 1500)
            if calm_b and dist_b < 3000:
                j *= max(0.0, (dist_b - 1500) / 1500)
            pts.append((a[0] + (b[0] - a[0]) * f + nx * j, a[1] + (b[1] - a[1]) * f + ny * j))
    pts.append(to_xy(major[-1][0], major[-1][1]))
    return pts


# --------------------------------------------------------------------------- alignments

TOWNS = {
    "毕节": (105.29, 27.30),
    "大方": (105.61, 27.14),
    "黔西": (106.03, 27.03),
}

HUB_BIJIE = (105.336, 27.272)  # 毕节枢纽: G76 x G56
HUB_DAFANG = (105.556, 27.184)  # 大方枢纽: S82 ends at G76

# (lon, lat, calm) in the up direction (increasing stake)
G76_MAJOR = [
    (106.062, 27.012, False),  # towards Guiyang (stakes fall towards Xiamen)
    (106.030, 27.046, False),  # north of Qianxi
    (105.950, 27.063, False),
    (105.860, 27.084, False),
    (105.760, 27.112, False),
    (105.680, 27.147, False),
    (105.610, 27.163, False),  # north of Dafang
    (HUB_DAFANG[0], HUB_DAFANG[1], True),
    (105.470, 27.216, False),
    (105.390, 27.247, False),
    (HUB_BIJIE[0], HUB_BIJIE[1], True),
    (105.290, 27.284, False),  # south of Bijie
    (105.235, 27.302, False),
    (105.190, 27.328, False),  # towards Chengdu
]

G56_MAJOR = [
    (105.800, 27.540, False),  # towards Zunyi / Hangzhou
    (105.700, 27.482, False),
    (105.580, 27.425, False),
    (105.470, 27.372, False),
    (105.392, 27.318, False),
    (HUB_BIJIE[0], HUB_BIJIE[1], True),
    (105.280, 27.232, False),
    (105.215, 27.210, False),
    (105.130, 27.182, False),
    (105.050, 27.150, False),  # towards Liupanshui / Ruili
]

S82_MAJOR_HEAD = [
    (105.930, 26.812, False),  # towards Guiyang
    (105.840, 26.900, False),
    (105.752, 26.980, False),
    (105.680, 27.060, False),
    (105.640, 27.105, False),  # south-east of Dafang
    (105.588, 27.128, False),  # south-west of Dafang
]
S82_END_GAP_M = 250.0  # S82 stops this far short of the G76 centre line (hub ramps bridge it)


def build_centrelines():
    g76 = Centreline(catmull_rom(build_waypoints(G76_MAJOR, seed=7601)))
    g56 = Centreline(catmull_rom(build_waypoints(G56_MAJOR, seed=5601)))
    # S82 arrives square to G76 at the Dafang hub, from the south (left of G76 up).
    hx, hy = to_xy(*HUB_DAFANG)
    dh = g76.nearest_d(hx, hy)
    hub = g76.point(dh)
    n = g76.normal_right(dh)
    end = (hub[0] - n[0] * S82_END_GAP_M, hub[1] - n[1] * S82_END_GAP_M)
    pre = (hub[0] - n[0] * 1700.0, hub[1] - n[1] * 1700.0)
    head = build_waypoints(S82_MAJOR_HEAD, seed=8201)
    s82 = Centreline(catmull_rom(head + [pre, end]))
    return {"G76": g76, "G56": g56, "S82": s82}


# --------------------------------------------------------------------------- roads

ROADS = {
    "G76": {
        "name": "厦蓉高速",
        "name_en": "Xiamen–Chengdu Expressway",
        "up_towards": "成都 Chengdu",
        "down_towards": "厦门/贵阳 Xiamen/Guiyang",
        "stake_start_m": 1148000.0,
        "width_m": 13.0,
    },
    "G56": {
        "name": "杭瑞高速",
        "name_en": "Hangzhou–Ruili Expressway",
        "up_towards": "瑞丽 Ruili",
        "down_towards": "杭州/遵义 Hangzhou/Zunyi",
        "stake_start_m": 1792000.0,
        "width_m": 13.0,
    },
    "S82": {
        "name": "筑大高速",
        "name_en": "Guiyang–Dafang Expressway",
        "up_towards": "大方 Dafang",
        "down_towards": "贵阳 Guiyang",
        "stake_start_m": 62000.0,
        "width_m": 12.5,
    },
}
ROAD_ORDER = ["G76", "G56", "S82"]
WIDTH_BY_STRUCTURE = {"tunnel": 10.5, "bridge": 12.5}

# One chain break (断链): on G76 the stake jumps forward from K1188+686 to
# K1189+000 (短链 314 m). Both carriageways are split there.
CHAIN_BREAK = {"road_id": "G76", "stake_before_m": 1188686.0, "stake_after_m": 1189000.0}

# Positions in the tables below are stakes in km (e.g. 1191.50 = K1191+500).

# Structures: (kind, name, name_en, stake_from_km, stake_to_km); ("HUB", half_length_km)
# centres the structure on the hub.
STRUCTURES = {
    "G76": [
        ("bridge", "高坡大桥", "Gaopo Bridge", 1149.50, 1150.10),
        ("tunnel", "马场隧道", "Machang Tunnel", 1154.20, 1155.30),
        ("bridge", "新仁大桥", "Xinren Bridge", 1159.00, 1159.60),
        ("tunnel", "金坡隧道", "Jinpo Tunnel", 1165.20, 1167.60),
        ("bridge", "六冲河特大桥", "Liuchong River Grand Bridge", 1169.40, 1170.75),
        ("tunnel", "新店隧道", "Xindian Tunnel", 1175.00, 1176.35),
        ("bridge", "沙厂大桥", "Shachang Bridge", 1179.20, 1179.85),
        ("tunnel", "对江隧道", "Duijiang Tunnel", 1184.50, 1187.85),
        ("bridge", "双山特大桥", "Shuangshan Grand Bridge", 1189.30, 1190.40),
        ("tunnel", "龙场隧道", "Longchang Tunnel", 1192.90, 1194.00),
        ("bridge", "大方高架桥", "Dafang Viaduct", 1201.00, 1201.80),
        ("tunnel", "大关隧道", "Daguan Tunnel", 1207.00, 1208.90),
        ("bridge", "鸭池河大桥", "Yachi River Bridge", 1212.50, 1213.30),
        ("bridge", "白甫河特大桥", "Baifu River Grand Bridge", 1217.50, 1219.00),
        ("tunnel", "梨树坪隧道", "Lishuping Tunnel", 1223.00, 1224.60),
        ("bridge", "石桥大桥", "Shiqiao Bridge", 1230.00, 1230.70),
        ("tunnel", "白岩脚隧道", "Baiyanjiao Tunnel", 1237.20, 1238.10),
        ("bridge", "清水铺大桥", "Qingshuipu Bridge", 1242.20, 1242.70),
    ],
    "G56": [
        ("tunnel", "茶园隧道", "Chayuan Tunnel", 1799.00, 1800.60),
        ("bridge", "七星河特大桥", "Qixing River Grand Bridge", 1802.00, 1803.30),
        ("tunnel", "岩脚隧道", "Yanjiao Tunnel", 1808.00, 1810.90),
        ("bridge", "长春堡大桥", "Changchunbao Bridge", 1812.50, 1813.20),
        ("tunnel", "田坝隧道", "Tianba Tunnel", 1818.00, 1819.20),
        ("bridge", "田坝大桥", "Tianba Bridge", 1821.00, 1821.60),
        ("bridge", "海子街高架桥", "Haizijie Viaduct", 1831.40, 1832.00),
        ("tunnel", "乌蒙隧道", "Wumeng Tunnel", 1836.00, 1838.20),
        ("bridge", "倒天河特大桥", "Daotian River Grand Bridge", 1844.00, 1845.30),
        ("bridge", "毕节枢纽跨线桥", "Bijie Hub Overpass", "HUB", 0.18),
        ("bridge", "大河大桥", "Dahe Bridge", 1852.50, 1853.20),
        ("tunnel", "小坝隧道", "Xiaoba Tunnel", 1857.40, 1858.60),
        ("tunnel", "撒拉溪隧道", "Salaxi Tunnel", 1860.00, 1861.90),
        ("bridge", "拱桥河大桥", "Gongqiao River Bridge", 1868.00, 1869.20),
        ("tunnel", "野角隧道", "Yejiao Tunnel", 1876.00, 1877.50),
        ("bridge", "野马川大桥", "Yemachuan Bridge", 1879.20, 1879.90),
    ],
    "S82": [
        ("tunnel", "八堡隧道", "Babao Tunnel", 67.50, 69.30),
        ("bridge", "六圭河特大桥", "Liugui River Grand Bridge", 71.00, 72.40),
        ("tunnel", "化屋隧道", "Huawu Tunnel", 76.50, 79.00),
        ("bridge", "理化大桥", "Lihua Bridge", 80.50, 81.10),
        ("bridge", "猫场河大桥", "Maochang River Bridge", 85.00, 85.70),
        ("tunnel", "羊场隧道", "Yangchang Tunnel", 89.00, 90.40),
        ("bridge", "落脚河特大桥", "Luojiao River Grand Bridge", 95.00, 96.20),
        ("bridge", "六龙大桥", "Liulong Bridge", 103.50, 104.10),
        ("tunnel", "黄泥塘隧道", "Huangnitang Tunnel", 105.00, 107.20),
        ("bridge", "大方南高架桥", "Dafang South Viaduct", 113.00, 113.90),
    ],
}
# Structures that also get an outline Polygon (kind tunnel / bridge).
STRUCTURE_POLYGONS = ["对江隧道", "六冲河特大桥", "岩脚隧道", "毕节枢纽跨线桥", "化屋隧道"]

# Interchanges: (name, name_en, stake_km or a hub key, town on the toll-plaza side or None,
# has ramps + toll plaza). "END" = the road's last vertex.
INTERCHANGES = {
    "G76": [
        ("黔西互通", "Qianxi Interchange", 1152.60, "黔西", True),
        ("甘棠互通", "Gantang Interchange", 1162.00, None, False),
        ("素朴互通", "Supu Interchange", 1172.50, None, False),
        ("沙厂互通", "Shachang Interchange", 1182.00, None, False),
        ("双山互通", "Shuangshan Interchange", 1191.50, None, False),
        ("大方互通", "Dafang Interchange", 1198.20, "大方", True),
        ("大方枢纽", "Dafang Hub", "HUB_DAFANG", None, False),
        ("鸭池互通", "Yachi Interchange", 1211.00, None, False),
        ("杨家湾互通", "Yangjiawan Interchange", 1220.00, None, False),
        ("毕节枢纽", "Bijie Hub", "HUB_BIJIE", None, False),
        ("毕节南互通", "Bijie South Interchange", 1233.60, "毕节", True),
        ("毕节西互通", "Bijie West Interchange", 1241.00, None, False),
    ],
    "G56": [
        ("茶园互通", "Chayuan Interchange", 1796.00, None, False),
        ("八寨互通", "Bazhai Interchange", 1805.50, None, False),
        ("长春堡互通", "Changchunbao Interchange", 1815.00, None, False),
        ("田坝互通", "Tianba Interchange", 1824.50, None, False),
        ("海子街互通", "Haizijie Interchange", 1833.50, None, False),
        ("毕节东互通", "Bijie East Interchange", 1841.50, "毕节", True),
        ("毕节枢纽", "Bijie Hub", "HUB_BIJIE", None, False),
        ("小坝互通", "Xiaoba Interchange", 1855.50, None, False),
        ("撒拉溪互通", "Salaxi Interchange", 1864.50, None, False),
        ("野角互通", "Yejiao Interchange", 1873.50, None, False),
    ],
    "S82": [
        ("八堡互通", "Babao Interchange", 65.00, None, False),
        ("理化互通", "Lihua Interchange", 74.00, None, False),
        ("猫场互通", "Maochang Interchange", 83.00, None, False),
        ("羊场互通", "Yangchang Interchange", 92.50, None, False),
        ("六龙互通", "Liulong Interchange", 101.50, None, False),
        ("大方南互通", "Dafang South Interchange", 110.00, "大方", True),
        ("大方枢纽", "Dafang Hub", "END", None, False),
    ],
}

# Service areas: (name, name_en, road_id, stake_km). One Polygon per side.
SERVICE_AREAS = [
    ("黔西服务区", "Qianxi Service Area", "G76", 1157.00),
    ("大方服务区", "Dafang Service Area", "G76", 1195.00),
    ("西溪服务区", "Xixi Service Area", "G76", 1215.50),
    ("海子街服务区", "Haizijie Service Area", "G56", 1828.50),
    ("六龙服务区", "Liulong Service Area", "S82", 97.80),
]

WORK_ZONES = [
    {
        "name": "厦蓉高速下行路面病害处治施工区",
        "name_en": "G76 down carriageway pavement repair",
        "road_id": "G76", "direction": "down", "stake_from_km": 1234.60, "stake_to_km": 1235.80,
        "active_from": "2026-11-16T08:00:00+08:00",
        "active_to": "2026-12-18T18:00:00+08:00",
    },
    {
        "name": "筑大高速上行边坡防护施工区",
        "name_en": "S82 up carriageway slope protection works (open-ended)",
        "road_id": "S82", "direction": "up", "stake_from_km": 86.50, "stake_to_km": 87.30,
    },
]

# Weather stations: (station_id, road_id, stake_km, side of the road, name, name_en)
WEATHER_STATIONS = [
    ("wx-01", "G76", 1153.90, "up", "马场隧道口气象站", "Machang Tunnel portal"),
    ("wx-02", "G76", 1169.90, "down", "六冲河特大桥气象站", "Liuchong River Grand Bridge"),
    ("wx-03", "G76", 1184.30, "up", "对江隧道口气象站", "Duijiang Tunnel portal"),
    ("wx-04", "G76", 1201.40, "down", "大方高架桥气象站", "Dafang Viaduct"),
    ("wx-05", "G76", 1218.20, "up", "白甫河特大桥气象站", "Baifu River Grand Bridge"),
    ("wx-06", "G76", 1238.30, "down", "白岩脚隧道口气象站", "Baiyanjiao Tunnel portal"),
    ("wx-07", "G56", 1802.60, "up", "七星河特大桥气象站", "Qixing River Grand Bridge"),
    ("wx-08", "G56", 1807.80, "down", "岩脚隧道口气象站", "Yanjiao Tunnel portal"),
    ("wx-09", "G56", 1835.80, "up", "乌蒙隧道口气象站", "Wumeng Tunnel portal"),
    ("wx-10", "G56", 1844.60, "down", "倒天河特大桥气象站", "Daotian River Grand Bridge"),
    ("wx-11", "G56", 1868.60, "up", "拱桥河大桥气象站", "Gongqiao River Bridge"),
    ("wx-12", "S82", 71.70, "down", "六圭河特大桥气象站", "Liugui River Grand Bridge"),
    ("wx-13", "S82", 79.20, "up", "化屋隧道口气象站", "Huawu Tunnel portal"),
    ("wx-14", "S82", 107.40, "down", "黄泥塘隧道口气象站", "Huangnitang Tunnel portal"),
]

HUB_CONNECTS = {"毕节枢纽": ["G76", "G56"], "大方枢纽": ["G76", "S82"]}

TOLL_PLAZA_OFFSET_M = 340.0  # centre line -> toll plaza centre
RAMP_GORE_M = 450.0  # ramp gores this far either side of an interchange's stake
HUB_RAMP_GORE_M = 600.0
RAMP_WIDTH_M = 9.0
FLYOVER_OVERSHOOT_M = 70.0  # semi-direct ramps aim this far past the centre line
OUTER_BIAS_M = 60.0  # ... and diverge / merge on the right-hand (outer) side


# --------------------------------------------------------------------------- helpers


def fmt_stake(m):
    """1188686.35 -> 'K1188+686.35', 1189000 -> 'K1189+000'."""
    m = round(m, 2)
    km = int(m // 1000)
    rest = round(m - km * 1000, 2)
    if rest == int(rest):
        return "K%d+%03d" % (km, int(rest))
    return "K%d+%06.2f" % (km, rest)


def ll_round(p):
    lon, lat = to_ll(*p)
    return [round(lon, 6), round(lat, 6)]


def line_coords(xy_points):
    return [ll_round(p) for p in xy_points]


def ring_coords(xy_points):
    """Closed, counter-clockwise (RFC 7946) ring from an open list of plane points."""
    pts = list(xy_points)
    area = 0.0
    for i in range(len(pts)):
        x1, y1 = pts[i]
        x2, y2 = pts[(i + 1) % len(pts)]
        area += x1 * y2 - x2 * y1
    if area < 0:
        pts.reverse()
    ring = [ll_round(p) for p in pts]
    ring.append(list(ring[0]))
    return ring


def bezier(p0, p1, p2, p3, spacing=25.0):
    approx = (math.dist(p0, p1) + math.dist(p1, p2) + math.dist(p2, p3))
    n = max(4, int(math.ceil(approx / spacing)))
    out = []
    for k in range(n + 1):
        t = k / n
        a, b, c, d = (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t ** 2, t ** 3
        out.append((a * p0[0] + b * p1[0] + c * p2[0] + d * p3[0],
                    a * p0[1] + b * p1[1] + c * p2[1] + d * p3[1]))
    return out


def add(p, v, s=1.0):
    return (p[0] + v[0] * s, p[1] + v[1] * s)


def feature(geom_type, coords, props, fid=None):
    f = {"type": "Feature"}
    if fid is not None:
        f["id"] = fid
    props = dict(props)
    props["illustrative"] = True
    f["properties"] = props
    f["geometry"] = {"type": geom_type, "coordinates": coords}
    return f


class Road:
    def __init__(self, rid, cl):
        self.rid = rid
        self.cl = cl
        self.meta = ROADS[rid]
        self.s0 = self.meta["stake_start_m"]
        self.d_break = None
        self.jump = 0.0
        if CHAIN_BREAK["road_id"] == rid:
            self.d_break = CHAIN_BREAK["stake_before_m"] - self.s0
            self.jump = CHAIN_BREAK["stake_after_m"] - CHAIN_BREAK["stake_before_m"]
        self.structures = []  # (kind, name, name_en, d0, d1)
        self.hubs = {}

    def stake(self, d, after_break=True):
        s = self.s0 + d
        if self.d_break is not None and (d > self.d_break or (d == self.d_break and after_break)):
            s += self.jump
        return round(s, 2)

    def d_of_stake(self, s):
        """Centre-line distance from the road's start for stake s (metres)."""
        if self.d_break is not None:
            if s >= CHAIN_BREAK["stake_after_m"]:
                return s - self.s0 - self.jump
            assert s <= CHAIN_BREAK["stake_before_m"], ("stake inside the chain break", s)
        return s - self.s0

    def structure_at(self, d):
        for st in self.structures:
            if st[3] <= d <= st[4]:
                return st
        return None

    def width_at(self, d):
        st = self.structure_at(d)
        return WIDTH_BY_STRUCTURE[st[0]] if st else self.meta["width_m"]

    def cw_point(self, d, direction):
        return self.cl.offset_point(d, CARRIAGEWAY_OFFSET_M if direction == "up" else -CARRIAGEWAY_OFFSET_M)

    def gore_point(self, d, direction):
        """Where a ramp leaves / joins: the right-hand paved edge of the carriageway."""
        off = CARRIAGEWAY_OFFSET_M + self.width_at(d) / 2
        return self.cl.offset_point(d, off if direction == "up" else -off)

    def heading(self, d, direction):
        t = self.cl.tangent(d)
        return t if direction == "up" else (-t[0], -t[1])

    def base_props(self):
        return {"road_id": self.rid, "name": self.meta["name"], "name_en": self.meta["name_en"]}


def offset_strip(road, d0, d1, off_a, off_b, d0b=None, d1b=None):
    """Plane polygon between offsets off_a (over d0..d1) and off_b (over d0b..d1b)."""
    d0b = d0 if d0b is None else d0b
    d1b = d1 if d1b is None else d1b
    side_a = [road.cl.offset_point(d, off_a) for d in road.cl.sample(d0, d1)]
    side_b = [road.cl.offset_point(d, off_b) for d in road.cl.sample(d0b, d1b)]
    return side_a + side_b[::-1]


# --------------------------------------------------------------------------- build


def build():
    cls = build_centrelines()
    roads = {rid: Road(rid, cls[rid]) for rid in ROAD_ORDER}
    g76, g56, s82 = roads["G76"], roads["G56"], roads["S82"]

    # hubs
    d_hb_76 = g76.cl.nearest_d(*to_xy(*HUB_BIJIE))
    d_hb_56 = g56.cl.nearest_d(*to_xy(*HUB_BIJIE))
    d_hd_76 = g76.cl.nearest_d(*to_xy(*HUB_DAFANG))
    g76.hubs = {"HUB_BIJIE": d_hb_76, "HUB_DAFANG": d_hd_76}
    g56.hubs = {"HUB_BIJIE": d_hb_56}
    s82.hubs = {"END": s82.cl.length}

    for rid in ROAD_ORDER:
        road = roads[rid]
        for kind, name, name_en, a, b in STRUCTURES[rid]:
            if a == "HUB":
                dh = road.hubs["HUB_BIJIE"]
                d0, d1 = dh - b * 1000.0, dh + b * 1000.0
            else:
                d0, d1 = road.d_of_stake(a * 1000.0), road.d_of_stake(b * 1000.0)
            assert 0 < d0 < d1 < road.cl.length, (rid, name)
            road.structures.append((kind, name, name_en, d0, d1))
        road.structures.sort(key=lambda s: s[3])
        for s1, s2 in zip(road.structures, road.structures[1:]):
            assert s1[4] < s2[3], ("overlapping structures", s1[1], s2[1])
        if road.d_break is not None:
            assert road.structure_at(road.d_break) is None

    features = []

    # ---- carriageways
    for rid in ROAD_ORDER:
        road = roads[rid]
        L = road.cl.length
        cuts = {0.0, L}
        for st in road.structures:
            cuts.update((st[3], st[4]))
        if road.d_break is not None:
            cuts.add(road.d_break)
        cuts = sorted(cuts)
        segs = list(zip(cuts, cuts[1:]))
        for direction in ("up", "down"):
            seq = segs if direction == "up" else segs[::-1]
            for i, (da, db) in enumerate(seq, 1):
                st = road.structure_at((da + db) / 2)
                ds = road.cl.sample(da, db)
                pts = [road.cw_point(d, direction) for d in ds]
                lo, hi = road.stake(da, True), road.stake(db, False)
                if direction == "down":
                    pts.reverse()
                    lo, hi = hi, lo
                props = road.base_props()
                props.update({
                    "kind": "carriageway",
                    "direction": direction,
                    "towards": road.meta["up_towards" if direction == "up" else "down_towards"],
                    "stake_start_m": lo,
                    "stake_end_m": hi,
                    "width_m": WIDTH_BY_STRUCTURE[st[0]] if st else road.meta["width_m"],
                })
                if st:
                    props["structure"] = st[0]
                    props["structure_name"] = st[1]
                    props["structure_name_en"] = st[2]
                props = {"kind": props.pop("kind"), **props}
                features.append(feature("LineString", line_coords(pts), props,
                                        "%s-%s-%03d" % (rid, direction, i)))

    # ---- ramps, toll plazas, interchanges
    ramp_feats, ic_feats, toll_feats = [], [], []
    for rid in ROAD_ORDER:
        road = roads[rid]
        for idx, (name, name_en, where, town, has_ramps) in enumerate(INTERCHANGES[rid], 1):
            if isinstance(where, str):
                d = road.hubs[where]
            else:
                d = road.d_of_stake(where * 1000.0)
            hub = "枢纽" in name
            c = road.cl.point(d)
            props = {"kind": "interchange", "road_id": rid, "name": name, "name_en": name_en,
                     "stake_m": road.stake(d), "stake": fmt_stake(road.stake(d)),
                     "interchange_type": "hub" if hub else "service"}
            if hub:
                props["connects"] = HUB_CONNECTS[name]
            ic_feats.append(feature("Point", ll_round(c), props, "ic-%s-%02d" % (rid, idx)))
            if not has_ramps:
                continue
            n = road.cl.normal_right(d)
            t = road.cl.tangent(d)
            tx, ty = to_xy(*TOWNS[town])
            side = 1.0 if (tx - c[0]) * n[0] + (ty - c[1]) * n[1] > 0 else -1.0
            a = (n[0] * side, n[1] * side)  # away from the road, towards the plaza
            plaza = add(c, a, TOLL_PLAZA_OFFSET_M)
            near_end = add(plaza, a, -30.0)
            near_dir = "up" if side > 0 else "down"
            far_dir = "down" if side > 0 else "up"
            u_near = (-t[0], -t[1]) if near_dir == "up" else t  # upstream of the near carriageway
            lanes = {
                (near_dir, "exit"): add(near_end, u_near, 24.0),
                (near_dir, "entrance"): add(near_end, u_near, -24.0),
                (far_dir, "exit"): add(near_end, u_near, -8.0),
                (far_dir, "entrance"): add(near_end, u_near, 8.0),
            }
            ic_stake = road.stake(d)
            for (direction, rtype), lane in sorted(lanes.items()):
                sign = 1.0 if direction == "up" else -1.0
                dg = d - sign * RAMP_GORE_M if rtype == "exit" else d + sign * RAMP_GORE_M
                gore = road.gore_point(dg, direction)
                h = road.heading(dg, direction)
                L = math.dist(gore, lane)
                if direction == near_dir:
                    # right turn on the plaza side: direct ramp
                    if rtype == "exit":
                        pts = bezier(gore, add(gore, h, 0.45 * L), add(lane, a, -0.35 * L), lane)
                    else:
                        pts = bezier(lane, add(lane, a, -0.35 * L), add(gore, h, -0.45 * L), gore)
                else:
                    # far carriageway: diverge / merge on its right (outer) side, cross the
                    # mainline on a flyover (semi-direct ramp)
                    over = add(lane, a, -(TOLL_PLAZA_OFFSET_M - 30.0 + FLYOVER_OVERSHOOT_M))
                    if rtype == "exit":
                        pts = bezier(gore, add(add(gore, h, 0.45 * L), a, -OUTER_BIAS_M), over, lane)
                    else:
                        pts = bezier(lane, over, add(add(gore, h, -0.45 * L), a, -OUTER_BIAS_M), gore)
                if rtype == "exit":
                    s_from, s_to = road.stake(dg), ic_stake
                else:
                    s_from, s_to = ic_stake, road.stake(dg)
                dir_zh = "上行" if direction == "up" else "下行"
                type_zh = "出口" if rtype == "exit" else "入口"
                rprops = {"kind": "ramp", "road_id": rid, "name": "%s%s%s匝道" % (name, dir_zh, type_zh),
                          "name_en": "%s %s %s ramp" % (name_en, direction, rtype),
                          "direction": direction, "ramp_type": rtype, "interchange": name,
                          "stake_start_m": s_from, "stake_end_m": s_to, "width_m": RAMP_WIDTH_M}
                ramp_feats.append(feature("LineString", line_coords(pts), rprops,
                                          "ramp-%s-%02d-%s-%s" % (rid, idx, direction, rtype)))
            # toll plaza
            half_a, half_t = 30.0, 40.0
            corners = [add(add(plaza, a, sa * half_a), t, st_ * half_t)
                       for sa, st_ in ((-1, -1), (-1, 1), (1, 1), (1, -1))]
            base = name.replace("互通", "")
            tprops = {"kind": "toll_plaza", "name": base + "收费站",
                      "name_en": name_en.replace("Interchange", "Toll Station"),
                      "road_id": rid, "interchange": name, "stake_m": ic_stake}
            toll_feats.append(feature("Polygon", [ring_coords(corners)], tprops,
                                      "toll-%s-%02d" % (rid, idx)))

    # hub ramps at 大方枢纽 (S82 ends at G76)
    d_h = g76.hubs["HUB_DAFANG"]
    Ls = s82.cl.length
    u = s82.cl.tangent(Ls)
    s82_up_end = s82.cw_point(Ls, "up")
    s82_down_start = s82.cw_point(Ls, "down")
    hub_ramps = [
        # (from_dir on G76 or None, to S82 / from S82, G76 direction, gore d, label)
        ("S82", "down", d_h - HUB_RAMP_GORE_M, "筑大高速→厦蓉高速黔西方向", "S82 to G76 towards Qianxi"),
        ("S82", "up", d_h + HUB_RAMP_GORE_M, "筑大高速→厦蓉高速毕节方向", "S82 to G76 towards Bijie"),
        ("G76", "up", d_h - HUB_RAMP_GORE_M, "厦蓉高速(黔西来)→筑大高速", "G76 from Qianxi to S82"),
        ("G76", "down", d_h + HUB_RAMP_GORE_M, "厦蓉高速(毕节来)→筑大高速", "G76 from Bijie to S82"),
    ]
    for i, (src, direction, dg, label, label_en) in enumerate(hub_ramps, 1):
        gore = g76.gore_point(dg, direction)
        h = g76.heading(dg, direction)
        n76 = g76.cl.normal_right(dg)
        outer = n76 if direction == "up" else (-n76[0], -n76[1])  # right of travel on G76
        left_turn = direction == "up"  # S82 arrives from the down side of G76
        if src == "S82":
            L = math.dist(s82_up_end, gore)
            if left_turn:
                p1 = add(s82_up_end, u, S82_END_GAP_M + FLYOVER_OVERSHOOT_M)
                p2 = add(add(gore, h, -0.45 * L), outer, OUTER_BIAS_M)
            else:
                p1 = add(s82_up_end, u, 0.4 * L)
                p2 = add(gore, h, -0.4 * L)
            pts = bezier(s82_up_end, p1, p2, gore)
            s_from, s_to = g76.stake(d_h), g76.stake(dg)
            rtype = "entrance"
        else:
            L = math.dist(gore, s82_down_start)
            if left_turn:
                p1 = add(add(gore, h, 0.45 * L), outer, OUTER_BIAS_M)
                p2 = add(s82_down_start, u, S82_END_GAP_M + FLYOVER_OVERSHOOT_M)
            else:
                p1 = add(gore, h, 0.4 * L)
                p2 = add(s82_down_start, u, 0.4 * L)
            pts = bezier(gore, p1, p2, s82_down_start)
            s_from, s_to = g76.stake(dg), g76.stake(d_h)
            rtype = "exit"
        rprops = {"kind": "ramp", "road_id": "G76", "name": "大方枢纽%s匝道" % label,
                  "name_en": "Dafang Hub ramp, %s" % label_en, "direction": direction,
                  "ramp_type": rtype, "interchange": "大方枢纽", "connects": ["G76", "S82"],
                  "stake_start_m": s_from, "stake_end_m": s_to, "width_m": RAMP_WIDTH_M}
        ramp_feats.append(feature("LineString", line_coords(pts), rprops, "ramp-hub-dafang-%d" % i))

    features += ramp_feats + ic_feats

    # ---- tunnel / bridge outlines
    for rid in ROAD_ORDER:
        road = roads[rid]
        for kind, name, name_en, d0, d1 in road.structures:
            if name not in STRUCTURE_POLYGONS:
                continue
            hw = CARRIAGEWAY_OFFSET_M + WIDTH_BY_STRUCTURE[kind] / 2 + 1.5
            ring = ring_coords(offset_strip(road, d0, d1, -hw, hw))
            props = {"kind": kind, "name": name, "name_en": name_en, "road_id": rid,
                     "stake_start_m": road.stake(d0), "stake_end_m": road.stake(d1),
                     "length_m": round(d1 - d0, 1)}
            features.append(feature("Polygon", [ring], props, "%s-%s-%s" % (kind, rid, fmt_stake(road.stake(d0)))))

    # ---- service areas (one polygon per side)
    for i, (name, name_en, rid, skm) in enumerate(SERVICE_AREAS, 1):
        road = roads[rid]
        d = road.d_of_stake(skm * 1000.0)
        assert road.structure_at(d - 400) is None and road.structure_at(d + 400) is None, name
        w = road.meta["width_m"]
        for direction in ("up", "down"):
            sgn = 1.0 if direction == "up" else -1.0
            inner = sgn * (CARRIAGEWAY_OFFSET_M + w / 2 - 0.5)  # overlaps the paved edge by 0.5 m
            outer = sgn * (CARRIAGEWAY_OFFSET_M + w / 2 + 110.0)
            ring = ring_coords(offset_strip(road, d - 260, d + 260, inner, outer, d - 180, d + 180))
            props = {"kind": "service_area", "name": name, "name_en": name_en, "road_id": rid,
                     "direction": direction, "stake_m": road.stake(d), "stake": fmt_stake(road.stake(d))}
            features.append(feature("Polygon", [ring], props, "sa-%02d-%s" % (i, direction)))
    features += toll_feats

    # ---- work zones
    for i, wz in enumerate(WORK_ZONES, 1):
        road = roads[wz["road_id"]]
        d0, d1 = road.d_of_stake(wz["stake_from_km"] * 1000.0), road.d_of_stake(wz["stake_to_km"] * 1000.0)
        sgn = 1.0 if wz["direction"] == "up" else -1.0
        w = road.width_at((d0 + d1) / 2)
        a = sgn * (CARRIAGEWAY_OFFSET_M - w / 2 - 1.0)
        b = sgn * (CARRIAGEWAY_OFFSET_M + w / 2 + 1.0)
        ring = ring_coords(offset_strip(road, d0, d1, a, b))
        s0, s1 = road.stake(d0), road.stake(d1)
        if wz["direction"] == "down":
            s0, s1 = s1, s0
        props = {"kind": "work_zone", "name": wz["name"], "name_en": wz["name_en"],
                 "road_id": wz["road_id"], "direction": wz["direction"],
                 "stake_start_m": s0, "stake_end_m": s1}
        for k in ("active_from", "active_to"):
            if k in wz:
                props[k] = wz[k]
        features.append(feature("Polygon", [ring], props, "wz-%02d" % i))

    # ---- weather stations
    for sid, rid, skm, side, name, name_en in WEATHER_STATIONS:
        road = roads[rid]
        d = road.d_of_stake(skm * 1000.0)
        st = road.structure_at(d)
        assert st is None or st[0] == "bridge", sid  # never inside a tunnel
        w = road.width_at(d)
        beyond_edge = 0.8 if st else 4.0  # on a bridge the mast stands on the parapet
        sgn = 1.0 if side == "up" else -1.0
        p = road.cl.offset_point(d, sgn * (CARRIAGEWAY_OFFSET_M + w / 2 + beyond_edge))
        if st:
            site = "bridge"
        elif any(abs(d - s[3]) < 500 or abs(d - s[4]) < 500 for s in road.structures if s[0] == "tunnel"):
            site = "tunnel_portal"
        else:
            site = "roadside"
        props = {"kind": "weather_station", "station_id": sid, "name": name,
                 "name_en": "%s weather station" % name_en, "road_id": rid, "side": side,
                 "stake_m": road.stake(d), "stake": fmt_stake(road.stake(d)), "site": site}
        features.append(feature("Point", ll_round(p), props, sid))

    return roads, features


def metadata(roads):
    road_meta = []
    for rid in ROAD_ORDER:
        road = roads[rid]
        L = road.cl.length
        struct = {"tunnel": 0.0, "bridge": 0.0}
        for s in road.structures:
            struct[s[0]] += s[4] - s[3]
        entry = {
            "road_id": rid, "name": road.meta["name"], "name_en": road.meta["name_en"],
            "stake_from_m": road.stake(0.0), "stake_to_m": road.stake(L),
            "stake_from": fmt_stake(road.stake(0.0)), "stake_to": fmt_stake(road.stake(L)),
            "length_m": round(L, 1),
            "up_towards": road.meta["up_towards"], "down_towards": road.meta["down_towards"],
            "tunnel_m": round(struct["tunnel"], 1), "bridge_m": round(struct["bridge"], 1),
        }
        if road.d_break is not None:
            entry["chain_breaks"] = [{
                "stake_before_m": CHAIN_BREAK["stake_before_m"],
                "stake_after_m": CHAIN_BREAK["stake_after_m"],
                "text": "%s = %s, 短链 %.2f m" % (fmt_stake(CHAIN_BREAK["stake_before_m"]),
                                                fmt_stake(CHAIN_BREAK["stake_after_m"]), road.jump),
            }]
        road_meta.append(entry)
    return {
        "name": "bijie-demo",
        "title": "毕节高速公路示意路网 (illustrative demo network around Bijie, Guizhou)",
        "illustrative": True,
        "surveyed": False,
        "disclaimer": ("Illustrative demo network, not surveyed: alignments, stake numbers, structures, "
                       "interchanges, service areas and station sites are invented around approximate "
                       "town positions. S82 is an illustrative road_id for the Guiyang–Dafang "
                       "expressway, not an official designation. Do not use for navigation or operations."),
        "generator": "scripts/gen-bijie-network.py",
        "regenerate": "python3 scripts/gen-bijie-network.py",
        "crs": "WGS 84 (EPSG:4326), longitude/latitude in decimal degrees, 6 decimals",
        "conventions": {
            "up": "上行: direction of increasing stake; 'down' (下行): decreasing stake",
            "geometry_direction": "every carriageway and ramp LineString runs in its direction of travel, "
                                  "so down features have stake_start_m > stake_end_m",
            "carriageway_side": "each carriageway lies to the right of the road centre line in its direction "
                                "of travel, %.0f m from it (%.0f m between up and down)"
                                % (CARRIAGEWAY_OFFSET_M, 2 * CARRIAGEWAY_OFFSET_M),
            "width_m": "paved width of one carriageway incl. shoulders",
            "stakes": "interpolate linearly along a feature between stake_start_m and stake_end_m",
            "ramp_stakes": "ramps carry the mainline stake at their gore and the stake of their interchange, "
                           "not a chainage of their own",
        },
        "roads": road_meta,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("-o", "--output", default=os.path.join(here, "..", "config", "roads", "bijie.geojson"))
    ap.add_argument("--summary", action="store_true", help="print town positions along the roads")
    args = ap.parse_args()

    roads, features = build()
    lons = [c for f in features for c in _all_lons(f["geometry"])]
    lats = [c for f in features for c in _all_lats(f["geometry"])]
    doc_head = {
        "type": "FeatureCollection",
        "bbox": [min(lons), min(lats), max(lons), max(lats)],
        "metadata": metadata(roads),
    }
    head = json.dumps(doc_head, ensure_ascii=False, indent=1)[:-2]  # strip closing brace
    body = ",\n".join(json.dumps(f, ensure_ascii=False, separators=(",", ":")) for f in features)
    text = head + ',\n "features": [\n' + body + "\n ]\n}\n"
    json.loads(text)  # sanity
    out = os.path.normpath(args.output)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)
    kinds = {}
    for f in features:
        kinds[f["properties"]["kind"]] = kinds.get(f["properties"]["kind"], 0) + 1
    print("wrote %s (%d bytes, %d features)" % (out, len(text.encode("utf-8")), len(features)))
    print("  " + ", ".join("%s %d" % kv for kv in sorted(kinds.items())))
    for rid in ROAD_ORDER:
        r = roads[rid]
        print("  %s %s %.1f km %s..%s" % (rid, r.meta["name"], r.cl.length / 1000,
                                           fmt_stake(r.stake(0.0)), fmt_stake(r.stake(r.cl.length))))
        if args.summary:
            for town, (lon, lat) in TOWNS.items():
                x, y = to_xy(lon, lat)
                d = r.cl.nearest_d(x, y)
                p = r.cl.point(d)
                print("      %s: d=%.2f km, %.2f km away" % (town, d / 1000, math.dist(p, (x, y)) / 1000))
            for k, d in r.hubs.items():
                print("      %s: d=%.3f km" % (k, d / 1000))


def _coords_flat(g):
    t, c = g["type"], g["coordinates"]
    if t == "Point":
        return [c]
    if t == "LineString":
        return c
    if t == "Polygon":
        return [p for ring in c for p in ring]
    raise ValueError(t)


def _all_lons(g):
    return [p[0] for p in _coords_flat(g)]


def _all_lats(g):
    return [p[1] for p in _coords_flat(g)]


if __name__ == "__main__":
    main()
