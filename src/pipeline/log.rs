//! Where the pipeline says what happened: the host's logger (Fluent Bit's `flb_log_print`, the
//! CLI's stderr).

/// A logger the host provides.
pub type Log = fn(level: LogLevel, msg: &str);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Error = 1,
    Warn = 2,
    Info = 3,
}

/// Errors and warnings on stderr (an embedded host without a logger of its own).
pub fn log_stderr(level: LogLevel, msg: &str) {
    if level != LogLevel::Info {
        eprintln!("turbolog: {}: {msg}", if level == LogLevel::Error { "error" } else { "warning" });
    }
}

/// Everything on stderr, as the command line says it: `turbolog: warning: …`, `turbolog: …`.
pub fn log_cli(level: LogLevel, msg: &str) {
    match level {
        LogLevel::Error => eprintln!("turbolog: error: {msg}"),
        LogLevel::Warn => eprintln!("turbolog: warning: {msg}"),
        LogLevel::Info => eprintln!("turbolog: {msg}"),
    }
}
