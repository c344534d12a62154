//! Configuration loading (`--config FILE`): any text, an error naming keys or settings,
//! never a panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match roadwatch::config::load_toml(text, std::iter::empty()) {
        Ok(_) => {}
        Err(errors) => {
            // Start-up prints these: each names a key.
            assert!(!errors.0.is_empty());
            let _ = errors.to_string();
        }
    }
});
