#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| clearwatch_fuzz::csv(data));
