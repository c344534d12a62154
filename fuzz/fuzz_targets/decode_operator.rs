//! The operator record decoder (CONTRACT section 2): any bytes, never a panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    roadwatch_fuzz::decode(roadwatch::core::model::Stream::Operator, data);
});
