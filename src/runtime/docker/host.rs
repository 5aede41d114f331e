//! Which Docker engine to talk to, found the way the docker CLI finds it, so Docker Desktop,
//! colima, OrbStack, Podman's socket and a remote engine work without flags (docker/cli
//! `cli/command/cli.go`, resolveContextName: DOCKER_HOST, then DOCKER_CONTEXT, then
//! `currentContext` of `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`), then the
//! default socket). A context's endpoint is in `contexts/meta/<sha256 of its name>/meta.json`
//! (`Endpoints.docker.Host`) under the same config directory.
//!
//! Pure: the environment and the home directory come in as arguments, so the tests give fixture
//! config files.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The engine's address and how it was found (`lab doctor` says both).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineHost {
    /// `unix:///path`, `tcp://host:port`, `ssh://…`, as the user configured it.
    pub url: String,
    /// "DOCKER_HOST", "context colima (DOCKER_CONTEXT)", "context desktop-linux (~/.docker/config.json)", "the default socket".
    pub found_by: String,
}

/// The socket the docker CLI uses when nothing else is configured.
pub const DEFAULT_SOCKET: &str = "unix:///var/run/docker.sock";

/// Sockets of the engines people run on macOS and Linux desktops, relative to the home directory
/// (their own docs: Docker Desktop, colima, OrbStack, rootless Docker under XDG_RUNTIME_DIR is
/// handled by its context). Offered when the default socket is not there.
const KNOWN_SOCKETS: &[&str] = &[
    ".docker/run/docker.sock",
    ".colima/default/docker.sock",
    ".orbstack/run/docker.sock",
];

/// `unix:///path (from context colima (~/.docker/config.json))`: the address and how it was found.
impl std::fmt::Display for EngineHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (from {})", self.url, self.found_by)
    }
}

impl EngineHost {
    /// The engine runs on this machine (a unix socket, or TCP on loopback), so the ports it
    /// publishes on 127.0.0.1 are this machine's.
    #[must_use]
    pub fn is_local(&self) -> bool {
        let url = self.url.as_str();
        if url.starts_with("unix://") || url.starts_with("npipe://") {
            return true;
        }
        let Some(rest) = url.strip_prefix("tcp://").or_else(|| url.strip_prefix("http://")) else {
            return false;
        };
        let host = rest.rsplit_once(':').map_or(rest, |(h, _)| h);
        matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "::1")
    }

    /// The socket path of a `unix://` address.
    #[must_use]
    pub fn socket_path(&self) -> Option<&str> {
        self.url.strip_prefix("unix://")
    }
}

/// The docker CLI's config directory: `$DOCKER_CONFIG`, else `~/.docker`.
fn config_dir(env: &dyn Fn(&str) -> Option<String>, home: Option<&Path>) -> Option<PathBuf> {
    env("DOCKER_CONFIG")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| home.map(|h| h.join(".docker")))
}

fn shown(path: &Path, home: Option<&Path>) -> String {
    match home.and_then(|h| path.strip_prefix(h).ok()) {
        Some(rel) => format!("~/{}", rel.display()),
        None => path.display().to_string(),
    }
}

/// Finds the engine: `DOCKER_HOST`, else the context named by `DOCKER_CONTEXT` or the config
/// file's `currentContext`, else the default socket. An error names the file that is wrong.
pub fn resolve(env: &dyn Fn(&str) -> Option<String>, home: Option<&Path>) -> Result<EngineHost, String> {
    if let Some(url) = env("DOCKER_HOST").filter(|h| !h.is_empty()) {
        return Ok(EngineHost {
            url,
            found_by: "DOCKER_HOST".into(),
        });
    }
    let dir = config_dir(env, home);
    let (context, from) = match env("DOCKER_CONTEXT").filter(|c| !c.is_empty()) {
        Some(c) => (Some(c), "DOCKER_CONTEXT".to_string()),
        None => match &dir {
            Some(dir) => {
                let file = dir.join("config.json");
                (current_context(&file)?, shown(&file, home))
            }
            None => (None, String::new()),
        },
    };
    match context.filter(|c| c != "default") {
        Some(name) => {
            let dir = dir
                .ok_or_else(|| format!("context {name:?} is selected, but there is no home directory to find it in"))?;
            let url = context_endpoint(&dir, &name, home)?;
            Ok(EngineHost {
                url,
                found_by: format!("context {name} ({from})"),
            })
        }
        None => Ok(EngineHost {
            url: DEFAULT_SOCKET.into(),
            found_by: "the default socket".into(),
        }),
    }
}

