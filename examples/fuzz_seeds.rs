//! Writes seeds for the fuzzers into the folder given: one valid file of each on-disk kind
//! (seed.wal, seed.tvim, seed.tls) and, from Fluent Bit buffers given after it, one small buffer
//! per record (records-*.msgpack): small inputs fuzz fastest.
//!
//!   cargo run --example fuzz_seeds -- DIR [FLUENT_BIT_BUFFER...]   (run by scripts/fuzz.sh)
use std::path::Path;

use turbolog::codec::msgpack::Reader;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().expect("usage: seeds DIR [FLUENT_BIT_BUFFER...]");
    std::fs::create_dir_all(&dir).expect("create the seed folder");
    turbolog::fuzz_harness::write_seeds(Path::new(&dir)).expect("write seeds");
    let mut n = 0;
    for buffer in args {
        let data = std::fs::read(&buffer).expect("read a Fluent Bit buffer");
        let mut r = Reader::new(&data);
        let mut start = 0;
        let mut kept = 0;
        while !r.at_end() && r.skip().is_ok() && kept < 40 {
            // one record alone, and the record with the one before it
            let end = r.pos;
            std::fs::write(Path::new(&dir).join(format!("records-{n}.msgpack")), &data[start..end]).unwrap();
            n += 1;
            start = end;
            kept += 1;
        }
    }
}
