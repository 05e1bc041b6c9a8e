//! `turbolog learn`: record what normal looks like.

use std::path::PathBuf;

use clap::Args;

use super::input::Lines;
use super::CmdError;
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
    /// Sessions in the good logs teach what a normal session contains.
    #[command(flatten)]
    pub sessions: super::sessions::SessionArgs,
}

pub fn run(args: LearnArgs) -> Result<u8, CmdError> {
    let Some(dir) = args.engine.state.clone() else {
        return Err("learn needs --state DIR: the directory where what is learned is kept".into());
    };
    if args.engine.frozen {
        return Err("learn and --frozen contradict each other: learn always saves".into());
    }
    let mut session = args.engine.pipeline()?;
    let mut lines = Lines::new(&args.files);
    let before = session.engine.template_count();
    let mut n = 0u64;
    let mut said_no_message = false;
    let mut sessions = args.sessions.start(Some(&dir), true)?;
    let mut closed = Vec::new();
    while let Some(line) = lines.next_line()? {
        n += 1;
        let object = turbolog::codec::ndjson::parse_object(line).and_then(Result::ok);
        let record = object.as_ref().and_then(|o| turbolog::codec::ndjson::record(o, &args.message_keys));
        if object.is_some() && record.is_none() && !std::mem::replace(&mut said_no_message, true) {
            eprintln!("turbolog: warning: {}", turbolog::codec::ndjson::no_message_warning(n, &args.message_keys));
        }
        let (message, level) = record.as_ref().map_or((line, None), |r| (r.message.as_ref(), r.level));
        let id = session.engine.learn_line_with(message, level);
        if let Some(s) = &mut sessions {
            let key = s.id_of(message, object.as_ref());
            let time = turbolog::codec::ndjson::record_time(line, object.as_ref());
            s.tracker.record(key.as_deref(), id, n, time, &session.engine);
            s.tracker.take_closed(&mut closed);
        }
        session.after_record();
    }
    session.seal_at_end()?;
    if let Some(s) = &mut sessions {
        s.tracker.close_all(&session.engine);
        s.save(&dir)?;
        eprintln!("learned {} sessions into {}", s.tracker.profile().sessions, dir.join(turbolog::store::sessions_file::FILE_NAME).display());
    }
    session.report_end();
    let engine = &session.engine;
    eprintln!(
        "learned {n} lines: {} templates ({} new) saved in {}",
        engine.template_count(),
        engine.template_count() - before,
        dir.display()
    );
    Ok(0)
}
