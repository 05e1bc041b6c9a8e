//! The plugin's output, pinned: tagging the real Fluent Bit buffers in `../shared/fixtures` gives
//! exactly the bytes it gave before the record path was optimised (CRC32 and length of each
//! output; the bytes themselves are not kept here, they hold loghub lines). A change to detection
//! (a template text, a score) changes these bytes too: re-pin them in that commit, and only there,
//! so that a record-path change never moves them.

use turbolog::pipeline::config::Settings;
use turbolog::codec::fields::FieldPolicy;
use turbolog::codec::fluent_bit::Tagger;
use turbolog::Engine;

fn fixture(name: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/fluent-bit").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The outputs of two passes over a fixture with a fresh engine (new templates, then known ones),
/// with their anomaly counts.
fn outputs(name: &str, settings: &Settings) -> Vec<(Vec<u8>, u64, u64)> {
    let data = fixture(name);
    let mut engine = Engine::new(settings.engine_config());
    let mut tagger = Tagger::default();
    let mut out = Vec::new();
    (0..2)
        .map(|_| {
            let stats = tagger.tag_chunk(&data, &mut engine, &settings.event_options(), &mut out).unwrap();
            (out.clone(), stats.tagged, stats.anomalies)
        })
        .collect()
}

fn occurrences(hay: &[u8], needle: &[u8]) -> u64 {
    hay.windows(needle.len()).filter(|w| *w == needle).count() as u64
}

fn with_policy(policy: &str) -> Settings {
    Settings::from_pairs([("fields", policy)]).unwrap()
}

/// `fields all` is the output of every earlier version, byte for byte.
#[test]
fn fields_all_is_byte_identical_to_the_reference() {
    let reference: &[(&str, [(u32, usize); 2])] = &[
        ("tail_openssh.msgpack", [(2904969887, 549361), (2749966983, 546751)]),
        ("dummy_meta.msgpack", [(1698856890, 585), (1698856890, 585)]),
    ];
    for (name, want) in reference {
        let got: Vec<(u32, usize)> = outputs(name, &with_policy("all")).iter().map(|(o, ..)| (crc32fast::hash(o), o.len())).collect();
        assert_eq!(got, want.to_vec(), "{name}");
    }
}

/// The default: the template and the reason ride only on anomalies.
#[test]
fn lean_and_minimal_policies_carry_what_they_promise() {
    assert_eq!(Settings::default().field_policy, FieldPolicy::Lean);
    let key = |k: &str| {
        let mut v = Vec::new();
        rmp::encode::write_str(&mut v, k).unwrap();
        v
    };
    for name in ["tail_openssh.msgpack", "dummy_meta.msgpack"] {
        let all = outputs(name, &with_policy("all"));
        for (policy, per_normal) in [("lean", 3u64), ("minimal", 1)] {
            let got = outputs(name, &with_policy(policy));
            for ((out, tagged, anomalies), (all_out, ..)) in got.iter().zip(&all) {
                let normal = tagged - anomalies;
                assert_eq!(occurrences(out, &key("anomaly")), *tagged, "{name} {policy}");
                let score_keys = occurrences(out, &key("anomaly_score"));
                assert_eq!(score_keys, anomalies + if per_normal >= 3 { normal } else { 0 }, "{name} {policy}");
                assert_eq!(occurrences(out, &key("template")), *anomalies, "{name} {policy}: template only on anomalies");
                assert_eq!(occurrences(out, &key("anomaly_reason")), *anomalies, "{name} {policy}");
                assert!(out.len() < all_out.len() || normal == 0, "{name} {policy}: smaller than fields all");
            }
        }
    }
}
