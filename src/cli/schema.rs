//! `steerlab schema`: prints the scenario file's JSON Schema (`scenario.schema.json` at
//! the repository root is this output, checked by tests/schema.rs).

use std::io::Write;
use std::process::ExitCode;

use crate::scenario;

pub fn schema() -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out
        .write_all(scenario::schema_json().as_bytes())
        .and_then(|()| out.flush())
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: writing the schema: {e}");
            ExitCode::from(2)
        }
    }
}
