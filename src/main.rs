//! `turbolog`: the command-line front of the engine. Thin: parsing and dispatch only.

mod args;
mod cli;
mod serve;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::run()
}
