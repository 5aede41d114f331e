//! `lab up` and friends against a REAL Docker engine with locally imported busybox images.
//!
//! Run with `make test-docker`: it starts a throwaway engine in its own network namespace
//! (tests/docker/engine.sh), runs this binary inside that namespace (published ports live on the
//! namespace's loopback) and stops the engine. Without that engine these tests fail; they are
//! `#[ignore]`d so a plain `cargo test` does not run them.
//!
//! The stack is tests/stacks/test.toml, brought up through the same library path as `lab up`
//! (`runtime::stack_commands::up_with_events`), and once through the real `lab` binary.

// Helpers outside #[test] functions too: a panic with its message is the test's failure report.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;

use bigdata_lab::runtime::docker::{Engine, Error, PullPolicy, ServiceOutcome, UpReport};
use bigdata_lab::runtime::events::{Events, StackEvent};
use bigdata_lab::runtime::stack_commands::up_with_events;
use bigdata_lab::stack::{Scale, SelectionRequest, Stack, StackFile, secrets};
use tokio::sync::mpsc::unbounded_channel;

mod tmux;

const STACK: &str = "labtest";

/// One scenario at a time: they share the engine, the stack name and its host ports.
static ENGINE_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn test_stack_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/stacks/test.toml")
}

fn test_stack() -> Stack {
    Stack::load(&test_stack_path()).expect("tests/stacks/test.toml is valid")
}

/// The test stack with its file text edited (to change one service's spec).
fn edited_test_stack(from: &str, to: &str) -> Stack {
    let text = std::fs::read_to_string(test_stack_path()).unwrap();
    assert!(text.contains(from), "test.toml no longer contains {from:?}");
    let file: StackFile = toml::from_str(&text.replace(from, to)).unwrap();
    Stack::from_file(file, test_stack_path().parent().unwrap().to_path_buf()).unwrap()
}

fn select<'a>(stack: &'a Stack, only: &[&str], profiles: &[&str]) -> bigdata_lab::stack::Selection<'a> {
    stack
        .select(&SelectionRequest {
            only: only.iter().map(|s| s.to_string()).collect(),
            profiles: profiles.iter().map(|s| s.to_string()).collect(),
        })
        .unwrap()
}

async fn engine() -> Engine {
    Engine::connect()
        .await
        .unwrap_or_else(|e| panic!("{e}\n(these tests need the engine of `make test-docker`)"))
}

/// Runs `up` like `lab up` does after printing its plan, and returns the events it emitted.
async fn up(
    engine: &Engine,
    stack: &Stack,
    only: &[&str],
    profiles: &[&str],
    pull: PullPolicy,
    state: &Path,
) -> (Result<UpReport, Error>, Vec<StackEvent>) {
    let selection = select(stack, only, profiles);
    let secret_values = secrets::ensure(state, &stack.secret_names()).unwrap();
    let (tx, mut rx) = unbounded_channel();
    let result = up_with_events(engine, &selection, &secret_values, pull, state, &Events::new(tx)).await;
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    (result, events)
}

async fn down_all(engine: &Engine, stack: &str) {
    engine.down(stack, true, &Events::discard()).await.unwrap();
}

/// The docker CLI, as an independent witness of what the runtime did.
fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("run the docker CLI");
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn docker_lines(args: &[&str]) -> Vec<String> {
    docker(args)
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect()
}

/// The real `lab` binary with its own state dir (never the caller's LAB_STATE_DIR).
fn lab_in(state: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lab"))
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .env_remove("LAB_STATE_DIR")
        .output()
        .expect("run lab")
}

/// GET over plain TCP (no HTTP client dependency); returns the body.
fn http_get(addr: &str, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr)?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    assert!(
        head.starts_with("HTTP/1.") && head.contains(" 200 "),
        "GET {addr}{path}: {head}"
    );
    Ok(body.to_string())
}

fn position(events: &[StackEvent], wanted: impl Fn(&StackEvent) -> bool, what: &str) -> usize {
    events
        .iter()
        .position(wanted)
        .unwrap_or_else(|| panic!("no {what} event in {events:#?}"))
}

fn started(service: &'static str) -> impl Fn(&StackEvent) -> bool {
    move |e| matches!(e, StackEvent::Started { service: s } if s == service)
}

fn ids(report: &UpReport) -> BTreeMap<String, String> {
    report
        .services
        .iter()
        .map(|(s, id, _)| (s.clone(), id.clone()))
        .collect()
}

fn outcomes(report: &UpReport) -> BTreeMap<String, ServiceOutcome> {
    report.services.iter().map(|(s, _, o)| (s.clone(), *o)).collect()
}

