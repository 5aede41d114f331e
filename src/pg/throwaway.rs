//! A throwaway PostgreSQL cluster from the machine's own server binaries (initdb/pg_ctl),
//! on 127.0.0.1 and a free port, removed when dropped. Used by `lab demo` when no database is given.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::PgError;

pub struct ThrowawayPg {
    bin_dir: PathBuf,
    data_dir: PathBuf,
    root_dir: PathBuf,
    port: u16,
    run_as: Option<String>,
    version: String,
}

impl ThrowawayPg {
    /// Finds `initdb`/`pg_ctl`: on PATH, else the newest `/usr/lib/postgresql/*/bin`.
    #[must_use]
    pub fn find_binaries() -> Option<PathBuf> {
        let on_path = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths).find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
        });
        on_path.or_else(|| {
            let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
                .ok()?
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
                    let bin = e.path().join("bin");
                    bin.join("initdb").is_file().then_some((version, bin))
                })
                .collect();
            dirs.sort();
            dirs.pop().map(|(_, bin)| bin)
        })
    }

    /// Creates and starts a cluster. PostgreSQL refuses to run as root, so as root it runs as the
    /// `postgres` user (which must exist, as it does wherever the server package is installed).
    pub fn start(bin_dir: &Path) -> Result<Self, PgError> {
        let run_as = is_root().then(|| "postgres".to_string());
        let root_dir = std::env::temp_dir().join(format!("lab-pg-{}-{}", std::process::id(), rand::random::<u32>()));
        let data_dir = root_dir.join("data");
        std::fs::create_dir_all(&root_dir)
            .map_err(|e| PgError::Other(format!("cannot create {}: {e}", root_dir.display())))?;
        let mut pg = ThrowawayPg {
            bin_dir: bin_dir.to_path_buf(),
            data_dir,
            root_dir,
            port: free_port()?,
            run_as,
            version: String::new(),
        };
        if let Some(user) = &pg.run_as {
            run(
                Command::new("chown").arg(user).arg(&pg.root_dir),
                "give the data directory to the postgres user",
            )?;
        }
        // `postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)` → `15.18`
        pg.version = String::from_utf8_lossy(
            &pg.command("postgres")
                .arg("--version")
                .output()
                .map(|o| o.stdout)
                .unwrap_or_default(),
        )
        .split_whitespace()
        .nth(2)
        .unwrap_or("(unknown version)")
        .to_string();
        run(
            pg.command("initdb")
                .args([
                    "-A",
                    "trust",
                    "--no-sync",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--locale",
                    "C",
                    "-D",
                ])
                .arg(&pg.data_dir),
            "initdb",
        )?;
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off",
            pg.port,
            pg.root_dir.display()
        );
        run(
            pg.command("pg_ctl")
                .arg("-D")
                .arg(&pg.data_dir)
                .arg("-l")
                .arg(pg.root_dir.join("log"))
                .args(["-w", "-o", &options, "start"]),
            "pg_ctl start",
        )?;
        tracing::info!(port = pg.port, dir = %pg.root_dir.display(), "throwaway postgres started");
        Ok(pg)
    }

    /// Connection string (trust auth on loopback: no password).
    #[must_use]
    pub fn url(&self) -> String {
        format!("host=127.0.0.1 port={} user=postgres dbname=postgres", self.port)
    }

    #[must_use]
    pub fn describe(&self) -> String {
        format!(
            "throwaway PostgreSQL {} on 127.0.0.1:{} (removed on exit)",
            self.version, self.port
        )
    }

    fn command(&self, program: &str) -> Command {
        let exe = self.bin_dir.join(program);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        // runuser complains when the working directory is not readable by the target user.
        cmd.current_dir(std::env::temp_dir()).stdin(Stdio::null());
        cmd
    }
}

impl Drop for ThrowawayPg {
    fn drop(&mut self) {
        let stop = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
        if let Err(e) = stop {
            tracing::warn!(error = %e, "could not stop the throwaway postgres");
        }
        if let Err(e) = std::fs::remove_dir_all(&self.root_dir) {
            tracing::warn!(error = %e, "could not remove the throwaway postgres directory");
        }
    }
}

fn run(cmd: &mut Command, what: &str) -> Result<(), PgError> {
    let out = cmd
        .output()
        .map_err(|e| PgError::Other(format!("{what}: cannot run: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(PgError::Other(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        )))
    }
}

fn free_port() -> Result<u16, PgError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| PgError::Other(format!("no free port on 127.0.0.1: {e}")))
}

fn is_root() -> bool {
    // The real uid, from /proc, to avoid unsafe libc calls.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .map(|u| u == "0")
        })
        .unwrap_or(false)
}
