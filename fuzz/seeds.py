#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora, from the project's own tests and fixtures, into
fuzz/seeds/<target>/ (regenerated on every `scripts/fuzz` run, so never stale and never
committed): records of every stream from the replay fixtures and a simulated day (with
its bad records), the configuration files, and small pieces of the road files."""
import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "fuzz" / "seeds"
STREAMS = ["camera", "plate", "weather", "patrol", "ack", "operator"]


def write(target, name, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def replay_inputs(sim):
    files = sorted((ROOT / "tests" / "fixtures" / "replay").glob("*/input.ndjson"))
    if sim.exists():
        files.append(sim)
    return files


def main():
    sim = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else pathlib.Path("/nonexistent")
    per_stream = {s: [] for s in STREAMS}
    for f in replay_inputs(sim):
        lines = f.read_bytes().split(b"\n")
        # The replay target: runs of consecutive lines (engine state builds up).
        for i in range(0, min(len(lines), 400), 40):
            write("replay_lines", f"{f.parent.name}-{f.stem}-{i}", b"\n".join(lines[i:i + 40]))
        for line in lines:
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            stream = doc.get("stream") if isinstance(doc, dict) else None
            if stream in per_stream and len(per_stream[stream]) < 150:
                value = doc.get("value")
                raw = json.dumps(value, ensure_ascii=False) if value is not None else ""
                per_stream[stream].append(raw)
    for stream, values in per_stream.items():
        for i, v in enumerate(values):
            write(f"decode_{stream}", f"{i:03}", v)

    configs = [ROOT / "config" / "default.toml"]
    configs += sorted((ROOT / "tests" / "fixtures").glob("**/config.toml"))
    configs += sorted((ROOT / "deploy").glob("**/*.toml"))
    for i, c in enumerate(configs):
        write("config_toml", f"{i:02}-{c.name}", c.read_bytes())

    # Road files are large; pieces of a few consecutive features keep executions fast
    # while covering each kind of feature (and, for OSM, ways that join into chains).
    def pieces(path, target, size, limit):
        doc = json.loads(path.read_text())
        feats = doc["features"]
        step = max(1, len(feats) // limit)
        for n, i in enumerate(range(0, len(feats), step)):
            part = {"type": "FeatureCollection", "features": feats[i:i + size]}
            write(target, f"{path.stem}-{n:03}", json.dumps(part, ensure_ascii=False))

    pieces(ROOT / "config" / "roads" / "bijie.geojson", "roads_geojson", 4, 60)
    pieces(ROOT / "tests" / "fixtures" / "osm" / "motorways-rhine-neckar.geojson", "roads_osm", 6, 60)
    shared = ROOT.parent / "shared" / "data" / "motorways-rhine-neckar.geojson"
    if shared.exists():
        pieces(shared, "roads_osm", 6, 40)


if __name__ == "__main__":
    main()