#[tokio::test]
#[ignore = "needs the test Docker engine: make test-docker"]
async fn pull_policy_decides_what_is_pulled() {
    let _guard = ENGINE_LOCK.lock().await;
    let engine = engine().await;
    let state = tempfile::tempdir().unwrap();
    let absent: StackFile = toml::from_str(
        r#"
name = "labpull"
[services.ghost]
image = "lab-test/absent:1"
"#,
    )
    .unwrap();
    let absent = Stack::from_file(absent, state.path().to_path_buf()).unwrap();

    let (result, _) = up(&engine, &absent, &[], &[], PullPolicy::Never, state.path()).await;
    let err = result.unwrap_err();
    assert!(matches!(err, Error::ImageMissing { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("lab-test/absent:1") && message.contains("--pull"),
        "{message}"
    );

    // `missing` tries to pull; no registry is reachable from the engine's namespace.
    let (result, events) = up(&engine, &absent, &[], &[], PullPolicy::Missing, state.path()).await;
    let err = result.unwrap_err();
    assert!(matches!(err, Error::PullFailed { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("cannot pull image lab-test/absent:1 (for ghost)"),
        "{err}"
    );
    assert!(events.iter().any(|e| matches!(e, StackEvent::PullStarted { .. })));
    assert!(docker_lines(&["ps", "-aq", "--filter", "label=lab.stack=labpull"]).is_empty());

    // The imported image is present: `missing` does not pull it.
    let stack = test_stack();
    down_all(&engine, STACK).await;
    let (result, events) = up(&engine, &stack, &["db"], &[], PullPolicy::Missing, state.path()).await;
    result.unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, StackEvent::ImagePresent { image } if image == "lab-test/busybox:1"))
    );
    assert!(
        !events.iter().any(|e| matches!(e, StackEvent::PullStarted { .. })),
        "{events:#?}"
    );
    down_all(&engine, STACK).await;
    down_all(&engine, "labpull").await;
}

#[tokio::test]
#[ignore = "needs the test Docker engine: make test-docker"]
async fn up_orders_waits_is_idempotent_recreates_changes_and_down_spares_others() {
    let _guard = ENGINE_LOCK.lock().await;
    let engine = engine().await;
    down_all(&engine, STACK).await;
    let state = tempfile::tempdir().unwrap();

    // Things that are not this lab's: unlabeled, and labeled for another stack.
    // Leftovers of an interrupted run; absent is fine.
    drop(
        Command::new("docker")
            .args(["rm", "-f", "decoy", "decoy-other"])
            .output(),
    );
    drop(Command::new("docker").args(["volume", "rm", "decoy-data"]).output());
    docker(&["volume", "create", "decoy-data"]);
    docker(&[
        "run",
        "-d",
        "--init",
        "--name",
        "decoy",
        "-v",
        "decoy-data:/d",
        "lab-test/busybox:1",
        "sleep",
        "3600",
    ]);
    docker(&[
        "run",
        "-d",
        "--init",
        "--name",
        "decoy-other",
        "--label",
        "lab.stack=other",
        "lab-test/busybox:1",
        "sleep",
        "3600",
    ]);

    let stack = test_stack();
    let (result, events) = up(&engine, &stack, &[], &[], PullPolicy::Never, state.path()).await;
    let first = result.unwrap_or_else(|e| panic!("up failed: {e}"));
    assert_eq!(
        first.services.iter().map(|(s, _, _)| s.as_str()).collect::<Vec<_>>(),
        ["db", "migrate", "sidecar", "api", "web"],
        "profile services (broken) are not started by default"
    );
    assert!(outcomes(&first).values().all(|o| *o == ServiceOutcome::Created));

    // Dependency order and conditions, as observed from the events.
    let db_healthy = position(
        &events,
        |e| matches!(e, StackEvent::Healthy { service, .. } if service == "db"),
        "db healthy",
    );
    let migrate_started = position(&events, started("migrate"), "migrate started");
    let migrate_done = position(
        &events,
        |e| matches!(e, StackEvent::Completed { service } if service == "migrate"),
        "migrate completed",
    );
    let api_started = position(&events, started("api"), "api started");
    let web_started = position(&events, started("web"), "web started");
    assert!(position(&events, started("db"), "db started") < db_healthy);
    assert!(db_healthy < migrate_started, "migrate waits for db to be healthy");
    assert!(migrate_done < api_started, "api waits for migrate to complete");
    assert!(api_started < web_started, "web waits for api to start");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, StackEvent::Healthy { service, .. } if service == "api"))
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, StackEvent::Healthy { service, .. } if service == "sidecar")),
        "sidecar reaches db on 127.0.0.1 through the shared namespace"
    );

    // Published on 127.0.0.1 only: the engine's bindings, and the sockets themselves.
    for container in ["lab-labtest-db", "lab-labtest-api", "lab-labtest-web"] {
        let bindings = docker_lines(&["port", container]);
        assert!(!bindings.is_empty(), "{container} publishes nothing");
        for b in &bindings {
            assert!(b.contains(" -> 127.0.0.1:"), "{container}: {b}");
        }
        let json = docker(&["inspect", "-f", "{{json .HostConfig.PortBindings}}", container]);
        assert!(
            json.contains("\"HostIp\":\"127.0.0.1\"") && !json.contains("\"HostIp\":\"\""),
            "{json}"
        );
    }
    let token = std::fs::read_to_string(secrets::secret_path(state.path(), "api_token")).unwrap();
    assert_eq!(
        http_get("127.0.0.1:18082", "/token").unwrap().trim(),
        token,
        "the generated secret reached api"
    );
    assert_eq!(
        http_get("127.0.0.1:18082", "/migrated").unwrap().trim(),
        "migrated",
        "migrate ran before api"
    );
    assert_eq!(http_get("127.0.0.1:18083", "/").unwrap().trim(), "ok");
    let gateway = docker(&[
        "network",
        "inspect",
        "-f",
        "{{(index .IPAM.Config 0).Gateway}}",
        "lab-labtest",
    ]);
    assert!(!gateway.is_empty());
    assert!(
        TcpStream::connect(format!("{gateway}:18082")).is_err(),
        "port 18082 must not answer on the bridge address {gateway}"
    );

    // Endpoints: 0600, from the published ports and the generated password.
    let endpoints_path = state.path().join("endpoints.toml");
    let endpoints = std::fs::read_to_string(&endpoints_path).unwrap();
    let db_password = std::fs::read_to_string(secrets::secret_path(state.path(), "db_password")).unwrap();
    assert!(
        endpoints.contains(&format!("postgresql://lab:{db_password}@127.0.0.1:18081/yelp")),
        "{endpoints}"
    );
    assert!(endpoints.contains("brokers = \"127.0.0.1:18082\""), "{endpoints}");
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&endpoints_path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    // Idempotent: nothing changed, nothing recreated.
    let (again, events) = up(&engine, &stack, &[], &[], PullPolicy::Never, state.path()).await;
    let again = again.unwrap();
    assert_eq!(ids(&again), ids(&first));
    assert!(
        outcomes(&again).values().all(|o| *o == ServiceOutcome::Kept),
        "{:?}",
        outcomes(&again)
    );
    assert!(!events.iter().any(|e| matches!(e, StackEvent::Created { .. })));
    assert_eq!(
        std::fs::read_to_string(secrets::secret_path(state.path(), "api_token")).unwrap(),
        token,
        "secrets are reused"
    );

    // A changed spec: only that service is recreated.
    let changed = edited_test_stack("costs $$5", "costs $$6");
    let (third, events) = up(&engine, &changed, &[], &[], PullPolicy::Never, state.path()).await;
    let third = third.unwrap();
    let o = outcomes(&third);
    assert_eq!(o["api"], ServiceOutcome::Recreated);
    for kept in ["db", "migrate", "sidecar", "web"] {
        assert_eq!(o[kept], ServiceOutcome::Kept, "{kept}");
    }
    assert_ne!(ids(&third)["api"], ids(&first)["api"]);
    assert_eq!(ids(&third)["db"], ids(&first)["db"]);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, StackEvent::Recreating { service, .. } if service == "api"))
    );
    assert_eq!(
        docker(&[
            "inspect",
            "-f",
            "{{range .Config.Env}}{{println .}}{{end}}",
            "lab-labtest-api"
        ])
        .lines()
        .find(|l| l.starts_with("GREETING="))
        .unwrap(),
        "GREETING=costs $6"
    );

    // ps sees every service.
    let rows = engine.ps(STACK).await.unwrap();
    let by_service: BTreeMap<&str, &bigdata_lab::runtime::docker::ServiceStatus> =
        rows.iter().map(|r| (r.service.as_str(), r)).collect();
    assert_eq!(
        by_service.keys().copied().collect::<Vec<_>>(),
        ["api", "db", "migrate", "sidecar", "web"]
    );
    assert_eq!(by_service["db"].health.as_deref(), Some("healthy"));
    assert_eq!(by_service["migrate"].state, "exited");
    assert_eq!(by_service["migrate"].exit_code, Some(0));
    assert_eq!(by_service["web"].state, "running");
    assert!(by_service["api"].ports.iter().all(|p| p.starts_with("127.0.0.1:")));
    assert!(by_service["db"].memory_bytes.is_some());

    // down removes exactly the lab's resources.
    let removed = engine.down(STACK, true, &Events::discard()).await.unwrap();
    assert_eq!(removed, 5 + 1 + 1, "5 containers, 1 network, 1 volume");
    assert!(docker_lines(&["ps", "-aq", "--filter", "label=lab.stack=labtest"]).is_empty());
    assert!(docker_lines(&["volume", "ls", "-q", "--filter", "label=lab.stack=labtest"]).is_empty());
    assert!(docker_lines(&["network", "ls", "-q", "--filter", "label=lab.stack=labtest"]).is_empty());
    assert_eq!(docker(&["inspect", "-f", "{{.State.Running}}", "decoy"]), "true");
    assert_eq!(docker(&["inspect", "-f", "{{.State.Running}}", "decoy-other"]), "true");
    assert_eq!(
        docker(&["volume", "inspect", "-f", "{{.Name}}", "decoy-data"]),
        "decoy-data"
    );
    docker(&["rm", "-f", "decoy", "decoy-other"]);
    docker(&["volume", "rm", "decoy-data"]);
}

