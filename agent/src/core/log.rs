//! Log lines as the core emits them: a level, a component, a message.
//!
//! The shell forwards them to `tracing`; a formatter renders them in the nsdebuglog shape
//! (`DATE TIME stAgentSvc pP tT LEVEL component message`).

use std::fmt;

/// nsdebuglog levels: 1 critical .. 5 debug.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Level 1.
    Critical = 1,
    /// Level 2.
    Error = 2,
    /// Level 3.
    Warning = 3,
    /// Level 4.
    Info = 4,
    /// Level 5.
    Debug = 5,
}

impl Level {
    /// The number nsdebuglog prints for this level.
    pub fn number(self) -> u8 {
        self as u8
    }

    /// The level for an nsdebuglog number, if it is one.
    pub fn from_number(n: u8) -> Option<Level> {
        Some(match n {
            1 => Level::Critical,
            2 => Level::Error,
            3 => Level::Warning,
            4 => Level::Info,
            5 => Level::Debug,
            _ => return None,
        })
    }
}

/// One line of the agent's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// How severe.
    pub level: Level,
    /// The client's component name, e.g. `dnsResolver`, `nsTunnel`.
    pub component: &'static str,
    /// The message text.
    pub text: String,
}

impl fmt::Display for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.level.number(),
            self.component,
            self.text
        )
    }
}
