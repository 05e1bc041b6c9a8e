#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| turbolog::fuzz_harness::line(data));
