//! PostgreSQL as a managed one is set up: TLS only (plain TCP refused by pg_hba), password
//! authentication, a certificate for 127.0.0.1 signed by a CA of its own. Started by this test
//! with `tests/services/postgres.sh` (`LAB_TEST_PG_TLS=1`) on a port of its own.
//!
//! The sample is streamed through the shared test broker and loaded with `lab batch` over
//! `sslmode=verify-full`; the tables are read back over the server's unix socket (not through
//! the code under test) and equal the reference. Each `sslmode` checks what libpq's does: a wrong
//! host name fails `verify-full` but not `verify-ca`, a certificate from an unknown CA fails
//! both, `require` encrypts without checking, `disable` is refused by the server. A password
//! comes from a password file when the URL has none, and a file others may read is refused.
// Needs the broker and the test venv of tests/services/up.sh: `make test` turns this feature on.
#![cfg(feature = "service-tests")]
#![allow(clippy::unwrap_used)]

mod common;
use common::OutputGuarded;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{assert_tables_equal_reference, output_text, reference, run_ok, sample_dir, stage_cmd, unique_prefix};

const PORT: u16 = 25442;

/// The TLS-only server, stopped on drop.
struct TlsPostgres {
    dir: tempfile::TempDir,
}

impl TlsPostgres {
    fn start() -> Self {
        let server = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        server.script("start");
        server
    }

    fn script(&self, action: &str) {
        let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/services/postgres.sh"))
            .arg(action)
            .env("LAB_SERVICES_DIR", self.dir.path())
            .env("LAB_TEST_PG_PORT", PORT.to_string())
            .env("LAB_TEST_PG_TLS", "1")
            .output_guarded();
        assert!(out.status.success(), "postgres.sh {action}:\n{}", output_text(&out));
    }

    fn tls_file(&self, name: &str) -> PathBuf {
        self.dir.path().join("pg/tls").join(name)
    }

