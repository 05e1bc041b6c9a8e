#![no_main]
// chunks are opened through a real memory map, from a file on tmpfs
libfuzzer_sys::fuzz_target!(|data: &[u8]| turbolog::fuzz_harness::chunk_file(data, std::path::Path::new("/dev/shm")));
