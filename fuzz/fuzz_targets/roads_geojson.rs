//! The road-network loader on native GeoJSON (CONTRACT section 4), lenient and strict.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    roadwatch_fuzz::load_roads(data, false);
    roadwatch_fuzz::load_roads(data, true);
});
