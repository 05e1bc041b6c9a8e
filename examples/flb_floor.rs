//! The cost floor of a Fluent Bit filter that changes records: `flb-filter_floor.so` adds one
//! field (`anomaly: false`) to every record and does nothing else — no engine, no state. It
//! walks and copies records the way turbolog's filter does (the same reader and output buffer),
//! so `scripts/bench-fluent-bit.sh` can show how much of turbolog's cost is detection and how
//! much any record-changing filter pays (Fluent Bit re-reads every record a filter hands back).
//!
//! Built by the benchmark: `cargo build --release --example flb_floor`.

use std::ffi::{c_char, c_int, c_void};

use turbolog::host::fluent_bit::{FlbFilterPlugin, FLB_FILTER_MODIFIED, FLB_FILTER_NOTOUCH};
use turbolog::codec::msgpack::{Error, Reader};
use turbolog::host::out_buf::{MallocBuf, OutBuf};

#[no_mangle]
#[allow(non_upper_case_globals)]
pub static mut filter_floor_plugin: FlbFilterPlugin =
    FlbFilterPlugin::logs(b"floor\0", b"adds one field to every record (a benchmark's floor)\0", cb_init, cb_filter, cb_exit);

unsafe extern "C" fn cb_init(_ins: *mut c_void, _config: *mut c_void, _data: *mut c_void) -> c_int {
    0
}

unsafe extern "C" fn cb_exit(_ctx: *mut c_void, _config: *mut c_void) -> c_int {
    0
}

/// `"anomaly": false`
const FIELD: &[u8] = b"\xa7anomaly\xc2";

/// Every `[header, {…}]` record gets the field; anything else is copied as it is.
fn add_field(data: &[u8], out: &mut MallocBuf) -> Result<(), Error> {
    out.clear();
    out.reserve(data.len() + data.len() / 4);
    let mut r = Reader::new(data);
    while !r.at_end() {
        let start = r.pos;
        if r.array_len()? == Some(2) {
            let header = r.pos;
            r.skip()?;
            let body = r.pos;
            if let Some(n) = r.map_len()? {
                let entries = r.pos;
                for _ in 0..n {
                    r.skip()?;
                    r.skip()?;
                }
                out.extend_from_slice(&[0x92]);
                out.extend_from_slice(&data[header..body]);
                let mut len = [0u8; 5];
                let _ = rmp::encode::write_map_len(&mut &mut len[..], n as u32 + 1);
                out.extend_from_slice(&len[..map_len_size(n + 1)]);
                out.extend_from_slice(&data[entries..r.pos]);
                out.extend_from_slice(FIELD);
                continue;
            }
        }
        r.pos = start;
        r.skip()?;
        out.extend_from_slice(&data[start..r.pos]);
    }
    Ok(())
}

/// Bytes of msgpack's map header for `n` entries.
fn map_len_size(n: usize) -> usize {
    match n {
        0..=15 => 1,
        16..=0xffff => 3,
        _ => 5,
    }
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn cb_filter(
    data: *const c_void,
    bytes: usize,
    _tag: *const c_char,
    _tag_len: c_int,
    out_buf: *mut *mut c_void,
    out_bytes: *mut usize,
    _f_ins: *mut c_void,
    _i_ins: *mut c_void,
    _ctx: *mut c_void,
    _config: *mut c_void,
) -> c_int {
    let input = std::slice::from_raw_parts(data as *const u8, bytes);
    let mut out = MallocBuf::default();
    // no panic may reach the host: anything but a whole output passes the records through
    if !matches!(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| add_field(input, &mut out))), Ok(Ok(()))) {
        return FLB_FILTER_NOTOUCH;
    }
    match out.take() {
        Some((p, len)) => {
            *out_buf = p;
            *out_bytes = len;
            FLB_FILTER_MODIFIED
        }
        None => FLB_FILTER_NOTOUCH,
    }
}
