//! `lab doctor` (the real binary) on a machine without a Docker engine and with a port of the
//! stack taken: both are reported as failures with their fix, and the exit status says so. The
//! run with a real engine (engine version, the lab's own ports) is in tests/docker_stack.rs.

use std::net::TcpListener;
use std::process::Command;

#[test]
fn doctor_reports_a_missing_engine_and_a_taken_port_with_fixes() {
    let state = tempfile::tempdir().unwrap();
    // db of tests/stacks/test.toml publishes 127.0.0.1:18081: hold it, as a stray server would.
    let holder = TcpListener::bind("127.0.0.1:18081").expect("port 18081 is free for the test");
    let out = Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(["doctor", "--stack", "tests/stacks/test.toml", "--json"])
        .env("LAB_STATE_DIR", state.path())
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    drop(holder);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "problems make doctor fail:\n{stdout}\n{stderr}");
    assert!(stderr.contains("lab doctor found 2 problem(s)"), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    let find = |check: &str, level: &str| {
        findings
            .iter()
            .filter(|f| f["check"] == check && f["level"] == level)
            .collect::<Vec<_>>()
    };

    let docker = find("docker", "fail");
    assert_eq!(docker.len(), 1, "{findings:#?}");
    assert!(
        docker[0]["detail"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/docker.sock")
    );
    assert!(docker[0]["fix"].as_str().unwrap().contains("lab demo"));
    assert!(report["engine"].is_null());

    let port = find("port", "fail");
    assert_eq!(port.len(), 1, "only the held port fails: {findings:#?}");
    let detail = port[0]["detail"].as_str().unwrap();
    assert!(detail.contains("127.0.0.1:18081 (for db) is in use by"), "{detail}");
    assert!(
        detail.contains(&format!("pid {}", std::process::id())),
        "names this process: {detail}"
    );
    assert!(port[0]["fix"].as_str().unwrap().contains("tests/stacks/test.toml"));
    let free = find("port", "ok");
    assert!(
        free[0]["detail"].as_str().unwrap().contains("18082, 18083"),
        "{free:#?}"
    );

    // The state dir exists (empty): fine; memory and disk are measured.
    assert_eq!(find("state", "ok").len(), 1, "{findings:#?}");
    assert_eq!(find("memory", "ok").len() + find("memory", "warn").len(), 1);
    assert_eq!(find("disk", "ok").len(), 1, "{findings:#?}");

    // The text form says the same in words.
    let text = Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(["doctor", "--stack", "tests/stacks/test.toml"])
        .env("LAB_STATE_DIR", state.path())
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("FAIL docker") && text.contains("fix: start Docker"),
        "{text}"
    );
    assert!(
        text.contains("1 problem(s) to fix"),
        "port free again, engine still missing:\n{text}"
    );
}
