//! Per-lab generated secrets: `<state>/secrets/NAME`, mode 0600, created once and reused on every
//! later `lab up`, so passwords baked into volumes (PostgreSQL) keep matching. Never logged.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use rand::Rng;
use rand::distr::Alphanumeric;

use super::Error;

/// Long enough for Airflow's JWT secret (it warns under 64 bytes); alphanumeric so it is safe in URLs.
pub const SECRET_LEN: usize = 64;

/// A secret whose name ends so is generated as a Fernet key, the only form Airflow accepts for
/// `AIRFLOW__CORE__FERNET_KEY`: 32 random bytes, URL-safe base64 with padding (44 characters),
/// as `cryptography.fernet.Fernet.generate_key()` makes it.
pub const FERNET_SUFFIX: &str = "fernet_key";

fn generate(name: &str) -> String {
    if name.ends_with(FERNET_SUFFIX) {
        use base64::Engine as _;
        let key: [u8; 32] = rand::rng().random();
        base64::engine::general_purpose::URL_SAFE.encode(key)
    } else {
        rand::rng()
            .sample_iter(&Alphanumeric)
            .take(SECRET_LEN)
            .map(char::from)
            .collect()
    }
}

/// Whether a stored value has the form its name asks for (a file edited by hand, or written by an
/// older lab before the name meant a Fernet key, would otherwise reach Airflow and fail there).
fn well_formed(name: &str, value: &str) -> bool {
    if name.ends_with(FERNET_SUFFIX) {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE
            .decode(value)
            .is_ok_and(|key| key.len() == 32)
    } else {
        !value.is_empty()
    }
}

#[must_use]
pub fn secrets_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("secrets")
}

#[must_use]
pub fn secret_path(state_dir: &Path, name: &str) -> PathBuf {
    secrets_dir(state_dir).join(name)
}

/// Reads each named secret, generating the missing ones.
pub fn ensure(state_dir: &Path, names: &BTreeSet<String>) -> Result<BTreeMap<String, String>, Error> {
    let dir = secrets_dir(state_dir);
    create_private_dir(&dir)?;
    let mut values = BTreeMap::new();
    for name in names {
        let path = dir.join(name);
        let value = match std::fs::read_to_string(&path) {
            Ok(v) => v.trim_end_matches('\n').to_string(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let v = generate(name);
                write_private(&path, v.as_bytes())?;
                tracing::info!(secret = %name, path = %path.display(), "generated a secret");
                v
            }
            Err(cause) => {
                return Err(Error::Io {
                    action: "read",
                    path,
                    cause,
                });
            }
        };
        if !well_formed(name, &value) {
            let what = if name.ends_with(FERNET_SUFFIX) {
                "is not a Fernet key (32 bytes in URL-safe base64)"
            } else {
                "is empty"
            };
            return Err(Error::Secret {
                name: name.clone(),
                reason: format!("{} {what}; delete it to generate a new one", path.display()),
            });
        }
        values.insert(name.clone(), value);
    }
    Ok(values)
}

/// Writes a file only its owner can read (created with 0600, never world-readable in between).
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), Error> {
    let io = |cause| Error::Io {
        action: "write",
        path: path.to_path_buf(),
        cause,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let mut file = options.open(path).map_err(io)?;
        // An existing file keeps its old mode on open: tighten it.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io)?;
        file.write_all(contents).map_err(io)?;
    }
    #[cfg(not(unix))]
    {
        let mut file = options.open(path).map_err(io)?;
        file.write_all(contents).map_err(io)?;
    }
    Ok(())
}

fn create_private_dir(dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|cause| Error::Io {
        action: "create",
        path: dir.to_path_buf(),
        cause,
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|cause| Error::Io {
            action: "restrict",
            path: dir.to_path_buf(),
            cause,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `*fernet_key` secrets are keys Airflow's Fernet accepts; a stored value that is not one is
    /// refused with the fix, never handed to the containers.
    #[test]
    fn fernet_keys_are_generated_and_checked_as_such() {
        use base64::Engine as _;
        let dir = tempfile::tempdir().unwrap();
        let names = BTreeSet::from(["airflow_fernet_key".to_string()]);
        let key = ensure(dir.path(), &names).unwrap()["airflow_fernet_key"].clone();
        assert_eq!(key.len(), 44, "{key}");
        let raw = base64::engine::general_purpose::URL_SAFE.decode(&key).unwrap();
        assert_eq!(raw.len(), 32);
        assert!(
            key.chars().all(|c| c.is_ascii_alphanumeric() || "-_=".contains(c)),
            "{key}"
        );
        assert_ne!(
            key,
            ensure(tempfile::tempdir().unwrap().path(), &names).unwrap()["airflow_fernet_key"],
            "random"
        );
        write_private(
            &secret_path(dir.path(), "airflow_fernet_key"),
            b"plain-alphanumeric-secret",
        )
        .unwrap();
        let err = ensure(dir.path(), &names).unwrap_err().to_string();
        assert!(
            err.contains("is not a Fernet key") && err.contains("delete it"),
            "{err}"
        );
    }

    #[test]
    fn generates_once_private_and_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let names = BTreeSet::from(["pg_pw".to_string(), "jwt".to_string()]);
        let first = ensure(dir.path(), &names).unwrap();
        assert_eq!(first["pg_pw"].len(), SECRET_LEN);
        assert_ne!(first["pg_pw"], first["jwt"]);
        assert!(first["pg_pw"].chars().all(|c| c.is_ascii_alphanumeric()));
        let again = ensure(dir.path(), &names).unwrap();
        assert_eq!(first, again);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(secret_path(dir.path(), "pg_pw"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
