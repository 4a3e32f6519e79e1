//! Proxy auto-config: running a PAC script's `FindProxyForURL` and reading its answer.
//!
//! A PAC file is JavaScript, so a real engine (QuickJS, through rquickjs) runs it, with
//! the standard helpers written in Rust ([`helpers`]). Everything the script could learn
//! from the machine comes from a [`PacEnv`] instead: the clock (the simulated wall
//! clock, in UTC), the address of the host, and name resolution. So the same script on
//! the same environment gives the same answer, in the simulator and in tests.
//!
//! A hostile or broken script cannot hang or crash the caller: evaluation runs under an
//! instruction budget, a memory limit and a stack limit, and every failure is a
//! [`PacError`] with a message fit for a log line.

mod engine;
pub mod helpers;
mod result;

use std::collections::BTreeMap;
use std::net::IpAddr;

pub use engine::{MAX_SCRIPT, MEMORY_LIMIT, STACK_LIMIT, STEP_BUDGET};
pub use result::{ProxyChoice, parse_choices};

/// What a PAC script may know of the machine it runs on.
#[derive(Debug, Clone)]
pub struct PacEnv {
    /// What `myIpAddress()` answers.
    pub my_ip: IpAddr,
    /// The wall clock, in milliseconds since 1970 (UTC), for `Date` and the time helpers.
    pub now_unix_ms: i64,
    /// What `dnsResolve`, `isResolvable` and `isInNet` may resolve (lower-case names).
    /// Names not here do not resolve.
    pub names: BTreeMap<String, IpAddr>,
}

impl PacEnv {
    /// The address `name` resolves to, if it does (IP literals resolve to themselves).
    pub fn resolve(&self, name: &str) -> Option<IpAddr> {
        if let Ok(ip) = name.trim_matches(['[', ']']).parse() {
            return Some(ip);
        }
        self.names
            .get(name.trim_end_matches('.').to_ascii_lowercase().as_str())
            .copied()
    }
}

/// Why a PAC script gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PacError {
    /// The script does not parse or throws while loading.
    #[error("PAC script does not load: {0}")]
    Load(String),
    /// The script defines no `FindProxyForURL` function.
    #[error("PAC script defines no function FindProxyForURL")]
    NoFunction,
    /// `FindProxyForURL` threw.
    #[error("FindProxyForURL threw: {0}")]
    Threw(String),
    /// `FindProxyForURL` returned something other than a string.
    #[error("FindProxyForURL returned {0}, not a string")]
    NotAString(String),
    /// The script ran past its instruction budget (an endless loop, say).
    #[error("PAC script ran past its budget of {0} steps and was stopped")]
    Budget(u32),
    /// The script ran out of memory or stack.
    #[error("PAC script ran out of memory or stack ({0})")]
    Exhausted(String),
    /// The returned string is not a list of proxies.
    #[error("FindProxyForURL returned {returned:?}: {why}")]
    BadAnswer {
        /// What the script returned.
        returned: String,
        /// What is wrong with it.
        why: String,
    },
    /// The JavaScript engine could not start.
    #[error("JavaScript engine failed: {0}")]
    Engine(String),
}

/// What `FindProxyForURL(url, host)` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacAnswer {
    /// The string the script returned, as it returned it.
    pub returned: String,
    /// That string read as proxies to try in order.
    pub choices: Vec<ProxyChoice>,
    /// What the script passed to `alert()`, in order (at most [`MAX_ALERTS`]).
    pub alerts: Vec<String>,
}

/// How many `alert()` messages are kept.
pub const MAX_ALERTS: usize = 8;

/// Runs `script`'s `FindProxyForURL(url, host)` in `env`.
pub fn find_proxy(
    script: &str,
    url: &str,
    host: &str,
    env: &PacEnv,
) -> Result<PacAnswer, PacError> {
    let (returned, alerts) = engine::run(script, url, host, env)?;
    let choices = parse_choices(&returned).map_err(|why| PacError::BadAnswer {
        returned: returned.clone(),
        why,
    })?;
    Ok(PacAnswer {
        returned,
        choices,
        alerts,
    })
}

#[cfg(test)]
mod tests;
