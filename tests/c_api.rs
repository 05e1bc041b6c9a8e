//! Builds `integration/c_api_test.c` with the system compiler (`cc -Wall -Wextra -Werror`) and
//! runs it against the cdylib: dlopen, four threads, real fixtures and loghub lines, then
//! four threads of mutated real buffers on the same handle.

use std::path::PathBuf;
use std::process::Command;

fn target_dir() -> PathBuf {
    // target/<profile>/deps/c_api-… → target/<profile>
    std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().to_path_buf()
}

#[test]
fn c_program_drives_the_library_from_four_threads() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let lib = target_dir().join("libturbolog.so");
    // always: `cargo test` may leave the cdylib older than the rlib it tested (a no-op when fresh)
    let release = target_dir().ends_with("release");
    let mut build = Command::new(env!("CARGO"));
    build.args(["build", "--lib"]).current_dir(&root);
    if release {
        build.arg("--release");
    }
    assert!(build.status().unwrap().success());
    assert!(lib.exists(), "{} missing", lib.display());
    let tmp = tempfile::tempdir().unwrap();
    let exe = tmp.path().join("c_api_test");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .args(["-Wall", "-Wextra", "-Werror", "-O1", "-pthread", "-o"])
        .arg(&exe)
        .arg(root.join("integration/c_api_test.c"))
        .arg("-ldl")
        .output()
        .expect("a C compiler (cc) is needed for this test");
    assert!(out.status.success(), "cc failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let shared = root.join("../shared");
    let out = Command::new(&exe)
        .arg(&lib)
        .arg(tmp.path().join("state"))
        .arg(shared.join("fixtures/fluent-bit"))
        .arg(shared.join("datasets/loghub/Apache/Apache_2k.log"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains(", 0 failed"), "{stdout}");
    // 12,000 mutated buffers: none may reach a caught panic (the guard would log it)
    assert!(!stderr.contains("internal error"), "{stderr}");
    // and the host's log is not flooded: one line for all the invalid buffers
    assert_eq!(stderr.matches("is not valid msgpack").count(), 1, "{stderr}");
}
