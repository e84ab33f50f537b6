#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcpist::fuzzing::lock_and_config(data));
