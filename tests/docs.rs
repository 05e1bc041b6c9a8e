//! The docs cannot drift from the binary. Every `sh` block of README.md and of the book
//! (docs/src/*.md) is run here, line by line, in a fresh directory holding the files the docs
//! name (`app.log`, `good.log`, … made from the loghub samples in ../shared) and links to the
//! repository's `samples/`, `plugin-conf/` and `scripts/`. The book's CLI reference is what
//! `turbolog help-all` prints, and a config block marked `<!-- file: PATH -->` is that committed
//! file (its lines, in order; comments and blank lines may be left out).
//!
//! A line that needs a host or the network is skipped with its reason (SKIP below), loudly; a
//! line the runner does not know fails the test, so a new command in the docs is either run or
//! given a reason.

#[path = "common/pki.rs"]
mod pki;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Command lines that cannot run here, by how they start, and why.
const SKIP: &[(&str, &str)] = &[
    ("cargo test", "the test suite itself"),
    ("scripts/install-plugin.sh", "a release build of the library (minutes); tests/fluent_bit.rs builds and loads the plugin"),
    ("scripts/fetch-model.sh", "downloads the model from PyPI; .ci/run runs it"),
    ("docker ", "needs a container runtime and base images from a registry"),
    ("kubectl ", "needs a Kubernetes cluster"),
    ("vector ", "needs Vector: tests/serve_hosts.rs runs the configs with VECTOR_BIN"),
    ("journalctl ", "needs journald"),
];

/// Helpers a docs line may use beside `turbolog` (all offline).
const HELPERS: &[&str] = &["sleep", "curl", "printf", "cat", "tail", "fluent-bit", "openssl", "head"];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn doc_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("docs/src"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    files.insert(0, repo().join("README.md"));
    files
}

struct Block {
    file: PathBuf,
    line: usize,
    lang: String,
    text: String,
    /// `<!-- file: PATH -->` on the line before the fence.
    copy_of: Option<String>,
    /// `<!-- output of: COMMAND -->` on the line before the fence.
    output_of: Option<String>,
}

fn code_blocks(path: &Path) -> Vec<Block> {
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(lang) = lines[i].trim_start().strip_prefix("```") else {
            i += 1;
            continue;
        };
        let copy_of = i
            .checked_sub(1)
            .and_then(|p| lines[p].trim().strip_prefix("<!-- file: "))
            .and_then(|r| r.strip_suffix(" -->"))
            .map(str::to_string);
        let output_of = i
            .checked_sub(1)
            .and_then(|p| lines[p].trim().strip_prefix("<!-- output of: "))
            .and_then(|r| r.strip_suffix(" -->"))
            .map(str::to_string);
        let start = i + 1;
        let mut end = start;
        while end < lines.len() && !lines[end].trim_start().starts_with("```") {
            end += 1;
        }
        assert!(end < lines.len(), "{}:{}: a code block is not closed", path.display(), i + 1);
        blocks.push(Block { file: path.to_path_buf(), line: i + 1, lang: lang.trim().to_string(), text: lines[start..end].join("\n"), copy_of, output_of });
        i = end + 1;
    }
    blocks
}

#[test]
fn the_cli_reference_is_what_the_binary_prints() {
    let out = Command::new(env!("CARGO_BIN_EXE_turbolog")).arg("help-all").output().unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap();
    let path = repo().join("docs/src/cli.md");
    let committed = std::fs::read_to_string(&path).unwrap();
    if printed != committed {
        let first = printed.lines().zip(committed.lines()).position(|(a, b)| a != b).unwrap_or(printed.lines().count().min(committed.lines().count()));
        panic!(
            "{} differs from `turbolog help-all` from line {}: regenerate it with `cargo run -- help-all > docs/src/cli.md`\n  printed:   {:?}\n  committed: {:?}",
            path.display(),
            first + 1,
            printed.lines().nth(first),
            committed.lines().nth(first)
        );
    }
}

