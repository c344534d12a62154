//! `roadwatch replay` on any input: the line parser (`{"stream":…,"value":…}`), every
//! decoder behind it, and the engine applying whatever decodes, on the Bijie network.
#![no_main]
use roadwatch::core::engine::Engine;
use roadwatch::io::pipeline::Pipeline;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let settings = roadwatch_fuzz::settings();
    let engine = Engine::new(settings.engine.clone(), roadwatch_fuzz::bijie());
    let mut pipeline = Pipeline::new(&settings, engine, None);
    let summary = roadwatch::io::replay::replay(&mut pipeline, data, std::io::sink(), |_| {})
        .expect("writing to a sink does not fail");
    let _ = summary.render();
});
