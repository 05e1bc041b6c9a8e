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

/// Text lines of `n` requests of three steps, one second apart, the last one ending now and
/// stuck before its last step (`req-{n-1:05x}`): what a live service wrote up to this moment.
pub fn live_requests(n: usize) -> Vec<String> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let start = now - n as i64 - 2;
    let mut lines: Vec<(usize, String)> = Vec::new();
    for r in 0..n {
        for (k, step) in ["request started", "query ran in 12 ms", "response sent with 200 bytes"].iter().enumerate() {
            if r == n - 1 && k == 2 {
                continue;
            }
            let t = start + (r + k) as i64;
            let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
            let (y, m, d) = civil(days);
            lines.push((r + k, format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z INFO req-{r:05x} {step}", secs / 3600, secs / 60 % 60, secs % 60)));
        }
    }
    lines.sort_by_key(|(t, _)| *t);
    lines.into_iter().map(|(_, l)| l).collect()
}

/// Days since 1970-01-01 → (year, month, day) (Howard Hinnant's civil_from_days).
fn civil(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + (m <= 2) as i64, m, d)
}
