//! Command-line interface: argument parsing and dispatch, one file per command.
//! May use `args`, `serve` (the `serve` command) and the library.

mod ack;
mod diff;
mod explain;
mod filter;
mod history;
mod input;
mod inspect;
mod learn;
mod reference;
mod report;
mod scan;
mod sniff;
mod watch;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

pub use crate::args::{embedder, explaining, sessions, CmdError, EngineArgs};

/// Ultralight log anomaly detection: every line scored, anomalies tagged with a reason.
#[derive(Parser)]
#[command(name = "turbolog", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Score log lines and report anomalies. Exit 0 = none, 1 = anomalies, 2 = error.
    Scan(scan::ScanArgs),
    /// Streaming transform for pipes, Vector and sidecars: NDJSON or text in, tagged NDJSON out.
    Filter(filter::FilterArgs),
    /// Tag records arriving over TCP (NDJSON), HTTP or Fluent Forward and send them on: the
    /// Vector external transform and the Kubernetes sidecar. Serves /healthz, /readyz, /metrics.
    Serve(crate::serve::ServeArgs),
    /// Record what normal looks like: learn good logs into a state directory.
    Learn(learn::LearnArgs),
    /// Show what a state directory holds: shards, chunks, checksums, templates.
    Inspect(inspect::InspectArgs),
    /// Follow files like `tail -F` and print anomalies as they come (Ctrl-C stops, sealing).
    Watch(watch::WatchArgs),
    /// The anomalies recorded in a state directory, window by window.
    History(history::HistoryArgs),
    /// Learn good logs and report what is new or changed in others: `diff GOOD… -- BAD…`.
    Diff(diff::DiffArgs),
    /// Say that templates are normal: recurring trouble is flagged until acknowledged.
    Ack(ack::AckArgs),
    /// Explain stored anomalous templates with a local LLM (and show cached explanations).
    Explain(explain::ExplainCmdArgs),
    /// List the Fluent Bit plugin / C API properties with their defaults.
    PluginProps {
        /// As the Markdown table the book's Fluent Bit chapter shows (docs/src/fluent-bit.md).
        #[arg(long)]
        markdown: bool,
    },
    /// Print a shell completion script: `turbolog completions bash > /etc/bash_completion.d/turbolog`.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the man page turbolog(1), or with --out-dir write one page per command there.
    Man {
        /// Write turbolog.1 and turbolog-COMMAND.1 into this directory instead.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<std::path::PathBuf>,
    },
    /// Print the CLI reference of the book (docs/src/cli.md): every command's --help.
    #[command(hide = true)]
    HelpAll,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human report: totals and the top anomalies grouped by template.
    Text,
    /// Exactly one JSON object per input line, in input order.
    Jsonl,
    /// The report as Markdown, for tickets and pull requests.
    Markdown,
    /// The report as one self-contained HTML page (no network, no external files).
    Html,
}

/// Whether colour may be used on this stream: a terminal, and `NO_COLOR` unset.
pub fn use_colour(fd: i32) -> bool {
    std::env::var_os("NO_COLOR").is_none() && is_terminal(fd)
}

pub fn is_terminal(fd: i32) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(fd) == 1 }
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scan(a) => scan::run(a),
        Command::Filter(a) => filter::run(a),
        Command::Serve(a) => crate::serve::run(a),
        Command::Learn(a) => learn::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Ack(a) => ack::run(a),
        Command::Diff(a) => diff::run(a),
        Command::History(a) => history::run(a),
        Command::Watch(a) => watch::run(a),
        Command::Explain(a) => explain::run(a),
        Command::PluginProps { markdown } => {
            let text = if markdown { turbolog::pipeline::config::describe_markdown() } else { turbolog::pipeline::config::describe() };
            std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes()).map(|_| 0).map_err(CmdError::from)
        }
        Command::Completions { shell } => reference::completions(shell),
        Command::Man { out_dir } => reference::man(out_dir.as_deref()),
        Command::HelpAll => reference::help_all(),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        // the reader of our output went away (`| head`): not an error of ours
        Err(CmdError::BrokenPipe) => ExitCode::SUCCESS,
        Err(CmdError::Message(e)) => {
            eprintln!("turbolog: error: {e}");
            ExitCode::from(2)
        }
    }
}

