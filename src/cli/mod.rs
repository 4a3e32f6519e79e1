//! The `steerlab` command line (contract: docs/scenario-format.md, "Command-line
//! contract").
//!
//! Exit codes: 0 every expectation held; 1 an expectation failed; 2 bad input.

mod agent;
mod completions;
mod diagnose;
mod log;
mod replay;
mod run;
mod schema;
mod serve;
mod shell;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// steerlab: deterministic simulation of endpoint traffic steering and PoP selection.
#[derive(Debug, Parser)]
#[command(name = "steerlab", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Debug, Subcommand)]
enum Commands {
    /// Run scenarios (files or folders; default: every scenario under ./scenarios).
    Run(run::RunArgs),
    /// Replay a capture (pcap or pcapng) through the agent's steering logic.
    Replay(replay::ReplayArgs),
    /// Read customer nsdebuglog files, and compare them with a scenario.
    Log {
        #[command(subcommand)]
        command: log::LogCommand,
    },
    /// Turn a customer's log, bundle or capture into a scenario that tells the same story.
    Diagnose(diagnose::DiagnoseArgs),
    /// Step a scenario interactively (or from a script on stdin) and save what was done.
    Shell(shell::ShellArgs),
    /// Serve a scenario's servers on loopback (127.0.0.0/8) for real tools and the agent.
    Serve(serve::ServeArgs),
    /// Run the real agent against `steerlab serve` (its serve.json), printing its log.
    Agent(agent::AgentArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(completions::CompletionsArgs),
    /// Print the man page (roff), or write one page per command with --dir.
    Man(completions::ManArgs),
    /// Print the JSON Schema of the scenario file (the one in scenario.schema.json).
    Schema,
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Commands::Run(args) => run::run(&args),
        Commands::Replay(args) => replay::replay(&args),
        Commands::Log { command } => log::log(&command),
        Commands::Diagnose(args) => diagnose::diagnose(&args),
        Commands::Shell(args) => shell::shell(&args),
        Commands::Serve(args) => serve::serve(&args),
        Commands::Agent(args) => agent::agent(&args),
        Commands::Completions(args) => completions::completions(&args),
        Commands::Man(args) => completions::man(&args),
        Commands::Schema => schema::schema(),
    }
}
