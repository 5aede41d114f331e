//! The real `lab` binary outside a checkout (an empty working directory), as after
//! `cargo install` or with a copied binary: the built-in stacks come from the binary itself, and
//! the Docker engine is found the way the docker CLI finds it (a context in the CLI's config).
//! No service and no engine needed.

// Helpers outside #[test] functions too: a panic with its message is the test's failure report.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

fn lab(cwd: &Path, state: &Path, home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(args)
        .current_dir(cwd)
        .env("LAB_STATE_DIR", state)
        .env("HOME", home)
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_CONFIG")
        .output()
        .unwrap()
}

/// `lab compose` from an empty directory exports the lambda stack with every file it mounts and
/// the scheduler's build context (with the lab's source) written under the state dir, all of
/// them there; `lab doctor` finds the stack too.
#[test]
fn the_built_in_stack_works_from_an_empty_directory() {
    let cwd = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let out = lab(cwd.path(), state.path(), home.path(), &["compose"]);
    let yaml = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bundle = state.path().join("bundle");
    // Every bind source and build context in the export is a path under the state dir that exists.
    let mut binds = 0;
    for line in yaml.lines() {
        let line = line.trim().trim_start_matches("- ").trim_matches('"');
        if let Some(source) = line.split(':').next().filter(|s| s.starts_with('/')) {
            assert!(
                source.starts_with(state.path().to_str().unwrap()),
                "{source} is outside the state dir"
            );
            assert!(Path::new(source).exists(), "{source} was not written out");
            binds += 1;
        }
    }
    assert!(
        binds >= 4,
        "the stack's bind mounts (dags, jobs, postgres-init): {yaml}"
    );
    assert!(bundle.is_dir());
    let context = state.path().join("contexts/airflow-scheduler");
    assert!(yaml.contains(&format!("context: \"{}\"", context.display())), "{yaml}");
    assert!(context.join("Dockerfile").is_file());
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert_eq!(
        std::fs::read(context.join("lab-src/Cargo.lock")).unwrap(),
        std::fs::read(repo.join("Cargo.lock")).unwrap(),
        "the scheduler's context carries the lab's source"
    );
    assert!(context.join("lab-src/src/main.rs").is_file());
    // The Dockerfile copies the build settings (jemalloc's configuration) before the dependencies.
    assert_eq!(
        std::fs::read(context.join("lab-src/.cargo/config.toml")).unwrap(),
        std::fs::read(repo.join(".cargo/config.toml")).unwrap(),
        "the scheduler's context carries the lab's build settings"
    );
    // Nothing was written into the working directory.
    assert_eq!(std::fs::read_dir(cwd.path()).unwrap().count(), 0);

    let out = lab(cwd.path(), state.path(), home.path(), &["doctor", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["stack"], "lambda", "{report:#}");
    let stack_failures = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == "stack" && f["level"] != "ok")
        .count();
    assert_eq!(stack_failures, 0, "{report:#}");
}

/// With no DOCKER_HOST, the engine is the current context of the docker CLI's config
/// (`~/.docker/config.json` and the context's meta.json, as `docker context create` and
/// `docker context use` write them), and `lab doctor` says which engine and how it was found.
#[test]
fn the_docker_clis_current_context_is_the_engine() {
    use sha2::{Digest, Sha256};
    let cwd = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let docker = home.path().join(".docker");
    let digest: String = Sha256::digest(b"colima").iter().map(|b| format!("{b:02x}")).collect();
    let meta = docker.join("contexts/meta").join(digest);
    std::fs::create_dir_all(&meta).unwrap();
    std::fs::write(docker.join("config.json"), r#"{"auths":{},"currentContext":"colima"}"#).unwrap();
    let socket = home.path().join(".colima/default/docker.sock");
    std::fs::write(
        meta.join("meta.json"),
        format!(
            r#"{{"Name":"colima","Metadata":{{"Description":"colima"}},"Endpoints":{{"docker":{{"Host":"unix://{}","SkipTLSVerify":false}}}}}}"#,
            socket.display()
        ),
    )
    .unwrap();
    let out = lab(cwd.path(), state.path(), home.path(), &["doctor", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let docker_finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "docker")
        .cloned()
        .unwrap();
    let detail = docker_finding["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("unix://{}", socket.display()))
            && detail.contains("context colima (~/.docker/config.json)"),
        "{detail}"
    );
}

/// A wrong `[tui.keys]` or `[tui.theme]` in `lab.toml` stops the monitor before it takes the
/// terminal, saying which entry and what to do.
#[test]
fn the_monitor_refuses_a_wrong_key_or_colour_in_lab_toml_with_what_to_do() {
    let state = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    for (toml, says) in [
        (
            "[tui.keys]\nstop_selected = \"r\"\n",
            "lab.toml [tui.keys]: `r` would do both `stop_selected` and `restart_selected` in the Stack view",
        ),
        ("[tui.keys]\nquit = \"ctrl-q\"\n", "`quit`: `ctrl-q` is not a key"),
        (
            "[tui.theme]\nup = \"blurple\"\n",
            "lab.toml [tui.theme]: `up = \"blurple\"` is not a colour",
        ),
    ] {
        let cwd = tempfile::tempdir().unwrap();
        std::fs::write(cwd.path().join("lab.toml"), toml).unwrap();
        let out = lab(cwd.path(), state.path(), home.path(), &["tui"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{toml}: {stderr}");
        assert!(stderr.contains(says), "{toml}: {stderr}");
        assert!(stderr.contains("fix that entry of lab.toml"), "{stderr}");
    }
}
