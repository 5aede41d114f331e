//! Packs the files the lab needs outside its own process into one tar that the binary carries
//! (`src/bundle.rs`): the built-in stacks with every file they mount or build from (stacks/,
//! dags/, jobs/), the sample dataset (datasets/sample/, 1.2 MB), and the lab's own source
//! (Cargo.toml, Cargo.lock, .cargo/config.toml, this file, src/, sql/), from which the Airflow
//! scheduler's image builds the `lab` its tasks run. So `cargo install` or a copied binary brings
//! a whole stack up, and runs `lab demo`, from any directory, on any host the engine runs.
//!
//! The tar is deterministic (sorted paths, no times or owners): the same tree gives the same bytes,
//! so the image built from it is rebuilt only when the source really changed.

use std::path::{Path, PathBuf};

/// What the bundle holds, relative to the crate root: files, and directories taken whole.
const ROOTS: &[&str] = &[
    ".cargo/config.toml",
    "Cargo.toml",
    "Cargo.lock",
    "build.rs",
    "src",
    "sql",
    "stacks",
    "dags",
    "jobs",
    // Not in the Airflow image's copy of the source (its tasks never send the sample): there the
    // walk finds no such directory and the binary carries none.
    "datasets/sample",
];

/// Directories never worth carrying: view snapshots (test data), Python caches.
const SKIP_DIRS: &[&str] = &["snapshots", "__pycache__"];

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if path.is_dir() {
            if !SKIP_DIRS.contains(&name) {
                walk(root, &path, out);
            }
        } else if path.is_file() && !name.ends_with(".pyc") {
            let rel = path.strip_prefix(root).expect("under the crate root");
            out.push((rel.to_string_lossy().replace('\\', "/"), path));
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for entry in ROOTS {
        let path = root.join(entry);
        println!("cargo:rerun-if-changed={entry}");
        if path.is_dir() {
            walk(&root, &path, &mut files);
        } else if path.is_file() {
            files.push(((*entry).to_string(), path));
        }
    }
    files.sort();
    let mut tar = tar::Builder::new(Vec::new());
    for (rel, path) in files {
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(if is_executable(&path) { 0o755 } else { 0o644 });
        header.set_mtime(0);
        header.set_cksum();
        tar.append_data(&mut header, &rel, bytes.as_slice())
            .unwrap_or_else(|e| panic!("pack {rel}: {e}"));
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("bundle.tar");
    std::fs::write(&out, tar.into_inner().expect("finish the bundle"))
        .unwrap_or_else(|e| panic!("write {}: {e}", out.display()));
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(_: &Path) -> bool {
    false
}