#[tokio::test]
#[ignore = "needs the test Docker engine: make test-docker"]
async fn failing_healthcheck_reports_the_check_and_the_logs() {
    let _guard = ENGINE_LOCK.lock().await;
    let engine = engine().await;
    down_all(&engine, STACK).await;
    let state = tempfile::tempdir().unwrap();
    let stack = test_stack();
    let (result, events) = up(
        &engine,
        &stack,
        &["broken"],
        &["broken"],
        PullPolicy::Never,
        state.path(),
    )
    .await;
    let err = result.unwrap_err();
    assert!(matches!(err, Error::Unhealthy { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("service broken is unhealthy"), "{message}");
    assert!(
        message.contains("wget -q -O- http://127.0.0.1:81/"),
        "names the failing check: {message}"
    );
    assert!(
        message.contains("broken-service-marker"),
        "shows the service's log: {message}"
    );
    assert!(events.iter().any(|e| matches!(
        e,
        StackEvent::Unhealthy { service, last_logs, .. }
            if service == "broken" && last_logs.iter().any(|l| l.contains("broken-service-marker"))
    )));
    down_all(&engine, STACK).await;
}

#[tokio::test]
#[ignore = "needs the test Docker engine: make test-docker"]
async fn lab_binary_up_ps_logs_down() {
    let _guard = ENGINE_LOCK.lock().await;
    down_all(&engine().await, STACK).await;
    let state = tempfile::tempdir().unwrap();
    let lab = |args: &[&str]| {
        let out = lab_in(state.path(), args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "lab {args:?} failed:\n{stdout}\n{stderr}");
        (stdout, stderr)
    };
    let stack_file = test_stack_path();
    let stack_arg = stack_file.to_str().unwrap();
    let (up_out, up_err) = lab(&["up", "--stack", stack_arg, "--only", "web", "--pull", "never"]);
    assert!(up_out.contains("estimated memory"), "{up_out}");
    for expected in ["db", "migrate", "api", "web", "lab-test/busybox:1", "127.0.0.1:18082"] {
        assert!(up_out.contains(expected), "the plan lists {expected}: {up_out}");
    }
    assert!(up_out.contains("stack labtest is up (4 services)"), "{up_out}");

    // ps and logs find the stack from the state dir (no --stack).
    let (ps, _) = lab(&["ps"]);
    let web = ps
        .lines()
        .find(|l| l.starts_with("web "))
        .unwrap_or_else(|| panic!("{ps}"));
    assert!(web.contains("running") && web.contains("127.0.0.1:18083->80"), "{web}");
    let db = ps.lines().find(|l| l.starts_with("db ")).unwrap();
    assert!(db.contains("healthy"), "{db}");
    let (logs, _) = lab(&["logs", "migrate", "--tail", "5"]);
    assert!(logs.contains("migrate-done"), "{logs}");
    // --since: an age that covers the run shows its line; a time after it (the engine takes whole
    // seconds) shows none.
    let (logs, _) = lab(&["logs", "migrate", "--since", "1h"]);
    assert!(logs.contains("migrate-done"), "{logs}");
    let after = (chrono::Utc::now() + chrono::Duration::seconds(1)).to_rfc3339();
    let (logs, _) = lab(&["logs", "migrate", "--since", &after]);
    assert!(!logs.contains("migrate-done"), "lines before --since {after}: {logs}");

    lab(&["stop", "web"]);
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Running}}", "lab-labtest-web"]),
        "false"
    );
    lab(&["start", "web"]);
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Running}}", "lab-labtest-web"]),
        "true"
    );

    let (compose, _) = lab(&["compose", "--only", "web"]);
    assert!(compose.contains("${LAB_SECRET_API_TOKEN}"), "{compose}");

    let (down_out, _) = lab(&["down", "--volumes"]);
    assert!(down_out.contains("stack labtest removed"), "{down_out}");
    assert!(docker_lines(&["ps", "-aq", "--filter", "label=lab.stack=labtest"]).is_empty());
    assert!(
        !state.path().join("endpoints.toml").exists(),
        "down forgets the endpoints"
    );

    // No generated secret ever reached the terminal or the log file.
    let log = std::fs::read_to_string(state.path().join("logs/lab.log")).unwrap_or_default();
    for name in ["api_token", "db_password"] {
        let secret = std::fs::read_to_string(secrets::secret_path(state.path(), name)).unwrap();
        for (what, text) in [
            ("up stdout", &up_out),
            ("up stderr", &up_err),
            ("ps", &ps),
            ("compose", &compose),
            ("log", &log),
        ] {
            assert!(!text.contains(secret.trim()), "{name} leaked into {what}");
        }
    }
}

