#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcpist::fuzzing::guards(data));