/// `currentContext` of the CLI's config file; none when the file or the key is absent.
fn current_context(file: &Path) -> Result<Option<String>, String> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
    };
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not valid JSON: {e}", file.display()))?;
    Ok(json
        .get("currentContext")
        .and_then(|c| c.as_str())
        .filter(|c| !c.is_empty())
        .map(str::to_string))
}

/// The docker endpoint of context `name`: `contexts/meta/<sha256(name)>/meta.json`.
fn context_endpoint(config_dir: &Path, name: &str, home: Option<&Path>) -> Result<String, String> {
    let digest: String = Sha256::digest(name.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let meta = config_dir.join("contexts").join("meta").join(&digest).join("meta.json");
    let text = std::fs::read_to_string(&meta).map_err(|e| {
        format!(
            "Docker context {name:?} is selected but {} cannot be read ({e}); list the contexts with `docker context ls` and pick one with `docker context use NAME`",
            shown(&meta, home)
        )
    })?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not valid JSON: {e}", shown(&meta, home)))?;
    let endpoint = &json["Endpoints"]["docker"];
    let host = endpoint["Host"].as_str().filter(|h| !h.is_empty()).ok_or_else(|| {
        format!(
            "Docker context {name:?} ({}) has no Endpoints.docker.Host",
            shown(&meta, home)
        )
    })?;
    let tls = config_dir.join("contexts").join("tls").join(&digest).join("docker");
    if tls.is_dir() {
        return Err(format!(
            "Docker context {name:?} talks TLS to {host} ({} holds its certificates); lab speaks plain HTTP to a local \
             socket or loopback only: use a context with a unix socket, or tunnel the engine to one \
             (`ssh -L /tmp/docker.sock:/var/run/docker.sock HOST`, then DOCKER_HOST=unix:///tmp/docker.sock)",
            shown(&tls, home)
        ));
    }
    Ok(host.to_string())
}

/// Engine sockets that exist under the home directory, as `unix://` addresses (for the error that
/// says the default socket is missing).
#[must_use]
pub fn sockets_found(home: Option<&Path>) -> Vec<String> {
    let Some(home) = home else { return Vec::new() };
    KNOWN_SOCKETS
        .iter()
        .map(|rel| home.join(rel))
        .filter(|p| p.exists())
        .map(|p| format!("unix://{}", p.display()))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    /// A docker CLI config dir with `currentContext` and the contexts' meta.json files, laid out
    /// as `docker context create` writes them.
    fn config(home: &Path, current: Option<&str>, contexts: &[(&str, &str)]) {
        let dir = home.join(".docker");
        std::fs::create_dir_all(&dir).unwrap();
        if let Some(c) = current {
            std::fs::write(
                dir.join("config.json"),
                format!(r#"{{"auths":{{}},"currentContext":"{c}"}}"#),
            )
            .unwrap();
        }
        for (name, host) in contexts {
            let digest: String = Sha256::digest(name.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let meta = dir.join("contexts/meta").join(digest);
            std::fs::create_dir_all(&meta).unwrap();
            std::fs::write(
                meta.join("meta.json"),
                format!(
                    r#"{{"Name":"{name}","Metadata":{{"Description":"fixture"}},"Endpoints":{{"docker":{{"Host":"{host}","SkipTLSVerify":false}}}}}}"#
                ),
            )
            .unwrap();
        }
    }

    #[test]
    fn the_context_digest_is_the_clis() {
        // docker/cli's store names a context's directory by the SHA-256 of its name.
        let digest: String = Sha256::digest(b"default").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            digest,
            "37a8eec1ce19687d132fe29051dca629d164e2c4958ba141d5f4133a33f0688f"
        );
    }

    #[test]
    fn docker_host_wins_then_docker_context_then_the_config_file_then_the_default() {
        let home = tempfile::tempdir().unwrap();
        let h = Some(home.path());
        config(
            home.path(),
            Some("desktop-linux"),
            &[
                ("desktop-linux", "unix:///Users/me/.docker/run/docker.sock"),
                ("colima", "unix:///Users/me/.colima/default/docker.sock"),
            ],
        );
        let got = resolve(
            &env_of(&[("DOCKER_HOST", "tcp://127.0.0.1:2375"), ("DOCKER_CONTEXT", "colima")]),
            h,
        )
        .unwrap();
        assert_eq!(
            (got.url.as_str(), got.found_by.as_str()),
            ("tcp://127.0.0.1:2375", "DOCKER_HOST")
        );
        let got = resolve(&env_of(&[("DOCKER_CONTEXT", "colima")]), h).unwrap();
        assert_eq!(got.url, "unix:///Users/me/.colima/default/docker.sock");
        assert_eq!(got.found_by, "context colima (DOCKER_CONTEXT)");
        let got = resolve(&env_of(&[]), h).unwrap();
        assert_eq!(got.url, "unix:///Users/me/.docker/run/docker.sock");
        assert_eq!(got.found_by, "context desktop-linux (~/.docker/config.json)");
        // "default" is the default socket, whatever selected it.
        let got = resolve(&env_of(&[("DOCKER_CONTEXT", "default")]), h).unwrap();
        assert_eq!(
            (got.url.as_str(), got.found_by.as_str()),
            (DEFAULT_SOCKET, "the default socket")
        );
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(resolve(&env_of(&[]), Some(empty.path())).unwrap().url, DEFAULT_SOCKET);
    }

    #[test]
    fn docker_config_moves_the_config_dir() {
        let home = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        config(elsewhere.path(), Some("remote"), &[("remote", "tcp://10.0.0.5:2375")]);
        let cfg = elsewhere.path().join(".docker");
        let got = resolve(&env_of(&[("DOCKER_CONFIG", cfg.to_str().unwrap())]), Some(home.path())).unwrap();
        assert_eq!(got.url, "tcp://10.0.0.5:2375");
        assert!(!got.is_local());
    }

    #[test]
    fn a_broken_or_tls_context_is_an_error_that_names_the_fix() {
        let home = tempfile::tempdir().unwrap();
        config(home.path(), Some("gone"), &[]);
        let err = resolve(&env_of(&[]), Some(home.path())).unwrap_err();
        assert!(err.contains("\"gone\"") && err.contains("docker context use"), "{err}");

        config(home.path(), Some("secure"), &[("secure", "tcp://build.example:2376")]);
        let digest: String = Sha256::digest(b"secure").iter().map(|b| format!("{b:02x}")).collect();
        std::fs::create_dir_all(home.path().join(".docker/contexts/tls").join(digest).join("docker")).unwrap();
        let err = resolve(&env_of(&[]), Some(home.path())).unwrap_err();
        assert!(err.contains("TLS") && err.contains("ssh -L"), "{err}");

        std::fs::write(home.path().join(".docker/config.json"), "{not json").unwrap();
        assert!(
            resolve(&env_of(&[]), Some(home.path()))
                .unwrap_err()
                .contains("not valid JSON")
        );
    }

    #[test]
    fn local_means_a_socket_or_loopback() {
        let host = |url: &str| EngineHost {
            url: url.into(),
            found_by: String::new(),
        };
        for local in [
            "unix:///var/run/docker.sock",
            "tcp://127.0.0.1:2375",
            "tcp://localhost:2375",
            "http://[::1]:2375",
        ] {
            assert!(host(local).is_local(), "{local}");
        }
        for remote in ["tcp://10.0.0.5:2375", "ssh://me@build", "tcp://127.0.0.1.example:2375"] {
            assert!(!host(remote).is_local(), "{remote}");
        }
    }

    #[test]
    fn known_sockets_under_home_are_offered() {
        let home = tempfile::tempdir().unwrap();
        assert!(sockets_found(Some(home.path())).is_empty());
        std::fs::create_dir_all(home.path().join(".colima/default")).unwrap();
        std::fs::write(home.path().join(".colima/default/docker.sock"), "").unwrap();
        assert_eq!(
            sockets_found(Some(home.path())),
            [format!(
                "unix://{}",
                home.path().join(".colima/default/docker.sock").display()
            )]
        );
    }
}
