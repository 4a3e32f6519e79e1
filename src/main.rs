//! The `steerlab` binary.

fn main() -> std::process::ExitCode {
    steerlab::cli::main()
}
