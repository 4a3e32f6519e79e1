//! The JavaScript side: a fresh QuickJS runtime per evaluation, with limits, the PAC
//! helpers bound to Rust, and a deterministic `Date` and `Math.random`.

use std::cell::{Cell, RefCell};
use std::net::IpAddr;
use std::rc::Rc;

use rquickjs::function::{Opt, Rest};
use rquickjs::prelude::Coerced;
use rquickjs::{CatchResultExt, CaughtError, Context, Ctx, Function, Runtime, Value};

use super::helpers::{self, Civil};
use super::{MAX_ALERTS, PacEnv, PacError};

/// How many times QuickJS may call the interrupt handler (about every 10,000 bytecode
/// operations) before the script is stopped: some 10 million operations, far more than
/// any real PAC file needs and a few tens of milliseconds of CPU.
pub const STEP_BUDGET: u32 = 1_000;
/// Heap limit for one evaluation.
pub const MEMORY_LIMIT: usize = 16 * 1024 * 1024;
/// Native stack limit for one evaluation (deep recursion fails cleanly before it).
pub const STACK_LIMIT: usize = 256 * 1024;
/// The largest script accepted.
pub const MAX_SCRIPT: usize = 1024 * 1024;

/// Pins `Date` to the simulated clock in UTC and makes `Math.random` a fixed sequence.
const PRELUDE: &str = r#"
(function (now) {
  var RealDate = Date;
  var proto = RealDate.prototype;
  ["FullYear", "Month", "Date", "Day", "Hours", "Minutes", "Seconds", "Milliseconds"]
    .forEach(function (n) { proto["get" + n] = proto["getUTC" + n]; });
  proto.getTimezoneOffset = function () { return 0; };
  proto.toString = proto.toUTCString;
  function SimDate(a, b, c, d, e, f, g) {
    if (!(this instanceof SimDate)) { return new RealDate(now).toUTCString(); }
    if (arguments.length === 0) { return new RealDate(now); }
    if (arguments.length === 1) { return new RealDate(a); }
    return new RealDate(RealDate.UTC(a, b, c === undefined ? 1 : c, d || 0, e || 0, f || 0, g || 0));
  }
  SimDate.prototype = proto;
  SimDate.now = function () { return now; };
  SimDate.UTC = RealDate.UTC;
  SimDate.parse = RealDate.parse;
  Date = SimDate;
  var seed = 1;
  Math.random = function () {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
})
"#;

/// Runs the script and returns what `FindProxyForURL` returned, with the alerts.
pub fn run(
    script: &str,
    url: &str,
    host: &str,
    env: &PacEnv,
) -> Result<(String, Vec<String>), PacError> {
    if script.len() > MAX_SCRIPT {
        return Err(PacError::Load(format!(
            "the script is {} bytes; the limit is {MAX_SCRIPT}",
            script.len()
        )));
    }
    let engine = |e: rquickjs::Error| PacError::Engine(e.to_string());
    let runtime = Runtime::new().map_err(engine)?;
    runtime.set_memory_limit(MEMORY_LIMIT);
    runtime.set_max_stack_size(STACK_LIMIT);
    let steps = Rc::new(Cell::new(0u32));
    let counter = steps.clone();
    runtime.set_interrupt_handler(Some(Box::new(move || {
        counter.set(counter.get().saturating_add(1));
        counter.get() > STEP_BUDGET
    })));
    let context = Context::full(&runtime).map_err(engine)?;
    let alerts = Rc::new(RefCell::new(Vec::new()));
    let over_budget = || steps.get() > STEP_BUDGET;
    let result = context.with(|ctx| -> Result<String, PacError> {
        install(&ctx, env, alerts.clone()).map_err(engine)?;
        let prelude: Function = ctx.eval(PRELUDE).map_err(engine)?;
        prelude
            .call::<_, ()>((env.now_unix_ms as f64,))
            .map_err(engine)?;
        ctx.eval::<(), _>(script)
            .catch(&ctx)
            .map_err(|e| classify(e, over_budget(), PacError::Load))?;
        let find: Value = ctx.globals().get("FindProxyForURL").map_err(engine)?;
        let Some(find) = find.into_function() else {
            return Err(PacError::NoFunction);
        };
        let returned: Value = find
            .call((url, host))
            .catch(&ctx)
            .map_err(|e| classify(e, over_budget(), PacError::Threw))?;
        match returned.as_string() {
            Some(s) => s.to_string().map_err(engine),
            None => Err(PacError::NotAString(describe(&returned))),
        }
    });
    drop(context);
    let alerts = alerts.borrow().clone();
    result.map(|r| (r, alerts))
}

/// Sorts a caught JavaScript failure into budget, exhaustion or a script error.
fn classify(e: CaughtError<'_>, over_budget: bool, script: fn(String) -> PacError) -> PacError {
    if over_budget {
        return PacError::Budget(STEP_BUDGET);
    }
    let text = match &e {
        CaughtError::Exception(ex) => {
            let message = ex.message().unwrap_or_default();
            let line = ex
                .stack()
                .and_then(|s| s.lines().next().map(str::trim).map(str::to_string))
                .unwrap_or_default();
            if line.is_empty() {
                message
            } else {
                format!("{message} ({line})")
            }
        }
        CaughtError::Value(v) => describe(v),
        CaughtError::Error(err) => err.to_string(),
    };
    let lower = text.to_ascii_lowercase();
    if lower.contains("out of memory")
        || lower.contains("stack overflow")
        || lower.contains("call stack size exceeded")
    {
        return PacError::Exhausted(text);
    }
    if matches!(e, CaughtError::Error(rquickjs::Error::Exception)) || text.contains("interrupted") {
        return PacError::Budget(STEP_BUDGET);
    }
    script(text)
}

/// A short description of a JavaScript value for error messages.
fn describe(v: &Value<'_>) -> String {
    if v.is_undefined() {
        return "undefined".to_string();
    }
    if v.is_null() {
        return "null".to_string();
    }
    match v.get::<Coerced<String>>() {
        Ok(Coerced(s)) => {
            let mut s: String = s.chars().take(80).collect();
            if s.len() >= 80 {
                s.push('…');
            }
            let kind = match v.type_of() {
                rquickjs::Type::Int | rquickjs::Type::Float => "number",
                other => other.as_str(),
            };
            format!("{kind} {s:?}")
        }
        Err(_) => v.type_name().to_string(),
    }
}

/// Binds the PAC helpers as globals.
fn install<'js>(
    ctx: &Ctx<'js>,
    env: &PacEnv,
    alerts: Rc<RefCell<Vec<String>>>,
) -> rquickjs::Result<()> {
    let g = ctx.globals();
    let now = Civil::from_unix_ms(env.now_unix_ms);
    let env = Rc::new(env.clone());
    let text = |args: Rest<Coerced<String>>| args.0.into_iter().map(|c| c.0).collect::<Vec<_>>();

    g.set(
        "isPlainHostName",
        Function::new(ctx.clone(), |h: Coerced<String>| {
            helpers::is_plain_host_name(&h.0)
        })?,
    )?;
    g.set(
        "dnsDomainIs",
        Function::new(ctx.clone(), |h: Coerced<String>, d: Coerced<String>| {
            helpers::dns_domain_is(&h.0, &d.0)
        })?,
    )?;
    g.set(
        "localHostOrDomainIs",
        Function::new(ctx.clone(), |h: Coerced<String>, d: Coerced<String>| {
            helpers::local_host_or_domain_is(&h.0, &d.0)
        })?,
    )?;
    g.set(
        "dnsDomainLevels",
        Function::new(ctx.clone(), |h: Coerced<String>| {
            u32::try_from(helpers::dns_domain_levels(&h.0)).unwrap_or(u32::MAX)
        })?,
    )?;
    g.set(
        "shExpMatch",
        Function::new(ctx.clone(), |s: Coerced<String>, p: Coerced<String>| {
            helpers::sh_exp_match(&s.0, &p.0)
        })?,
    )?;
    let e = env.clone();
    g.set(
        "isResolvable",
        Function::new(ctx.clone(), move |h: Coerced<String>| {
            e.resolve(&h.0).is_some()
        })?,
    )?;
    let e = env.clone();
    g.set(
        "dnsResolve",
        Function::new(ctx.clone(), move |h: Coerced<String>| {
            e.resolve(&h.0).map(|ip: IpAddr| ip.to_string())
        })?,
    )?;
    let e = env.clone();
    g.set(
        "isInNet",
        Function::new(
            ctx.clone(),
            move |h: Coerced<String>, p: Coerced<String>, m: Coerced<String>| {
                e.resolve(&h.0)
                    .and_then(|ip| helpers::is_in_net(ip, &p.0, &m.0))
                    .unwrap_or(false)
            },
        )?,
    )?;
    let e = env.clone();
    g.set(
        "myIpAddress",
        Function::new(ctx.clone(), move || e.my_ip.to_string())?,
    )?;
    g.set(
        "weekdayRange",
        Function::new(ctx.clone(), move |a: Rest<Coerced<String>>| {
            helpers::weekday_range(now, &text(a)).unwrap_or(false)
        })?,
    )?;
    g.set(
        "dateRange",
        Function::new(ctx.clone(), move |a: Rest<Coerced<String>>| {
            helpers::date_range(now, &text(a)).unwrap_or(false)
        })?,
    )?;
    g.set(
        "timeRange",
        Function::new(ctx.clone(), move |a: Rest<Coerced<String>>| {
            helpers::time_range(now, &text(a)).unwrap_or(false)
        })?,
    )?;
    g.set(
        "alert",
        Function::new(ctx.clone(), move |m: Opt<Coerced<String>>| {
            let mut alerts = alerts.borrow_mut();
            if alerts.len() < MAX_ALERTS {
                let m = m.0.map(|c| c.0).unwrap_or_default();
                alerts.push(m.chars().take(200).collect());
            }
        })?,
    )?;
    Ok(())
}