/// The row of `service` on the Stack view's screen.
fn stack_row<'a>(screen: &'a str, service: &str) -> &'a str {
    screen
        .lines()
        .find(|l| l.starts_with(&format!("│{service} ")))
        .unwrap_or_else(|| panic!("no row for {service}:\n{screen}"))
}

#[tokio::test]
#[ignore = "needs the test Docker engine: make test-docker"]
async fn the_tui_brings_the_stack_up_and_down_from_its_stack_view() {
    let _guard = ENGINE_LOCK.lock().await;
    down_all(&engine().await, STACK).await;
    let state = tempfile::tempdir().unwrap();
    let tmux = tmux::Tmux::new("lab-docker-tui");
    let closed = "127.0.0.1:9";
    let script = format!(
        "env -u NO_COLOR -u LAB_PG_URL DOCKER_HOST={docker_host} LAB_STATE_DIR={state} LAB_KAFKA_BROKERS={closed} \
         LAB_HDFS_HTTP=http://{closed} LAB_SPARK_UI=http://{closed} LAB_AIRFLOW_URL=http://{closed} LAB_SERVICES_DIR= \
         {bin} tui --stack {stack}; echo TUI-EXITED-$?; sleep 600",
        docker_host = std::env::var("DOCKER_HOST").unwrap(),
        state = state.path().display(),
        bin = env!("CARGO_BIN_EXE_lab"),
        stack = test_stack_path().display(),
    );
    tmux.start(140, 40, &script);
    // The engine answers and the stack has no container: the banner says how to start it.
    tmux.wait_for(&["Stack labtest is not running: press u"]);
    tmux.keys(&["9"]);
    let s = tmux.wait_for(&["Stack labtest", "Docker 20", "SERVICE", "absent"]);
    for service in ["db", "migrate", "sidecar", "api", "web"] {
        assert!(stack_row(&s, service).contains("absent"), "{s}");
    }

    tmux.keys(&["u"]);
    let long = std::time::Duration::from_secs(120);
    let s = tmux.wait_for_within(&["stack labtest is up (5 services)"], long);
    for (service, state) in [
        ("db", "healthy"),
        ("migrate", "completed"),
        ("sidecar", "healthy"),
        ("api", "healthy"),
        ("web", "running"),
    ] {
        assert!(stack_row(&s, service).contains(state), "{service} is {state}:\n{s}");
    }
    assert!(
        stack_row(&s, "broken").contains("absent"),
        "a profile service stays down: {s}"
    );
    let running = docker_lines(&["ps", "-q", "--filter", "label=lab.stack=labtest"]);
    assert_eq!(running.len(), 4, "db, sidecar, api, web run (migrate completed)");
    assert_eq!(http_get("127.0.0.1:18083", "/index.html").unwrap().trim(), "ok");

    // The Logs view follows the containers' logs too.
    tmux.keys(&["8"]);
    tmux.wait_for(&["docker:db", "db-starting"]);
    tmux.keys(&["9"]);

    // Stop one service from the command line, then its probe-driven state shows it.
    tmux.keys(&[":"]);
    tmux.wait_for(&[":▏"]);
    tmux.keys(&["-l", "stop web"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for_within(&["web stopped"], long);
    let s = tmux.wait_for_within(&["exited ("], long);
    assert!(stack_row(&s, "web").contains("exited ("), "{s}");

    // Down with volumes asks first, then nothing labeled remains.
    tmux.keys(&["D"]);
    tmux.wait_for(&["AND volumes", "[y] yes"]);
    tmux.keys(&["y"]);
    let s = tmux.wait_for_within(&["stack labtest removed"], long);
    for service in ["db", "migrate", "sidecar", "api", "web"] {
        assert!(stack_row(&s, service).contains("absent"), "{s}");
    }
    for kind in [
        &["ps", "-aq"][..],
        &["network", "ls", "-q"][..],
        &["volume", "ls", "-q"][..],
    ] {
        let mut args = kind.to_vec();
        args.extend(["--filter", "label=lab.stack=labtest"]);
        assert!(
            docker_lines(&args).is_empty(),
            "docker {args:?} still lists lab resources"
        );
    }
    tmux.keys(&["q"]);
    tmux.wait_for(&["TUI-EXITED-0"]);
}

#[tokio::test]
#[ignore = "needs the test Docker engine: make test-docker"]
async fn up_names_the_process_on_a_taken_port_and_doctor_sees_the_engine_and_the_labs_ports() {
    let _guard = ENGINE_LOCK.lock().await;
    down_all(&engine().await, STACK).await;
    let state = tempfile::tempdir().unwrap();
    let stack_file = test_stack_path();
    let lab = |args: &[&str]| {
        lab_in(
            state.path(),
            &[args, &["--stack", stack_file.to_str().unwrap()]].concat(),
        )
    };
    // web publishes 127.0.0.1:18083: a stray server holds it.
    let stray = std::net::TcpListener::bind("127.0.0.1:18083").unwrap();
    let out = lab(&["up", "--only", "web", "--pull", "never"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("cannot start web: 127.0.0.1:18083 is already in use by")
            && stderr.contains(&format!("pid {}", std::process::id()))
            && stderr.contains("give web another host port"),
        "{stderr}"
    );
    let doctor = lab(&["doctor", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    assert!(!doctor.status.success());
    assert!(
        report["engine"]["api_version"].as_str().unwrap().starts_with("1."),
        "{report:#}"
    );
    assert!(findings.iter().any(|f| f["check"] == "docker" && f["level"] == "ok"));
    // db and api came up before web failed: their ports are the lab's own, 18083 is the stray's.
    let ports: Vec<&str> = findings
        .iter()
        .filter(|f| f["check"] == "port")
        .map(|f| f["detail"].as_str().unwrap())
        .collect();
    assert!(
        ports
            .iter()
            .any(|d| d.contains("127.0.0.1:18081 is held by the lab's own db")),
        "{ports:?}"
    );
    assert!(
        ports
            .iter()
            .any(|d| d.contains("127.0.0.1:18083 (for web) is in use by")),
        "{ports:?}"
    );
    drop(stray);
    let out = lab(&["up", "--only", "web", "--pull", "never"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    down_all(&engine().await, STACK).await;
}

/// tests/stacks/build.toml and its build context, copied where the test may edit them.
fn build_stack_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/stacks");
    std::fs::copy(src.join("build.toml"), dir.path().join("build.toml")).unwrap();
    let images = dir.path().join("images/tools");
    std::fs::create_dir_all(&images).unwrap();
    for file in ["Dockerfile", "marker"] {
        std::fs::copy(src.join("images/tools").join(file), images.join(file)).unwrap();
    }
    let path = dir.path().join("build.toml");
    (dir, path)
}

fn built(events: &[StackEvent]) -> bool {
    events
        .iter()
        .any(|e| matches!(e, StackEvent::Built { image } if image == "lab-test/tools:1"))
}

#[tokio::test]
#[ignore = "needs the test Docker engine: make test-docker"]
async fn up_builds_images_rebuilds_on_change_and_a_shared_namespace_answers_to_its_owners_name() {
    let _guard = ENGINE_LOCK.lock().await;
    let engine = engine().await;
    down_all(&engine, "labbuild").await;
    // Leftover of an earlier run; absent is fine.
    drop(Command::new("docker").args(["rmi", "-f", "lab-test/tools:1"]).output());
    let state = tempfile::tempdir().unwrap();
    let (dir, path) = build_stack_copy();
    let stack = Stack::load(&path).unwrap();

    // Missing: built, even with --pull never (building pulls nothing here: the bases are local).
    let (result, events) = up(&engine, &stack, &[], &[], PullPolicy::Never, state.path()).await;
    let report = result.unwrap_or_else(|e| panic!("{e}"));
    assert!(built(&events), "{events:#?}");
    let steps: Vec<(u32, u32)> = events
        .iter()
        .filter_map(|e| match e {
            StackEvent::Building { step, .. } => *step,
            _ => None,
        })
        .collect();
    // The Dockerfile's four steps, and the label the engine adds as a fifth.
    assert_eq!(
        (steps.first(), steps.last()),
        (Some(&(1, 5)), Some(&(5, 5))),
        "{events:#?}"
    );
    let built_at = position(&events, |e| matches!(e, StackEvent::Built { .. }), "built");
    assert!(built_at < position(&events, started("hub"), "hub started"));
    let hub = &ids(&report)["hub"];
    assert_eq!(docker(&["exec", hub, "cat", "/www/marker"]), "first build");
    assert_eq!(docker(&["exec", hub, "cat", "/www/built"]), "built-by-lab");
    docker(&["exec", hub, "test", "-x", "/opt/donor/busybox"]);
    assert_eq!(
        docker(&[
            "image",
            "inspect",
            "-f",
            "{{index .Config.Labels \"lab.build-hash\"}}",
            "lab-test/tools:1"
        ])
        .len(),
        32,
        "the image carries its context's digest"
    );

    // The server in hub's namespace answers other containers under the name hub, and thinks it
    // is hub: the Spark driver in the NameNode's namespace relies on both.
    let caller_logs = docker(&["logs", &ids(&report)["caller"]]);
    assert!(
        caller_logs.contains("hub") && caller_logs.contains("caller-reached-the-driver"),
        "{caller_logs}"
    );

    // Unchanged context: no build, nothing recreated.
    let (result, events) = up(&engine, &stack, &[], &[], PullPolicy::Missing, state.path()).await;
    let again = result.unwrap();
    assert!(
        !events.iter().any(|e| matches!(e, StackEvent::BuildStarted { .. })),
        "{events:#?}"
    );
    assert_eq!(outcomes(&again)["hub"], ServiceOutcome::Kept);
    assert_eq!(&ids(&again)["hub"], hub);

    // A changed file in the context: rebuilt, and the containers on the old image recreated.
    std::fs::write(dir.path().join("images/tools/marker"), "second build\n").unwrap();
    let (result, events) = up(&engine, &stack, &[], &[], PullPolicy::Missing, state.path()).await;
    let rebuilt = result.unwrap();
    assert!(built(&events), "{events:#?}");
    assert_eq!(outcomes(&rebuilt)["hub"], ServiceOutcome::Recreated);
    assert!(events.iter().any(|e| matches!(
        e,
        StackEvent::Recreating { service, reason } if service == "hub" && reason.contains("image changed")
    )));
    assert_eq!(
        docker(&["exec", &ids(&rebuilt)["hub"], "cat", "/www/marker"]),
        "second build"
    );

    // A failing step: the error names the image, the step's output and what to do; the running
    // containers are left alone.
    let dockerfile = dir.path().join("images/tools/Dockerfile");
    let text = std::fs::read_to_string(&dockerfile).unwrap();
    std::fs::write(&dockerfile, format!("{text}RUN echo build-step-fails >&2; exit 3\n")).unwrap();
    let (result, _) = up(&engine, &stack, &[], &[], PullPolicy::Missing, state.path()).await;
    let err = result.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::BuildFailed { .. }), "{message}");
    for needle in [
        "cannot build image lab-test/tools:1 (for hub, driver)",
        "build-step-fails",
        "Step 5/6",
        "fix the Dockerfile",
    ] {
        assert!(message.contains(needle), "{needle:?} in {message}");
    }
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Running}}", &ids(&rebuilt)["hub"]]),
        "true"
    );

    // A context that is gone: a precise error before anything is sent to the engine.
    std::fs::remove_dir_all(dir.path().join("images")).unwrap();
    let (result, _) = up(&engine, &stack, &[], &[], PullPolicy::Missing, state.path()).await;
    let message = result.unwrap_err().to_string();
    assert!(
        message.contains("cannot read the build context of image lab-test/tools:1"),
        "{message}"
    );

    // The compose export carries the build.
    let yaml = bigdata_lab::stack::compose::export(&select(&stack, &[], &[]), ".lab/compose.env");
    assert!(
        yaml.contains("    build:\n      context: ") && yaml.contains("images/tools"),
        "{yaml}"
    );
    down_all(&engine, "labbuild").await;
}

#[tokio::test]
#[ignore = "needs the test Docker engine: make test-docker"]
async fn lessons_stop_and_start_the_stacks_own_containers() {
    use bigdata_lab::lesson::ServiceControl;
    let _guard = ENGINE_LOCK.lock().await;
    down_all(&engine().await, STACK).await;
    let state = tempfile::tempdir().unwrap();
    let stack_file = test_stack_path();
    let out = lab_in(
        state.path(),
        &[
            "up",
            "--stack",
            stack_file.to_str().unwrap(),
            "--only",
            "web",
            "--pull",
            "never",
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let running = || docker(&["inspect", "-f", "{{.State.Running}}", "lab-labtest-web"]);

    // The control finds the stack `lab up` started from the state dir alone, as a lesson does.
    let control = ServiceControl::new(state.path().to_path_buf());
    control.check("web").await.unwrap();
    control.stop("web").await.unwrap();
    assert_eq!(running(), "false");
    control.start("web").await.unwrap();
    assert_eq!(running(), "true");

    let err = control.check("kafka").await.unwrap_err().to_string();
    assert!(
        err.contains("stack labtest has no kafka container") && err.contains("LAB_CONTROL_KAFKA_STOP"),
        "{err}"
    );
    down_all(&engine().await, STACK).await;
}

fn lab_source_stack_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/stacks/lab_source.toml")
}

/// `build.lab_source`: the builder stage of an image compiles a C program (gcc from the imported
/// lab-test/gcc:1) and receives the lab's own source (the bundle this binary carries), and the
/// final stage takes both results; the bind-mounted file is there;
/// `lab down` removes the container's anonymous volume too. Then a bind source that does not exist
/// stops `lab up` before anything is built or created, and nothing appears at that path.
#[tokio::test]
#[ignore = "needs the test Docker engine: make test-docker"]
async fn a_builder_stage_gets_the_lab_source_and_a_missing_bind_source_starts_nothing() {
    use sha2::{Digest, Sha256};
    let _guard = ENGINE_LOCK.lock().await;
    let engine = engine().await;
    down_all(&engine, "labsource").await;
    drop(
        Command::new("docker")
            .args(["rmi", "-f", "lab-test/lab-source:1"])
            .output(),
    );
    let state = tempfile::tempdir().unwrap();
    let stack = Stack::load(&lab_source_stack_path()).unwrap();

    let (result, events) = up(&engine, &stack, &[], &[], PullPolicy::Never, state.path()).await;
    let report = result.unwrap_or_else(|e| panic!("{e}\n{events:#?}"));
    let reader = &ids(&report)["reader"];
    let lock = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock")).unwrap();
    let lock_digest: String = Sha256::digest(&lock).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        docker(&["logs", reader]),
        format!("compiled in the builder stage\n{lock_digest}\nbind-mount-present"),
        "the builder stage compiled its program and saw the lab's Cargo.lock; the bind mount is in place"
    );
    let anonymous = docker(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{if eq .Destination \"/scratch\"}}{{.Name}}{{end}}{{end}}",
        reader,
    ]);
    assert!(!anonymous.is_empty(), "the image's VOLUME got an anonymous volume");
    docker(&["volume", "inspect", &anonymous]);
    let out = lab_in(
        state.path(),
        &["down", "--stack", lab_source_stack_path().to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let gone = Command::new("docker")
        .args(["volume", "inspect", &anonymous])
        .output()
        .unwrap();
    assert!(
        !gone.status.success(),
        "lab down left the anonymous volume {anonymous} behind"
    );

    // A missing bind source: refused up front, nothing created, nothing made at the path.
    let text = std::fs::read_to_string(lab_source_stack_path()).unwrap();
    let missing = "./images/lab-source/not-there";
    let file: StackFile =
        toml::from_str(&text.replace("./images/lab-source/Dockerfile:", &format!("{missing}:"))).unwrap();
    let broken = Stack::from_file(file, lab_source_stack_path().parent().unwrap().to_path_buf()).unwrap();
    let (result, _) = up(&engine, &broken, &[], &[], PullPolicy::Never, state.path()).await;
    let message = result.expect_err("a missing bind source fails").to_string();
    assert!(
        message.contains("nothing was started") && message.contains("reader: ") && message.contains("not-there"),
        "{message}"
    );
    assert!(
        docker_lines(&["ps", "-a", "-q", "--filter", "label=lab.stack=labsource"]).is_empty(),
        "no container was created"
    );
    assert!(
        !lab_source_stack_path()
            .parent()
            .unwrap()
            .join("images/lab-source/not-there")
            .exists(),
        "nothing was created at the missing path"
    );
    down_all(&engine, "labsource").await;
}

/// The names of the test stack's volumes, as the docker CLI lists them.
fn lab_volumes() -> Vec<String> {
    docker_lines(&[
        "volume",
        "ls",
        "--format",
        "{{.Name}}",
        "--filter",
        "label=lab.stack=labtest",
    ])
}

fn scaled_test_stack(pairs: &[(&str, u32)]) -> Stack {
    let scale = Scale::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), *v)));
    Stack::load_scaled(&test_stack_path(), &scale).unwrap()
}

