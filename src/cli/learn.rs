//! `turbolog learn`: record what normal looks like.

use std::path::PathBuf;

use clap::Args;

use super::input::Lines;
use super::CliError;
use super::EngineArgs;

#[derive(Args)]
pub struct LearnArgs {
    /// Known-good log files; none or `-` reads standard input.
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// For JSON input lines: the key holding the message (repeatable; default: log, message, msg, MESSAGE, @message).
    #[arg(long = "message-key", value_name = "KEY")]
    pub message_keys: Vec<String>,
}

pub fn run(args: LearnArgs) -> Result<u8, CliError> {
    let Some(dir) = args.engine.state.clone() else {
        return Err("learn needs --state DIR: the directory where what is learned is kept".into());
    };
    if args.engine.frozen {
        return Err("learn and --frozen contradict each other: learn always saves".into());
    }
    let mut session = args.engine.session()?;
    let mut lines = Lines::new(&args.files);
    let before = session.engine.template_count();
    let mut n = 0u64;
    while let Some(line) = lines.next_line()? {
        turbolog::host::ndjson::with_message(line, &args.message_keys, |m, level| session.engine.learn_line_with(m, level));
        session.after_record();
        n += 1;
    }
    session.seal()?;
    session.report_limit();
    let engine = &session.engine;
    eprintln!(
        "learned {n} lines: {} templates ({} new) saved in {}",
        engine.template_count(),
        engine.template_count() - before,
        dir.display()
    );
    Ok(0)
}
