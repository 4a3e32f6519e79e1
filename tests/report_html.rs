//! `steerlab run --report`: one self-contained HTML page per run (sequence diagram,
//! timeline, flows, log), byte-identical for the same run, a folder of pages when
//! several scenarios run, every text escaped; and, when Chromium is installed, the page
//! as a browser reads it.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::steerlab;

const WEB: &str = "scenarios/steering/web-exceptions-and-private.toml";
const PROXY: &str = "scenarios/firewall/trellix-poc-manual-proxy.toml";
const CHROMIUM: &str = "/usr/bin/chromium";

/// A fresh folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("steerlab-report-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temp folder");
    dir
}

/// Runs one scenario with `--report` and returns the page.
fn report(scenario: &str, out: &Path) -> String {
    let run = steerlab(&["run", scenario, "--report", out.to_str().unwrap()]);
    assert!(
        run.status.code().is_some_and(|c| c <= 1),
        "steerlab run failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    std::fs::read_to_string(out).expect("the report was written")
}

/// The flows and log of the same run, from `--json` and `--log`.
fn flows_and_log(scenario: &str, dir: &Path) -> (Vec<serde_json::Value>, Vec<String>) {
    let log = dir.join("run.log");
    let run = steerlab(&["run", scenario, "--json", "--log", log.to_str().unwrap()]);
    let json: serde_json::Value =
        serde_json::from_slice(&run.stdout).expect("one JSON object on stdout");
    let flows = json["flows"].as_array().cloned().unwrap_or_default();
    let log = std::fs::read_to_string(log).expect("the log was written");
    (flows, log.lines().map(str::to_string).collect())
}

/// How a browser serializes text content: only `&`, `<`, `>` and no-break spaces are
/// escaped.
fn dom_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\u{a0}', "&nbsp;")
}

#[test]
fn the_report_is_self_contained_complete_and_deterministic() {
    let dir = scratch("one");
    let a = report(WEB, &dir.join("a.html"));
    let b = report(WEB, &dir.join("b.html"));
    assert_eq!(a, b, "the same run writes the same bytes");
    assert!(a.starts_with("<!DOCTYPE html>"));
    for external in [
        "<script", "<link", " src=", " href=", "@import", "url(http", "xmlns",
    ] {
        assert!(
            !a.contains(external),
            "the page loads nothing: found {external}"
        );
    }
    assert!(a.contains("<style>") && a.contains("<svg class=\"sequence\""));
    // The diagram comes from the run's traffic: the endpoint, its resolver, the PoP.
    for lifeline in [">endpoint</text>", ">LDNS</text>", ">PoP "] {
        assert!(a.contains(lifeline), "lifeline {lifeline} missing");
    }
    assert!(a.contains("TCP connect :443 (handshake)"));
    assert!(a.contains("DNS A? "));
    let (flows, log) = flows_and_log(WEB, &dir);
    assert!(!flows.is_empty());
    assert_eq!(a.matches("<tr class=\"flow ").count(), flows.len());
    for flow in &flows {
        let reason = flow["reason"].as_str().unwrap_or_default();
        assert!(
            a.contains(&steerlab::report::html::escape(reason)),
            "{reason}"
        );
    }
    for line in &log {
        assert!(a.contains(&steerlab::report::html::escape(line)), "{line}");
    }
}

#[test]
fn the_proxy_scenario_draws_the_proxy_and_its_connects() {
    let dir = scratch("proxy");
    let page = report(PROXY, &dir.join("proxy.html"));
    assert!(page.contains(">proxy</text>"));
    assert!(
        page.contains("CONNECT gateway-acme.goskope.com:443 HTTP/1.1"),
        "the CONNECT request line labels its arrow"
    );
}

#[test]
fn several_scenarios_write_one_page_each_into_a_folder() {
    let dir = scratch("several");
    let out = dir.join("pages");
    let run = steerlab(&["run", WEB, PROXY, "--report", out.to_str().unwrap()]);
    assert!(run.status.code().is_some_and(|c| c <= 1));
    let mut pages: Vec<String> = std::fs::read_dir(&out)
        .expect("the folder was made")
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    pages.sort();
    assert_eq!(
        pages,
        [
            "trellix-poc-manual-proxy.html",
            "web-exceptions-and-private.html"
        ]
    );
    // stderr is not a terminal here: no progress bar, the usual summaries only.
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        !stderr.contains("1/2") && !stderr.contains('\r'),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(stdout.matches("PASS  ").count(), 2, "{stdout}");
}

#[test]
fn scenario_names_with_markup_are_escaped() {
    let dir = scratch("escape");
    let original = std::fs::read_to_string(WEB).unwrap();
    let nasty = "Tom <b>&</b> \"Jerry\" 'x'";
    let renamed: String = original
        .lines()
        .map(|l| {
            if l.starts_with("name = ") {
                format!("name = {}", toml_string(nasty))
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let file = dir.join("nasty.toml");
    std::fs::write(&file, renamed).unwrap();
    let page = report(file.to_str().unwrap(), &dir.join("nasty.html"));
    let escaped = "Tom &lt;b&gt;&amp;&lt;/b&gt; &quot;Jerry&quot; &#39;x&#39;";
    assert!(page.contains(&format!("<title>steerlab: {escaped}</title>")));
    assert!(page.contains(&format!("<h1>{escaped}</h1>")));
    assert!(!page.contains("<b>"));
}

fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[test]
fn chromium_reads_the_svg_the_flow_rows_and_the_log() {
    if !Path::new(CHROMIUM).exists() {
        eprintln!(
            "skipped: {CHROMIUM} is not installed (.ci/run installs it with apt); \
             the page itself is checked by the other tests"
        );
        return;
    }
    let dir = scratch("chromium");
    let page = dir.join("web.html");
    report(WEB, &page);
    let (flows, log) = flows_and_log(WEB, &dir);
    let dom = dump_dom(&page, &dir.join("profile")).expect("chromium dumps the DOM");
    assert!(dom.contains("<svg class=\"sequence\""), "no svg in the DOM");
    assert!(dom.contains("<g class=\"arrow "), "no arrows in the DOM");
    assert_eq!(dom.matches("<tr class=\"flow ").count(), flows.len());
    for flow in &flows {
        let host = flow["host"].as_str().unwrap_or_default();
        assert!(
            dom.contains(&format!("<td>{}</td>", dom_text(host))),
            "{host}"
        );
    }
    assert!(dom.contains("<pre class=\"log\">"));
    for line in &log {
        assert!(dom.contains(&dom_text(line)), "log line missing: {line}");
    }
}

/// `chromium --headless --dump-dom file://PAGE` with a fresh profile, at most a minute.
fn dump_dom(page: &Path, profile: &Path) -> Result<String, String> {
    let page = page.canonicalize().map_err(|e| e.to_string())?;
    let errors = page.with_extension("chromium.err");
    let stderr = std::fs::File::create(&errors).map_err(|e| e.to_string())?;
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("cannot start {CHROMIUM}: {e}"))?;
    // Read while it runs: a full pipe would stall it.
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let mut waited = Duration::ZERO;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if waited > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            return Err("chromium took more than a minute".to_string());
        }
        std::thread::sleep(Duration::from_millis(100));
        waited += Duration::from_millis(100);
    };
    let dom = reader.join().map_err(|_| "reader thread panicked")?;
    if !status.success() || dom.is_empty() {
        let err = std::fs::read_to_string(&errors).unwrap_or_default();
        return Err(format!("chromium exited with {status}: {err}"));
    }
    Ok(dom)
}
