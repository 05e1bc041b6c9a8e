//! The HTML report in a real headless Chromium (Debian's package; `.ci/run` installs it): the
//! page renders with no network, and its DOM holds the expected sections and counts. A
//! screenshot is left in `target/test-artifacts/report.png`. Without Chromium: loudly skipped.

use std::path::PathBuf;
use std::process::Command;

fn chromium() -> Option<PathBuf> {
    let p = std::env::var_os("CHROMIUM_BIN").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if p.exists() {
        return Some(p);
    }
    use std::io::Write;
    let _ = std::io::stderr().write_all(b"\n*** SKIPPED: no Chromium (apt-get install chromium, or set CHROMIUM_BIN): the HTML report was not rendered ***\n");
    None
}

fn headless(bin: &PathBuf, profile: &std::path::Path) -> Command {
    let mut c = Command::new(bin);
    c.args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        .arg(format!("--user-data-dir={}", profile.display()));
    c
}

#[test]
fn the_html_report_renders_in_a_real_browser_with_its_sections_and_counts() {
    let Some(browser) = chromium() else { return };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let log = root.join("../shared/datasets/loghub/Hadoop/Hadoop_2k.log");
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let out = Command::new(env!("CARGO_BIN_EXE_turbolog")).args(["scan", "--format", "html", "--top", "5"]).arg(&log).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    std::fs::write(&page, &out.stdout).unwrap();
    let html = String::from_utf8_lossy(&out.stdout);
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("src="), "self-contained: nothing to fetch");

    // the counts the page must show, from the JSONL contract of the same scan
    let jsonl = Command::new(env!("CARGO_BIN_EXE_turbolog")).args(["scan", "--format", "jsonl", "--multiline", "auto"]).arg(&log).output().unwrap();
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&jsonl.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let anomalies = rows.iter().filter(|r| r["anomaly"] == true).count();
    let groups = rows.iter().filter(|r| r["anomaly"] == true).map(|r| r["template_id"].as_u64().unwrap()).collect::<std::collections::HashSet<_>>().len();

    let dom = headless(&browser, &dir.path().join("profile")).arg("--dump-dom").arg(format!("file://{}", page.display())).output().unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    for section in ["id=\"totals\"", "id=\"timeline\"", "id=\"templates\""] {
        assert!(dom.contains(section), "rendered DOM lacks {section}");
    }
    assert!(dom.contains(&format!("data-anomalies=\"{anomalies}\"")), "anomaly count {anomalies}");
    assert!(dom.contains(&format!("data-groups=\"{groups}\"")), "template count {groups}");
    assert_eq!(dom.matches("<article class=\"template\"").count(), groups.min(5));
    assert_eq!(dom.matches("<svg").count(), groups.min(5), "one timeline per shown template");

    let artefacts = root.join("target/test-artifacts");
    std::fs::create_dir_all(&artefacts).unwrap();
    let shot = artefacts.join("report.png");
    let _ = std::fs::remove_file(&shot);
    let ok = headless(&browser, &dir.path().join("profile2"))
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1200,1600")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(shot.exists() && std::fs::metadata(&shot).unwrap().len() > 10_000, "{ok:?}");
}
