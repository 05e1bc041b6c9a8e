//! Fluent Bit records as a host hands them to the plugin, for the tests that drive the record
//! path directly: `[[time, {}], {"log": message, extra…}]`.
#![allow(dead_code)] // each test file uses its part

pub mod pki;
pub mod serve;

/// Appends one record; `extra` values are strings or unsigned numbers.
pub fn record(b: &mut Vec<u8>, ts: u64, msg: &str, extra: &[(&str, serde_json::Value)]) {
    rmp::encode::write_array_len(b, 2).unwrap();
    rmp::encode::write_array_len(b, 2).unwrap();
    rmp::encode::write_uint(b, ts).unwrap();
    rmp::encode::write_map_len(b, 0).unwrap();
    rmp::encode::write_map_len(b, 1 + extra.len() as u32).unwrap();
    rmp::encode::write_str(b, "log").unwrap();
    rmp::encode::write_str(b, msg).unwrap();
    for (k, v) in extra {
        rmp::encode::write_str(b, k).unwrap();
        match v {
            serde_json::Value::String(s) => rmp::encode::write_str(b, s).unwrap(),
            serde_json::Value::Number(n) => {
                rmp::encode::write_uint(b, n.as_u64().expect("an unsigned number")).unwrap();
            }
            other => panic!("record(): unsupported value {other}"),
        }
    }
}

/// A chunk with one record per line, all at `ts`.
pub fn chunk(lines: &[String], ts: u64) -> Vec<u8> {
    let mut b = Vec::new();
    for l in lines {
        record(&mut b, ts, l, &[]);
    }
    b
}
