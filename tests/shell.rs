//! `steerlab shell`: scripted sessions on stdin (the saved scenario reproduces the
//! session's log byte for byte, errors are one line and the session goes on, output is
//! deterministic, bad scenario files exit 2) and one session on a pseudo-terminal (line
//! editor, completion, history), skipped when no pty can be had.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

mod common;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// A proof of concept that fails: the host firewall inspects HTTPS and blocks UDP 443.
const POC: &str = r#"name = "Shell walkthrough: the host firewall inspects HTTPS"
seed = 5
duration = "60s"   # the customer's window

[client]
location = "us-east"

[steering]
managed = ["*.box.com"]

[[pops]]
name = "nyc1"
location = "us-east"
ip = "8.36.116.35"
latency = "12ms"

[[pops]]
name = "fra1"
location = "eu-west"
ip = "8.36.117.35"
latency = "90ms"

[[origins]]
host = "www.box.com"
ip = "107.152.27.197"

[[origins]]
host = "example.org"
ip = "93.184.216.34"

# The customer's endpoint firewall.
[network]
host_firewall = ["inspect tcp/443", "block udp/443"]

[[events]]
at = "0s"
do = "start"
[[events]]
at = "50s"
do = "stop"

[expect]
tunnel = "down"
"#;

fn temp_dir(test: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("steerlab-shell-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn write(dir: &Path, name: &str, text: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, text)?;
    Ok(path)
}

/// Runs `steerlab shell FILE` with `script` on stdin (a pipe, not a terminal).
fn shell(file: &Path, script: &str) -> Result<Output> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_steerlab"))
        .args(["shell".as_ref(), file.as_os_str()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let written = child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(script.as_bytes());
    // A shell that refuses its scenario exits before reading its script; the pipe
    // it closed is then no failure of the test, its exit code and stderr tell.
    match written {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
        _ => {}
    }
    Ok(child.wait_with_output()?)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_scripted_session_saves_a_scenario_that_reproduces_its_log() -> Result {
    let dir = temp_dir("reproduce")?;
    let poc = write(&dir, "poc.toml", POC)?;
    let saved = dir.join("poc-fixed.toml");
    let script = format!(
        "step 5s\n\
         status\n\
         rule remove host inspect tcp/443\n\
         run until tunnel-up\n\
         connect chrome.exe www.box.com:443\n\
         connect chrome.exe example.org:443\n\
         run until flow example.org\n\
         partition nyc1\n\
         run until tunnel-down\n\
         repair nyc1\n\
         step 5s\n\
         flows\n\
         explain www.box.com\n\
         pops\n\
         save {}\n\
         log all\n",
        saved.display()
    );
    let out = shell(&poc, &script)?;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr, "", "no command failed");
    for want in [
        "host fw      `inspect tcp/443`, `block udp/443`",
        "rule `inspect tcp/443` removed from the host firewall",
        "tunnel up (TLS to nyc1) at +10.062s",
        "flow chrome.exe 93.184.216.34:443 direct (not a managed domain; connected) at +",
        "tunnel down at +40.062s",
        "1. scope      mode cloud-apps: `*.box.com` in steering.managed matches www.box.com",
        "nyc1    us-east   12ms     8.36.116.35     trusted  <- tunnel TLS",
        "1 later event(s)",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in:\n{stdout}");
    }
    let saved_text = std::fs::read_to_string(&saved)?;
    assert!(saved_text.contains("# The customer's endpoint firewall."));
    assert!(saved_text.contains("duration = \"45062ms\"   # the customer's window"));
    assert!(
        !saved_text.contains("do = \"stop\""),
        "later events left out"
    );

    // `steerlab run` of the saved file: passes, and its log is the session's.
    let log = dir.join("saved.log");
    let run = common::steerlab(&[
        "run",
        &saved.display().to_string(),
        "--log",
        &log.display().to_string(),
    ]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stdout));
    let session_log = stdout
        .split_once("run it with: ")
        .and_then(|(_, rest)| rest.split_once('\n'))
        .map(|(_, log)| log)
        .ok_or("no log after save")?;
    assert!(session_log.starts_with("2019/10/14 11:40:40.000 "));
    assert_eq!(session_log, std::fs::read_to_string(&log)?);
    Ok(())
}

#[test]
fn bad_lines_get_one_line_errors_and_the_session_goes_on() -> Result {
    let dir = temp_dir("errors")?;
    let poc = write(&dir, "poc.toml", POC)?;
    let script = "stpe 1s\n\
                  step\n\
                  step 2 s\n\
                  connect chrome.exe nowhere\n\
                  connect chrome.exe www.box.com:443 via-proxy\n\
                  partition nyc9\n\
                  rule remove perimeter block any\n\
                  rule add host deny any\n\
                  explain nothing.example\n\
                  run until sunrise\n\
                  save /nonexistent-folder/x.toml\n\
                  \n\
                  # a comment\n\
                  status\n";
    let out = shell(&poc, script)?;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0));
    let words = [
        "stpe",
        "step",
        "step",
        "connect",
        "connect",
        "partition",
        "rule",
        "rule",
        "explain",
        "run",
        "save",
    ];
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines.len(),
        words.len(),
        "one line per bad command:\n{stderr}"
    );
    for (line, word) in lines.iter().zip(words) {
        assert!(line.starts_with(&format!("error: {word}: ")), "{line}");
        assert!(line.contains("write "), "says what to write: {line}");
    }
    assert!(stderr.contains("did you mean \"nyc1\"?"), "{stderr}");
    assert!(stdout.starts_with("time         +0.000s"), "{stdout}");
    Ok(())
}