#[test]
fn config_blocks_are_the_committed_files() {
    let mut checked = 0;
    for doc in doc_files() {
        for block in code_blocks(&doc) {
            let Some(rel) = &block.copy_of else { continue };
            let file = std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{}:{}: {rel}: {e}", block.file.display(), block.line));
            let mut file_lines = file.lines().map(str::trim_end);
            for line in block.text.lines().map(str::trim_end).filter(|l| !l.trim().is_empty()) {
                assert!(
                    file_lines.any(|f| f == line),
                    "{}:{}: the block says it is {rel}, but its line {line:?} is not there (in this order): copy the file again",
                    block.file.display(),
                    block.line
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} config blocks are tied to their files");
}

#[test]
fn captured_outputs_are_what_the_commands_print_now() {
    let mut checked = 0;
    for doc in doc_files() {
        for block in code_blocks(&doc) {
            let Some(command) = &block.output_of else { continue };
            let ws = workspace();
            let out = ws.command(command).output().unwrap();
            let printed = String::from_utf8_lossy(&out.stdout);
            assert_eq!(
                printed.trim_end(),
                block.text.trim_end(),
                "{}:{}: the capture of `{command}` is stale: paste what it prints now",
                block.file.display(),
                block.line
            );
            checked += 1;
        }
    }
    assert!(checked >= 1, "the README's capture is not tied to its command");
}

#[test]
fn completions_and_man_pages_come_from_the_clap_definitions() {
    let bin = env!("CARGO_BIN_EXE_turbolog");
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = Command::new(bin).args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "completions {shell}: {}", String::from_utf8_lossy(&out.stderr));
        let script = String::from_utf8(out.stdout).unwrap();
        for word in ["serve", "otlp-http", "plugin-props", "only-anomalies"] {
            assert!(script.contains(word), "completions {shell} lack {word}");
        }
    }
    let out = Command::new(bin).arg("man").output().unwrap();
    assert!(out.status.success());
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.starts_with(".ie") || page.contains(".TH turbolog"), "not a man page:\n{}", &page[..page.len().min(300)]);
    assert!(page.contains("serve") && page.contains(".SH SUBCOMMANDS"), "turbolog(1) lists no subcommands");

    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin).args(["man", "--out-dir"]).arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let serve = std::fs::read_to_string(dir.path().join("turbolog-serve.1")).unwrap();
    assert!(serve.contains(".TH turbolog-serve") && serve.contains("otlp\\-http"), "turbolog-serve.1 is not serve's page");
    assert!(!dir.path().join("turbolog-help-all.1").exists(), "the hidden help-all got a man page");

    let out = Command::new(bin).args(["man", "--out-dir", "/proc/no/such/dir"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot create /proc/no/such/dir"));
}

/// A directory holding the files the docs' commands name, and `turbolog` on PATH.
struct Workspace {
    dir: tempfile::TempDir,
    path_env: String,
}

/// A CA (`ca.crt`), a certificate for localhost and its key (`tls.crt`, `tls.key`) and a bearer
/// token (the tests' own, `common/pki.rs`), and a Forward shared key, under the names the docs'
/// recipe gives them.
fn write_pki(dir: &Path) {
    let pki = pki::Pki::new();
    for (from, to) in [("ca.pem", "ca.crt"), ("server.pem", "tls.crt"), ("server.key", "tls.key"), ("token", "token")] {
        std::fs::copy(pki.path(from), dir.join(to)).unwrap();
    }
    std::fs::write(dir.join("shared_key"), "a-long-shared-key").unwrap();
}

fn workspace() -> Workspace {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path();
    let openssh = std::fs::read_to_string(repo().join("../shared/datasets/loghub/OpenSSH/OpenSSH_2k.log")).unwrap();
    let lines: Vec<&str> = openssh.lines().collect();
    let join = |ls: &[&str]| ls.iter().map(|l| format!("{l}\n")).collect::<String>();
    std::fs::write(ws.join("app.log"), join(&lines)).unwrap();
    std::fs::write(ws.join("good.log"), join(&lines[..1000])).unwrap();
    std::fs::write(ws.join("today.log"), join(&lines[1000..])).unwrap();
    std::fs::write(ws.join("bad.log"), join(&lines[1000..])).unwrap();
    std::fs::copy(repo().join("../shared/datasets/loghub/HDFS/HDFS_2k.log"), ws.join("hdfs.log")).unwrap();
    let ndjson: String = lines.iter().map(|l| serde_json::json!({ "log": l }).to_string() + "\n").collect();
    std::fs::write(ws.join("app.ndjson"), ndjson).unwrap();
    if repo().join(".cache/model").is_dir() {
        std::fs::create_dir(ws.join(".cache")).unwrap();
        std::os::unix::fs::symlink(repo().join(".cache/model"), ws.join(".cache/model")).unwrap();
    }
    for name in ["samples", "plugin-conf", "scripts"] {
        std::os::unix::fs::symlink(repo().join(name), ws.join(name)).unwrap();
    }
    // what the serve chapters name under /etc/turbolog (a CA, turbolog's certificate, tokens),
    // and the token a downstream Collector would have given
    let etc = ws.join("etc-turbolog");
    std::fs::create_dir(&etc).unwrap();
    write_pki(&etc);
    std::fs::write(ws.join("collector-token"), "the-collector-token\n").unwrap();
    let bin_dir = ws.join(".bin");
    std::fs::create_dir(&bin_dir).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_turbolog"), bin_dir.join("turbolog")).unwrap();
    if let Some(fluent_bit) = std::env::var_os("FLUENT_BIT_BIN") {
        std::os::unix::fs::symlink(fluent_bit, bin_dir.join("fluent-bit")).unwrap();
        // the plugin where the docs say scripts/install-plugin.sh puts it
        let lib = Path::new(env!("CARGO_BIN_EXE_turbolog")).with_file_name("libturbolog.so");
        assert!(Command::new(env!("CARGO")).args(["build", "--lib"]).status().unwrap().success());
        std::fs::create_dir_all(ws.join("target/release")).unwrap();
        std::fs::copy(lib, ws.join("target/release/flb-filter_turbolog.so")).unwrap();
    }
    let path_env = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    Workspace { dir, path_env }
}

impl Workspace {
    fn command(&self, line: &str) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(line)
            .current_dir(self.dir.path())
            .env("PATH", &self.path_env)
            // no LLM server is found (a refused port), so `--explain` lines cost a warning, not minutes
            .env("TURBOLOG_LLM_URL", "http://127.0.0.1:9")
            .env_remove("TURBOLOG_STATE")
            .env_remove("TURBOLOG_MODEL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // its own process group, so a pipeline is stopped whole
            .process_group(0);
        cmd
    }
}

/// The docs' lines, as they would be typed: continuations joined, comments dropped, the paths a
/// reader would have replaced by the workspace's.
fn command_lines(text: &str, ws: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for raw in text.lines() {
        let line = raw.trim();
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        let line = format!("{pending}{line}");
        pending.clear();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.replacen("cargo run --release -- ", "turbolog ", 1);
        let line = line.replace("/var/lib/turbolog", &ws.join("var-lib-turbolog").display().to_string());
        out.push(line.replace("/etc/turbolog/", &format!("{}/", ws.join("etc-turbolog").display())));
    }
    out
}

enum Kind {
    Skip(&'static str),
    /// runs to its end
    Once,
    /// runs until stopped: it must still be running (or have exited 0) after a while
    UntilStopped,
    /// `… &`: started, stopped at the end of the block
    Background,
}

fn kind(line: &str) -> Result<Kind, String> {
    if let Some((_, why)) = SKIP.iter().find(|(prefix, _)| line.starts_with(prefix) || line.contains(&format!("| {prefix}"))) {
        return Ok(Kind::Skip(why));
    }
    if line.starts_with("fluent-bit ") && std::env::var_os("FLUENT_BIT_BIN").is_none() {
        return Ok(Kind::Skip("needs Fluent Bit: set FLUENT_BIT_BIN to run it"));
    }
    if line.contains("--model") || line.contains("TURBOLOG_MODEL=") {
        if !repo().join(".cache/model/model.onnx").exists() {
            return Ok(Kind::Skip("needs the sentence model: scripts/fetch-model.sh (.ci/run runs it)"));
        }
    }
    let words: Vec<&str> = line.split(|c: char| c.is_whitespace() || c == '|').filter(|w| !w.is_empty()).collect();
    let first = words.first().copied().unwrap_or("");
    let first = if first.contains('=') { words.get(1).copied().unwrap_or("") } else { first };
    if first != "turbolog" && !HELPERS.contains(&first) {
        return Err(format!("unknown command {first:?}: make it runnable here or add it to SKIP in tests/docs.rs with a reason"));
    }
    if line.ends_with('&') {
        return Ok(Kind::Background);
    }
    let runs_until_stopped = ["turbolog serve", "turbolog watch", "tail -F", "tail -f", "fluent-bit "].iter().any(|p| line.contains(p));
    Ok(if runs_until_stopped { Kind::UntilStopped } else { Kind::Once })
}

fn stop(child: &mut Child) -> (Option<i32>, String, String) {
    let pgid = child.id() as i32;
    // SAFETY: signalling a process group this test started.
    unsafe { libc::kill(-pgid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            // SAFETY: as above.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = child.wait().unwrap();
    let (mut out, mut err) = (String::new(), String::new());
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    (status.code(), out, err)
}

fn wait_with_timeout(mut child: Child, limit: Duration) -> Result<(i32, String, String), String> {
    let deadline = Instant::now() + limit;
    // drain the pipes on threads, so a chatty command never blocks on a full pipe
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = so.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = se.read_to_string(&mut s);
        s
    });
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Ok((status.code().unwrap_or(-1), out.join().unwrap(), err.join().unwrap()));
        }
        if Instant::now() > deadline {
            // SAFETY: signalling a process group this test started.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            return Err(format!("did not finish within {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn address_in_use(stderr: &str) -> bool {
    stderr.contains("in use")
}

/// Runs one block's lines in one fresh workspace; returns (lines run, failures).
fn run_block(block: &Block, skipped: &mut Vec<String>) -> (usize, Vec<String>) {
    let ws = workspace();
    let at = format!("{}:{}", block.file.strip_prefix(repo()).unwrap().display(), block.line);
    let mut background: Vec<(String, Child)> = Vec::new();
    let mut failures = Vec::new();
    let mut ran = 0;
    for line in command_lines(&block.text, ws.dir.path()) {
        let kind = match kind(&line) {
            Ok(k) => k,
            Err(e) => {
                failures.push(format!("{at}: `{line}`: {e}"));
                continue;
            }
        };
        match kind {
            Kind::Skip(why) => skipped.push(format!("{at}: `{line}`: {why}")),
            Kind::Once => {
                ran += 1;
                let mut result = wait_with_timeout(ws.command(&line).spawn().unwrap(), Duration::from_secs(180));
                // curl's 7 (connection refused) while what it talks to is still starting on a busy
                // machine: tried again for a few seconds, as a reader would
                for _ in 0..20 {
                    if !(line.starts_with("curl ") && !background.is_empty() && matches!(result, Ok((7, _, _)))) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(250));
                    result = wait_with_timeout(ws.command(&line).spawn().unwrap(), Duration::from_secs(180));
                }
                match result {
                    Err(e) => failures.push(format!("{at}: `{line}` {e}")),
                    // 1 is scan's and diff's "anomalies found"
                    Ok((code, _, err)) if code != 0 && code != 1 => failures.push(format!("{at}: `{line}` exited {code}:\n{err}")),
                    Ok((_, _, err)) if err.contains("turbolog: error:") => failures.push(format!("{at}: `{line}` said an error:\n{err}")),
                    Ok(_) => {}
                }
            }
            Kind::UntilStopped => {
                ran += 1;
                let mut child = ws.command(&line).spawn().unwrap();
                let wait = if line.contains("fluent-bit ") { Duration::from_secs(5) } else { Duration::from_millis(1500) };
                std::thread::sleep(wait);
                let exited_early = child.try_wait().unwrap();
                let (code, out, err) = stop(&mut child);
                if address_in_use(&err) {
                    skipped.push(format!("{at}: `{line}`: its address is in use on this machine right now"));
                } else if exited_early.is_some_and(|s| !s.success()) {
                    failures.push(format!("{at}: `{line}` stopped by itself with {code:?}:\n{err}"));
                } else if err.contains("turbolog: error:") {
                    failures.push(format!("{at}: `{line}` said an error:\n{err}"));
                } else if line.starts_with("fluent-bit ") && !out.contains("\"anomaly\":true") {
                    failures.push(format!("{at}: `{line}` printed no tagged anomaly:\n{}\n{err}", &out[..out.len().min(2000)]));
                }
            }
            Kind::Background => {
                ran += 1;
                let command = line.trim_end_matches('&').trim().to_string();
                let child = ws.command(&command).spawn().unwrap();
                background.push((command, child));
            }
        }
    }
    for (line, mut child) in background {
        let exited_early = child.try_wait().unwrap();
        let (code, out, err) = stop(&mut child);
        if address_in_use(&err) {
            skipped.push(format!("{at}: `{line}`: its address is in use on this machine right now"));
        } else if exited_early.is_some_and(|s| !s.success()) || err.contains("turbolog: error:") {
            failures.push(format!("{at}: `{line}` (in the background) failed with {code:?}:\n{err}"));
        } else if line.contains("--to stdout") && block.text.contains("curl ") && !out.contains("\"anomaly\":") {
            failures.push(format!("{at}: `{line}` wrote no tagged record for what curl sent:\n{out}\n{err}"));
        }
    }
    (ran, failures)
}

#[test]
fn every_turbolog_command_in_the_docs_runs() {
    let mut skipped = Vec::new();
    let mut failures = Vec::new();
    let mut ran = 0;
    let mut readme_ran = 0;
    for doc in doc_files() {
        for block in code_blocks(&doc).iter().filter(|b| b.lang == "sh") {
            let (n, mut f) = run_block(block, &mut skipped);
            ran += n;
            if doc.ends_with("README.md") {
                readme_ran += n;
            }
            failures.append(&mut f);
        }
    }
    for s in &skipped {
        eprintln!("*** SKIPPED docs line {s} ***");
    }
    eprintln!("docs: {ran} command lines run ({readme_ran} of the README), {} skipped, {} failed", skipped.len(), failures.len());
    assert!(failures.is_empty(), "{} docs command lines failed:\n\n{}", failures.len(), failures.join("\n\n"));
    assert!(readme_ran >= 10, "only {readme_ran} README lines ran");
}

#[test]
fn ci_ends_by_running_the_readme_test_command() {
    let readme = repo().join("README.md");
    let first = code_blocks(&readme).into_iter().find(|b| b.lang == "sh").expect("README has a sh block");
    let test_command = first.text.lines().map(str::trim).find(|l| l.starts_with("cargo test")).expect("the README's first sh block names the test command");
    let ci = std::fs::read_to_string(repo().join(".ci/run")).unwrap();
    let last = ci.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).last().unwrap();
    assert_eq!(last, test_command, ".ci/run must end by running exactly the README's test command");
    assert!(ci.contains("mdbook build docs") && ci.contains("scripts/check-doc-links.py"), ".ci/run builds the book and checks its links");
}