    fn password(&self) -> String {
        std::fs::read_to_string(self.tls_file("password"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// `postgresql://lab:PASSWORD@HOST:PORT/yelp?QUERY`.
    fn url(&self, host: &str, query: &str) -> String {
        format!("postgresql://lab:{}@{host}:{PORT}/yelp?{query}", self.password())
    }

    fn ca(&self) -> String {
        self.tls_file("ca.crt").display().to_string()
    }

    /// The serving tables, read as the superuser over the unix socket: a witness that does not
    /// go through the lab's TLS code.
    async fn socket_client(&self) -> tokio_postgres::Client {
        let socket_dir = self.dir.path().join("pg");
        let conn = format!("host={} port={PORT} user=postgres dbname=yelp", socket_dir.display());
        common::connect(&conn).await
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        self.script("stop");
    }
}

/// `lab check --pg URL`: connects and reads the serving tables; the output says why it could not.
fn check(prefix: &str, raw: &Path, state: &Path, url: &str, env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = stage_cmd(prefix, raw.as_os_str(), state, &["check", "--json", "--pg", url]);
    cmd.env_remove("PGPASSFILE").env("HOME", state);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output_guarded();
    (out.status.success(), output_text(&out))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tls_only_server_is_reached_as_its_sslmode_says_and_a_password_file_is_read() {
    let server = TlsPostgres::start();
    let state = tempfile::tempdir().unwrap();
    let raw = tempfile::tempdir().unwrap();
    let prefix = unique_prefix("pgtls");
    common::stream_sample_into(&prefix, raw.path().to_str().unwrap(), state.path());

    // The load over verify-full, read back over the socket.
    let full = server.url("127.0.0.1", &format!("sslmode=verify-full&sslrootcert={}", server.ca()));
    let mut batch = stage_cmd(
        &prefix,
        raw.path().as_os_str(),
        state.path(),
        &["batch", "--json", "--pg", &full],
    );
    run_ok(&mut batch);
    assert_tables_equal_reference(&server.socket_client().await, &reference(&sample_dir())).await;

    let run = |url: &str| check(&prefix, raw.path(), state.path(), url, &[]);
    let (ok, text) = run(&full);
    assert!(ok, "verify-full by the certificate's address: {text}");
    // The certificate names 127.0.0.1 only.
    let (ok, text) = run(&server.url("localhost", &format!("sslmode=verify-full&sslrootcert={}", server.ca())));
    assert!(
        !ok && text.contains("not valid for name"),
        "verify-full by another name: {text}"
    );
    let (ok, text) = run(&server.url("localhost", &format!("sslmode=verify-ca&sslrootcert={}", server.ca())));
    assert!(ok, "verify-ca ignores the name: {text}");
    // Without sslrootcert the public roots are trusted, and they did not sign this server.
    for mode in ["verify-full", "verify-ca"] {
        let (ok, text) = run(&server.url("127.0.0.1", &format!("sslmode={mode}")));
        assert!(!ok && text.contains("UnknownIssuer"), "{mode}, an unknown CA: {text}");
    }
    // libpq: `require` with a root certificate checks the chain; the server's own certificate
    // is not a CA that signed it.
    let (ok, text) = run(&server.url(
        "127.0.0.1",
        &format!(
            "sslmode=require&sslrootcert={}",
            server.tls_file("server.crt").display()
        ),
    ));
    assert!(
        !ok && text.contains("invalid peer certificate"),
        "require with a root that did not sign it: {text}"
    );
    let (ok, text) = run(&server.url("127.0.0.1", "sslmode=require"));
    assert!(ok, "require encrypts without checking: {text}");
    let (ok, text) = run(&server.url("127.0.0.1", "sslmode=disable"));
    assert!(
        !ok && text.contains("no encryption"),
        "the server refuses plain TCP: {text}"
    );
    let (ok, text) = run(&server.url("127.0.0.1", "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem"));
    assert!(
        !ok && text.contains("cannot read sslrootcert /nonexistent/ca.pem"),
        "{text}"
    );
    // The monitor's probe takes the same path.
    let probe = |url: &str| {
        let mut cmd = stage_cmd(
            &prefix,
            raw.path().as_os_str(),
            state.path(),
            &["status", "--require", "postgres", "--pg", url],
        );
        cmd.output_guarded().status.success()
    };
    assert!(probe(&full), "lab status sees PostgreSQL up over TLS");
    assert!(
        !probe(&server.url("127.0.0.1", "sslmode=disable")),
        "and down when it cannot connect"
    );

    // No password in the URL: the password file's line for this server gives it.
    let no_password = format!(
        "postgresql://lab@127.0.0.1:{PORT}/yelp?sslmode=verify-full&sslrootcert={}",
        server.ca()
    );
    let (ok, text) = run(&no_password);
    assert!(!ok && text.contains("password"), "no password anywhere: {text}");
    let passfile = state.path().join("pgpass");
    std::fs::write(
        &passfile,
        format!(
            "127.0.0.1:{PORT}:other:lab:wrong\n127.0.0.1:{PORT}:yelp:lab:{}\n",
            server.password()
        ),
    )
    .unwrap();
    set_mode(&passfile, 0o600);
    let file = passfile.display().to_string();
    let (ok, text) = check(
        &prefix,
        raw.path(),
        state.path(),
        &no_password,
        &[("PGPASSFILE", &file)],
    );
    assert!(ok, "PGPASSFILE: {text}");
    let (ok, text) = run(&format!("{no_password}&passfile={file}"));
    assert!(ok, "passfile=: {text}");
    // ~/.pgpass, as libpq reads it when nothing names a file.
    std::fs::copy(&passfile, state.path().join(".pgpass")).unwrap();
    set_mode(&state.path().join(".pgpass"), 0o600);
    let (ok, text) = run(&no_password);
    assert!(ok, "~/.pgpass: {text}");
    set_mode(&passfile, 0o644);
    let (ok, text) = run(&format!("{no_password}&passfile={file}"));
    assert!(
        !ok && text.contains("chmod 600"),
        "a password file others may read: {text}"
    );
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}
