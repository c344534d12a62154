//! The road-network loader on OpenStreetMap exports (GeoJSON with OSM tags: highway,
//! ref, oneway, bridge, tunnel, junction): its seeds and dictionary are OSM's, so that
//! libFuzzer works on the OSM path (chains, stakes, zones) rather than the native one.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    roadwatch_fuzz::load_roads(data, false);
});
