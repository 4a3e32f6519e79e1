//! The command-line contract: exit codes, the summary, `--json` fields, `--log`.

use std::path::PathBuf;

mod common;

use common::steerlab;

fn temp(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("steerlab-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const HAPPY: &str = "scenarios/pop-selection/doh-happy-path.toml";

#[test]
fn a_passing_scenario_exits_0_with_a_summary() {
    let out = steerlab(&["run", HAPPY]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("PASS  DoH happy path"), "{stdout}");
    assert!(
        stdout.contains("tunnel TLS to nyc1, resolved by EDNS"),
        "{stdout}"
    );
}

#[test]
fn json_has_the_contract_fields() {
    let out = steerlab(&[
        "run",
        "scenarios/steering/cloud-apps-managed-tunneled.toml",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(
        v["name"],
        "Cloud apps: a managed domain is tunneled, an unmanaged one goes direct"
    );
    assert_eq!(v["resolved_by"], "EDNS");
    assert_eq!(v["gateway"], "nyc1");
    assert_eq!(v["tunnel"], "TLS");
    assert_eq!(v["status"], "passed");
    let flow = &v["flows"][0];
    for key in ["process", "host", "addr", "verdict", "reason"] {
        assert!(flow.get(key).is_some(), "flow lacks {key}: {flow}");
    }
    assert_eq!(flow["verdict"], "tunneled");
    assert_eq!(flow["addr"], "107.152.27.197:443");
}

#[test]
fn a_missed_expectation_exits_1_with_a_diff_and_the_reproduce_line() {
    let text = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(HAPPY))
        .unwrap()
        .replace("gateway = \"nyc1\"", "gateway = \"fra1\"");
    let file = temp("miss.toml", &text);
    let out = steerlab(&["run", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("expect.gateway"), "{stdout}");
    assert!(stdout.contains("- expected: \"fra1\""), "{stdout}");
    assert!(stdout.contains("+ actual:   \"nyc1\""), "{stdout}");
    assert!(stdout.contains("reproduce: cargo run -- run"), "{stdout}");
}

#[test]
fn bad_input_exits_2_naming_file_line_column_and_the_fix() {
    let file = temp(
        "typo.toml",
        "name = \"x\"\n[[pops]]\nname = \"a\"\nlocation = \"x\"\nip = \"1.2.3.4\"\nlatncy = \"5ms\"\n",
    );
    let out = steerlab(&["run", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("typo.toml:6:1"), "{stderr}");
    assert!(stderr.contains("did you mean `latency`?"), "{stderr}");
}

#[test]
fn a_missing_file_exits_2() {
    let out = steerlab(&["run", "no/such/file.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such file"));
}

#[test]
fn log_option_writes_the_agent_log() {
    let log = std::env::temp_dir().join(format!("steerlab-cli-{}-happy.log", std::process::id()));
    let out = steerlab(&["run", HAPPY, "--log", log.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains(
        " stAgentSvc p1 t1 4 dnsResolver Hostname gateway-acme.goskope.com resolved by EDNS"
    ));
}

#[test]
fn completions_come_from_the_clap_definition() {
    let out = steerlab(&["completions", "bash"]);
    assert_eq!(out.status.code(), Some(0));
    let bash = String::from_utf8_lossy(&out.stdout);
    assert!(bash.contains("complete -F _steerlab"), "{bash}");
    for word in ["run", "replay", "serve", "--pcap", "--pcap-hosts", "--seed"] {
        assert!(bash.contains(word), "bash completion lacks {word}");
    }
    for (shell, marker) in [
        ("zsh", "#compdef steerlab"),
        ("fish", "complete -c steerlab"),
    ] {
        let out = steerlab(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(marker), "{shell}: {text}");
        assert!(text.contains("pcap-hosts"), "{shell} lacks run's options");
    }
    let out = steerlab(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "an unknown shell is bad input");
}

#[test]
fn the_man_page_names_the_subcommands() {
    let out = steerlab(&["man"]);
    assert_eq!(out.status.code(), Some(0));
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.contains(".TH steerlab 1"), "{page}");
    for sub in [
        "run",
        "replay",
        "log",
        "shell",
        "serve",
        "agent",
        "completions",
    ] {
        assert!(
            page.contains(&format!("steerlab\\-{sub}(1)")),
            "man page lacks {sub}: {page}"
        );
    }
    let dir = std::env::temp_dir().join(format!("steerlab-man-{}", std::process::id()));
    let out = steerlab(&["man", "--dir", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let run = std::fs::read_to_string(dir.join("steerlab-run.1")).expect("steerlab-run.1");
    assert!(run.contains("\\-\\-pcap"), "{run}");
    assert!(dir.join("steerlab-log-compare.1").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn jobs_give_the_same_output_and_exit_code_in_the_same_order() {
    let miss = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(HAPPY))
        .unwrap()
        .replace("gateway = \"nyc1\"", "gateway = \"fra1\"");
    let miss = temp("jobs-miss.toml", &miss);
    let files = [
        "scenarios/failover/primary-blocked-backup.toml",
        miss.to_str().unwrap(),
        HAPPY,
        "scenarios/steering/cloud-apps-managed-tunneled.toml",
    ];
    let run = |jobs: &str| {
        let mut args = vec!["run", "--jobs", jobs];
        args.extend(files);
        steerlab(&args)
    };
    let one = run("1");
    assert_eq!(
        one.status.code(),
        Some(1),
        "one file misses its expectation"
    );
    let names: Vec<&str> = ["Primary", "DoH happy path", "DoH happy path", "Cloud apps"].to_vec();
    // The wall time of each run differs from run to run; the rest is the same.
    let untimed = |bytes: &[u8]| -> String {
        String::from_utf8_lossy(bytes)
            .lines()
            .map(|l| l.split(" simulated in ").next().unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let stdout = untimed(&one.stdout);
    let mut at = 0;
    for name in names {
        let found = stdout[at..].find(name).map(|i| i + at);
        assert!(found.is_some(), "{name} missing or out of order:\n{stdout}");
        at = found.unwrap_or(at) + 1;
    }
    for jobs in ["2", "3"] {
        let many = run(jobs);
        assert_eq!(many.status.code(), one.status.code(), "--jobs {jobs}");
        assert_eq!(
            untimed(&many.stdout),
            stdout,
            "--jobs {jobs} prints what --jobs 1 prints"
        );
    }
    let zero = steerlab(&["run", "--jobs", "0", HAPPY]);
    assert_eq!(zero.status.code(), Some(2), "--jobs 0 is bad input");
}
