//! `steerlab completions SHELL` and `steerlab man`: shell completion scripts and manual
//! pages generated from the clap definition, so they never drift from the real options.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::Cli;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_name = "SHELL")]
    shell: Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write one page per command (`steerlab.1`, `steerlab-run.1`...) into this folder
    /// instead of printing the top-level page.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Prints the completion script for `args.shell` on stdout.
pub fn completions(args: &CompletionsArgs) -> ExitCode {
    let mut cmd = Cli::command();
    // Into memory first: clap_complete panics when its writer fails (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "steerlab", &mut script);
    finish(print(&script), "writing the completion script")
}

/// Prints the top-level man page (roff), or writes every page into `args.dir`.
pub fn man(args: &ManArgs) -> ExitCode {
    let cmd = Cli::command();
    match &args.dir {
        Some(dir) => finish(
            std::fs::create_dir_all(dir).and_then(|()| clap_mangen::generate_to(cmd, dir)),
            &format!("writing man pages into {}", dir.display()),
        ),
        None => {
            let mut page = Vec::new();
            let rendered = clap_mangen::Man::new(cmd)
                .render(&mut page)
                .and_then(|()| print(&page));
            finish(rendered, "writing the man page")
        }
    }
}

fn print(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes).and_then(|()| out.flush())
}

/// Exit 0, or report the error and exit 2; a reader that stopped early (`| head`) is not
/// an error.
fn finish(result: std::io::Result<()>, doing: &str) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {doing}: {e}");
            ExitCode::from(2)
        }
    }
}
