//! The files the binary carries (packed by `build.rs`): the built-in stacks with everything they
//! mount or build from (stacks/, dags/, jobs/), the sample dataset (datasets/sample/), and the
//! lab's own source, which the Airflow scheduler's image compiles so its tasks run a `lab` built
//! for the container's platform (a binary built on the host may be a Mach-O, another CPU, or need
//! a newer glibc).
//!
//! Outside a checkout, a stack named on the command line, or the sample, is written out from here
//! into `<state>/bundle/<digest>/` and used from there; a `stacks/` or `datasets/sample/` of the
//! working directory, or a path given on the command line, still wins.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// A bundled file that could not be written out.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot {action} {path}: {cause} (check that the lab's state directory is writable)")]
    Io {
        action: &'static str,
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error(
        "this lab binary carries no {what} (it was built from a tree without it): run it from a bigdata-lab \
         checkout, or name the files on the command line"
    )]
    Missing { what: &'static str },
}

static BUNDLE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/bundle.tar"));

/// The prefixes of the lab's own source in the bundle: what `cargo build` needs and nothing else.
const SOURCE: &[&str] = &[
    ".cargo/config.toml",
    "Cargo.toml",
    "Cargo.lock",
    "build.rs",
    "src/",
    "sql/",
];
/// The prefixes of what the stacks read from disk.
const STACK_FILES: &[&str] = &["stacks/", "dags/", "jobs/"];
/// Where the sample dataset sits, in the bundle and in a checkout.
pub const SAMPLE_DIR: &str = "datasets/sample";

/// A file of the bundle: its path relative to the crate root, its mode and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundledFile {
    pub path: String,
    pub mode: u32,
    pub bytes: Vec<u8>,
}

/// Every file of the bundle, in path order.
#[must_use]
pub fn files() -> Vec<BundledFile> {
    let mut archive = tar::Archive::new(BUNDLE);
    let mut out = Vec::new();
    // The bundle is built into this binary by build.rs: it cannot be malformed unless the build is.
    for entry in archive.entries().expect("the bundled tar is readable") {
        let mut entry = entry.expect("a bundled tar entry");
        let path = entry.path().expect("a bundled path").to_string_lossy().into_owned();
        let mode = entry.header().mode().unwrap_or(0o644);
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).expect("a bundled file");
        out.push(BundledFile { path, mode, bytes });
    }
    out
}

fn under(path: &str, prefixes: &[&str]) -> bool {
    prefixes.iter().any(|p| {
        if p.ends_with('/') {
            path.starts_with(p)
        } else {
            path == *p
        }
    })
}

/// The lab's own source: enough for `cargo build --locked` in an image's builder stage.
#[must_use]
pub fn lab_source() -> Vec<BundledFile> {
    files().into_iter().filter(|f| under(&f.path, SOURCE)).collect()
}

/// A short digest of the whole bundle: the directory it is written out to.
#[must_use]
pub fn digest() -> String {
    Sha256::digest(BUNDLE)
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The names of the stacks the bundle carries (`stacks/<name>.toml`).
#[must_use]
pub fn stack_names() -> Vec<String> {
    files()
        .iter()
        .filter_map(|f| {
            f.path
                .strip_prefix("stacks/")?
                .strip_suffix(".toml")
                .map(str::to_string)
        })
        .filter(|n| !n.contains('/'))
        .collect()
}

/// Writes the stacks and the files they mount into `<state>/bundle/<digest>/` and returns the
/// stack file of `name` in it.
pub fn write_stack(state_dir: &Path, name: &str) -> Result<PathBuf, Error> {
    let root = write_part(state_dir, "stacks", STACK_FILES)?;
    Ok(root.join("stacks").join(format!("{name}.toml")))
}

/// Writes the sample dataset into `<state>/bundle/<digest>/datasets/sample/` and returns that
/// directory.
pub fn write_sample(state_dir: &Path) -> Result<PathBuf, Error> {
    let prefix = format!("{SAMPLE_DIR}/");
    let root = write_part(state_dir, "sample", &[prefix.as_str()])?;
    let dir = root.join(SAMPLE_DIR);
    if !dir.is_dir() {
        return Err(Error::Missing { what: "sample dataset" });
    }
    Ok(dir)
}

/// Writes the bundled files under `prefixes` into `<state>/bundle/<digest>/` once per bundle: a
/// part whose marker (`.complete-<part>`) is there is kept; a half-written one (a crash, a full
/// disk) is written again. Returns the directory.
fn write_part(state_dir: &Path, part: &str, prefixes: &[&str]) -> Result<PathBuf, Error> {
    let root = state_dir.join("bundle").join(digest());
    let done = root.join(format!(".complete-{part}"));
    if done.is_file() {
        return Ok(root);
    }
    for file in files().into_iter().filter(|f| under(&f.path, prefixes)) {
        write_under(&root, &file)?;
    }
    std::fs::create_dir_all(&root).map_err(io("create", &root))?;
    std::fs::write(&done, b"").map_err(io("write", &done))?;
    Ok(root)
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |cause| Error::Io { action, path, cause }
}

/// Writes a bundled file at its path under `root`, with its mode (read and execute bits only).
fn write_under(root: &Path, file: &BundledFile) -> Result<(), Error> {
    let path = root.join(&file.path);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io("create", parent))?;
    }
    std::fs::write(&path, &file.bytes).map_err(io("write", &path))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(file.mode & 0o755))
            .map_err(io("set the mode of", &path))?;
    }
    Ok(())
}