/// What a replica serves: `who` (its number, or its sentence) and, for nodes, the mark its volume keeps.
fn serves(port: u16, path: &str) -> String {
    http_get(&format!("127.0.0.1:{port}"), path).unwrap().trim().to_string()
}

/// Nothing answers HTTP there. (A port its owner publishes may still accept the connection: the
/// engine's proxy takes it and closes it when nothing listens inside.)
fn silent(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return true;
    };
    let mut response = String::new();
    // A failure to set the timeout, write or read is itself an answer: silence.
    let answered = stream.set_read_timeout(Some(std::time::Duration::from_secs(5))).is_ok()
        && write!(stream, "GET /who HTTP/1.0\r\n\r\n").is_ok()
        && stream.read_to_string(&mut response).is_ok()
        && response.starts_with("HTTP/1.");
    !answered
}

/// `lab up --scale`: replicas as containers of their own (names, ports, volumes, labels, order),
/// scaled down (the surplus removed, its volume kept, replica 1 untouched) and up again (the old
/// volume found), and the same through the `lab` binary, which remembers the scale.
#[tokio::test]
#[ignore = "needs the test Docker engine: make test-docker"]
async fn scale_runs_replicas_with_their_own_names_ports_and_volumes() {
    let _guard = ENGINE_LOCK.lock().await;
    let engine = engine().await;
    down_all(&engine, STACK).await;
    let state = tempfile::tempdir().unwrap();

    let three = scaled_test_stack(&[("node", 3), ("shard", 2)]);
    let (result, events) = up(&engine, &three, &[], &["scale"], PullPolicy::Never, state.path()).await;
    let report = result.unwrap();
    let healthy_db = position(
        &events,
        |e| matches!(e, StackEvent::Healthy { service, .. } if service == "db"),
        "db healthy",
    );
    for replica in ["node-2", "node-3", "shard-2"] {
        let at = position(
            &events,
            |e| matches!(e, StackEvent::Started { service } if service == replica),
            replica,
        );
        assert!(healthy_db < at, "{replica} started before db was healthy: {events:#?}");
    }
    let names = docker_lines(&["ps", "--format", "{{.Names}}", "--filter", "label=lab.stack=labtest"]);
    for name in ["node", "node-2", "node-3", "shard", "shard-2"] {
        assert!(names.contains(&format!("lab-labtest-{name}")), "{name} in {names:?}");
    }
    assert_eq!(
        docker(&[
            "inspect",
            "-f",
            "{{index .Config.Labels \"lab.replica-of\"}}",
            "lab-labtest-node-3"
        ]),
        "node"
    );
    // Each node listens on its own port inside db's namespace, published by db.
    let mut marks = Vec::new();
    for (i, port) in [19000, 19010, 19020].into_iter().enumerate() {
        assert_eq!(serves(port, "/who"), (i + 1).to_string(), "port {port}");
        marks.push(serves(port, "/born"));
    }
    assert!(
        marks[0] != marks[1] && marks[1] != marks[2],
        "one volume each: {marks:?}"
    );
    assert_eq!(serves(18090, "/who"), "1 of 3 nodes on shard");
    assert_eq!(serves(18100, "/who"), "2 of 3 nodes on shard-2");
    let volumes = lab_volumes();
    for volume in [
        "node-state",
        "node-state-2",
        "node-state-3",
        "shard-state",
        "shard-state-2",
    ] {
        assert!(
            volumes.contains(&format!("lab-labtest-{volume}")),
            "{volume} in {volumes:?}"
        );
    }

    // Down to one node: nodes 2 and 3 go, their volumes stay; node 1 is kept as it ran, the
    // shards (which read the count) are recreated.
    let one = scaled_test_stack(&[("node", 1), ("shard", 2)]);
    let (result, events) = up(&engine, &one, &[], &["scale"], PullPolicy::Never, state.path()).await;
    let again = result.unwrap();
    let outcome = outcomes(&again);
    assert_eq!(outcome["node"], ServiceOutcome::Kept, "{outcome:?}");
    assert_eq!(ids(&again)["node"], ids(&report)["node"]);
    assert_eq!(outcome["shard"], ServiceOutcome::Recreated, "{outcome:?}");
    for gone in ["node-2", "node-3"] {
        let name = format!("lab-labtest-{gone}");
        position(
            &events,
            |e| matches!(e, StackEvent::Removed { name: n, .. } if *n == name),
            &format!("{gone} removed"),
        );
        assert!(
            docker_lines(&["ps", "-aq", "--filter", &format!("name=^{name}$")]).is_empty(),
            "{name} is still there"
        );
    }
    assert!(silent(19010) && silent(19020));
    assert_eq!(serves(18100, "/who"), "2 of 1 nodes on shard-2");
    let volumes = lab_volumes();
    assert!(volumes.contains(&"lab-labtest-node-state-3".to_string()), "{volumes:?}");

    // Up again: node 3 comes back on its old volume.
    let (result, _) = up(&engine, &three, &[], &["scale"], PullPolicy::Never, state.path()).await;
    result.unwrap();
    assert_eq!(serves(19020, "/born"), marks[2], "node 3 found its volume again");

    // Through the binary: --scale is checked, remembered, and listed.
    down_all(&engine, STACK).await;
    let stack_arg = test_stack_path();
    let lab = |args: &[&str]| {
        let mut all = vec![
            "up",
            "--stack",
            stack_arg.to_str().unwrap(),
            "--profile",
            "scale",
            "--pull",
            "never",
        ];
        all.extend_from_slice(args);
        let out = lab_in(state.path(), &all);
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (ok, text) = lab(&["--scale", "node=4"]);
    assert!(!ok && text.contains("at most 3"), "{text}");
    let (ok, text) = lab(&["--scale", "db=2"]);
    assert!(!ok && text.contains("runs as one container"), "{text}");
    let (ok, text) = lab(&["--scale", "node=2"]);
    assert!(ok, "{text}");
    assert!(text.contains("node-2"), "the plan lists the replica: {text}");
    let (ok, text) = lab(&[]);
    assert!(
        ok && text.contains("node-2"),
        "a later `lab up` keeps the scale: {text}"
    );
    assert_eq!(serves(19010, "/who"), "2");
    let ps = lab_in(state.path(), &["ps"]);
    let ps = String::from_utf8_lossy(&ps.stdout).into_owned();
    assert!(
        ps.lines().any(|l| l.starts_with("node-2 ") && l.contains("healthy")),
        "{ps}"
    );
    let (ok, text) = lab(&["--scale", "node=1"]);
    assert!(ok, "{text}");
    assert!(silent(19010), "node-2 removed by --scale node=1");
    down_all(&engine, STACK).await;
    assert!(docker_lines(&["ps", "-aq", "--filter", "label=lab.stack=labtest"]).is_empty());
}