#[test]
fn the_same_script_prints_the_same_bytes() -> Result {
    let dir = temp_dir("determinism")?;
    let poc = write(&dir, "poc.toml", POC)?;
    let script = "step 2s\nconnect chrome.exe example.org:443\nstep 1s\nflows\nstatus\nlog 3\n";
    let first = shell(&poc, script)?;
    let second = shell(&poc, script)?;
    assert_eq!(first.status.code(), Some(0));
    assert!(!first.stdout.is_empty());
    assert_eq!(text(&first.stdout), text(&second.stdout));
    Ok(())
}

#[test]
fn quit_ends_the_session_and_eof_exits_0() -> Result {
    let dir = temp_dir("quit")?;
    let poc = write(&dir, "poc.toml", POC)?;
    let out = shell(&poc, "quit\nstatus\n")?;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "");
    let out = shell(&poc, "")?;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "");
    Ok(())
}

#[test]
fn a_bad_scenario_file_exits_2() -> Result {
    let dir = temp_dir("bad")?;
    let missing = dir.join("missing.toml");
    let out = shell(&missing, "status\n")?;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read the scenario file"));

    let typo = write(
        &dir,
        "typo.toml",
        &POC.replace("latency = \"12ms\"", "latncy = \"12ms\""),
    )?;
    let out = shell(&typo, "status\n")?;
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("typo.toml:15:1"), "{stderr}");
    assert!(stderr.contains("did you mean `latency`?"), "{stderr}");
    assert_eq!(text(&out.stdout), "");

    // Loads, but no world can be built: two hosts on one address.
    let clash = POC.replace("ip = \"93.184.216.34\"", "ip = \"8.36.116.35\"");
    let clash = write(&dir, "clash.toml", &clash)?;
    let out = shell(&clash, "status\n")?;
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("address 8.36.116.35 is used by both"),
        "{stderr}"
    );
    Ok(())
}

/// On a pseudo-terminal (util-linux `script`): the prompt, Tab completion and the history
/// file. Skipped, with the reason printed, where no pty can be had.
#[test]
fn on_a_terminal_the_line_editor_completes_and_keeps_history() -> Result {
    let probe = Command::new("script")
        .args(["-qec", "true", "/dev/null"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        println!("skipped: no pseudo-terminal (util-linux `script -qec` is missing or fails)");
        return Ok(());
    }
    let dir = temp_dir("pty")?;
    let poc = write(&dir, "poc.toml", POC)?;
    let history = dir.join("history");
    let command = format!(
        "'{}' shell '{}' --history '{}'",
        env!("CARGO_BIN_EXE_steerlab"),
        poc.display(),
        history.display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("TERM", "xterm")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut screen = String::new();
    let wait_for = |want: &str, screen: &mut String| -> Result {
        // Up to 60 s, a second at a time.
        for _ in 0..60 {
            if screen.contains(want) {
                return Ok(());
            }
            if let Ok(bytes) = rx.recv_timeout(Duration::from_secs(1)) {
                screen.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
        if screen.contains(want) {
            return Ok(());
        }
        Err(format!("no {want:?} on the terminal:\n{screen}").into())
    };
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let result = (|| -> Result {
        wait_for("steerlab +0.000s> ", &mut screen)?;
        // Tab completes `pop` to `pops`.
        stdin.write_all(b"pop\t\r")?;
        wait_for("(world's pick)", &mut screen)?;
        stdin.write_all(b"step 1s\r")?;
        wait_for("steerlab +1.000s> ", &mut screen)?;
        stdin.write_all(b"quit\r")?;
        Ok(())
    })();
    let status = wait_or_kill(&mut child)?;
    result?;
    assert!(status.success(), "{screen}");
    assert!(screen.contains("+0.000s start agent"), "{screen}");
    let history = std::fs::read_to_string(&history)?;
    assert!(history.contains("pops\n"), "{history}");
    assert!(history.contains("step 1s\n"), "{history}");
    Ok(())
}

/// Waits up to 60 s for `child`, then kills it.
fn wait_or_kill(child: &mut std::process::Child) -> Result<std::process::ExitStatus> {
    for _ in 0..600 {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill()?;
    Err("the shell did not exit on `quit`".into())
}

#[test]
fn saving_in_another_folder_keeps_the_exception_files() -> Result {
    let dir = temp_dir("elsewhere")?;
    let out_file = dir.join("exceptions.toml");
    let script = format!("step 6s\nflows\nsave {}\n", out_file.display());
    let out = shell(
        Path::new("scenarios/steering/exception-files-and-pinned-actions.toml"),
        &script,
    )?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let saved = std::fs::read_to_string(&out_file)?;
    assert!(
        saved.contains("scenarios/steering/config/nsexception.json\""),
        "{saved}"
    );
    let run = common::steerlab(&["run", &out_file.display().to_string()]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stdout));
    Ok(())
}