/// A build context as `docker compose` needs it for a build with `lab_source`: a copy of the
/// context directory with the lab's source under `source_dir/`, in `out` (replaced whole).
/// `lab up` sends the same files straight to the engine.
pub fn write_context_with_source(context: &Path, source_dir: &str, out: &Path) -> Result<(), Error> {
    if out.exists() {
        std::fs::remove_dir_all(out).map_err(io("clear", out))?;
    }
    fn copy(from: &Path, to: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let path = entry?.path();
            let target = to.join(path.file_name().unwrap_or_default());
            if path.is_dir() {
                copy(&path, &target)?;
            } else {
                std::fs::copy(&path, &target)?;
            }
        }
        Ok(())
    }
    copy(context, out).map_err(io("copy the build context to", out))?;
    for file in lab_source() {
        write_under(&out.join(source_dir), &file)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bundle is the checkout's files, byte for byte (so it cannot drift from what a
    /// checkout brings up), and it holds the source a builder stage compiles.
    #[test]
    fn the_bundle_is_the_checkouts_stacks_and_source() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let files = files();
        for must in [
            "stacks/lambda.toml",
            "stacks/minimal.toml",
            "stacks/cluster.toml",
            "stacks/images/airflow-spark/Dockerfile",
            "stacks/postgres-init/10-airflow-database.sql",
            "dags/yelp_batch.py",
            "jobs/batch_layer.py",
            ".cargo/config.toml",
            "Cargo.toml",
            "Cargo.lock",
            "build.rs",
            "src/main.rs",
            "src/lib.rs",
            "sql/postgres/schema.sql",
        ] {
            let f = files
                .iter()
                .find(|f| f.path == must)
                .unwrap_or_else(|| panic!("{must} is not bundled"));
            assert_eq!(
                f.bytes,
                std::fs::read(root.join(must)).unwrap(),
                "{must} differs from the checkout"
            );
        }
        assert!(
            !files.iter().any(|f| f.path.contains("/snapshots/")),
            "view snapshots are test data"
        );
        let source = lab_source();
        assert!(source.iter().all(|f| !f.path.starts_with("stacks/")));
        assert!(source.iter().any(|f| f.path == "src/bundle.rs"));
    }

    /// From an empty directory, the built-in stack is written out with every file it binds or
    /// builds from, so it loads and validates there.
    #[test]
    fn a_bundled_stack_is_written_out_whole_and_loads() {
        let state = tempfile::tempdir().unwrap();
        let path = write_stack(state.path(), "lambda").unwrap();
        let stack = crate::stack::Stack::load(&path).unwrap();
        for service in stack.services.values() {
            for m in &service.mounts {
                if let crate::stack::Mount::Bind { source, .. } = m {
                    assert!(
                        Path::new(source).exists(),
                        "{}: {source} was not written out",
                        service.name
                    );
                }
            }
            if let Some(b) = &service.build {
                assert!(Path::new(&b.context).join(&b.dockerfile).is_file(), "{}", service.name);
            }
        }
        // Written once: a second call finds the finished directory.
        assert_eq!(write_stack(state.path(), "lambda").unwrap(), path);
        assert_eq!(stack_names(), ["cluster", "lambda", "minimal"]);
    }

    /// The sample is written out byte for byte; a part left half-written (no marker) is written
    /// again, a finished one is kept.
    #[test]
    fn the_sample_is_written_out_whole_and_repaired() {
        let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join(SAMPLE_DIR);
        let state = tempfile::tempdir().unwrap();
        let dir = write_sample(state.path()).unwrap();
        let mut names: Vec<_> = std::fs::read_dir(&checkout)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names.len(), 5, "the five Yelp files");
        for name in &names {
            assert_eq!(
                std::fs::read(dir.join(name)).unwrap(),
                std::fs::read(checkout.join(name)).unwrap(),
                "{}",
                name.to_string_lossy()
            );
        }
        let reviews = dir.join("yelp_academic_dataset_review.json");
        // A crash half-way: a truncated file and no marker.
        std::fs::write(&reviews, b"{").unwrap();
        std::fs::remove_file(dir.parent().unwrap().parent().unwrap().join(".complete-sample")).unwrap();
        assert_eq!(write_sample(state.path()).unwrap(), dir);
        assert_eq!(
            std::fs::read(&reviews).unwrap(),
            std::fs::read(checkout.join("yelp_academic_dataset_review.json")).unwrap()
        );
        // Finished: kept as it is (a user's edit to it stays until the next build).
        std::fs::write(&reviews, b"edited").unwrap();
        assert_eq!(write_sample(state.path()).unwrap(), dir);
        assert_eq!(std::fs::read(&reviews).unwrap(), b"edited");
    }
}
