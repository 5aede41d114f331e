//! Images a stack builds itself (`build` in a stack file). The context directory is read once per
//! `lab up`: its digest decides whether the image must be (re)built, and its tar goes to the
//! engine's classic builder. The built image carries the digest as a label, so an unchanged
//! context is never rebuilt, and a changed one always is.

use std::collections::{HashMap, VecDeque};
use std::path::Path;

use bollard::query_parameters::BuildImageOptionsBuilder;
use futures::StreamExt;
use sha2::{Digest, Sha256};

use super::{Engine, Error, FAILURE_LOG_LINES, PullPolicy, api, is_not_found, pull::engine_message};
use crate::bundle;
use crate::runtime::events::{Events, StackEvent};
use crate::stack::{Build, ImageRef, LABEL_BUILD_HASH};

/// Largest context `lab up` sends. A build context is a Dockerfile and a few small files; more
/// than this means `build.context` names the wrong directory (a whole repository, a data dir).
const MAX_CONTEXT_BYTES: u64 = 64 << 20;

/// A build context as read from disk: what identifies it, and what the engine receives.
struct Context {
    digest: String,
    tar: Vec<u8>,
}

/// The files under `dir`, by path relative to it, in a fixed (sorted) order; symlinks followed.
fn files_under(dir: &Path) -> std::io::Result<Vec<(String, std::path::PathBuf)>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, std::path::PathBuf)>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if std::fs::metadata(&path)?.is_dir() {
                walk(root, &path, out)?;
            } else if let Ok(rel) = path.strip_prefix(root) {
                out.push((rel.to_string_lossy().into_owned(), path));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}

fn read_context(build: &Build) -> std::io::Result<Context> {
    use std::os::unix::fs::PermissionsExt;
    let dir = Path::new(&build.context);
    if !std::fs::metadata(dir)?.is_dir() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a directory"));
    }
    let files = files_under(dir)?;
    if !files
        .iter()
        .any(|(rel, _)| Path::new(rel) == Path::new(&build.dockerfile))
    {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("it has no {}", build.dockerfile),
        ));
    }
    let mut hasher = Sha256::new();
    hasher.update(build.dockerfile.as_bytes());
    let mut tar = tar::Builder::new(Vec::new());
    let mut total = 0u64;
    let mut add = |rel: &str, mode: u32, bytes: &[u8]| -> std::io::Result<()> {
        total += bytes.len() as u64;
        if total > MAX_CONTEXT_BYTES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "it holds more than {} MiB; point build.context at a directory with only what the image needs",
                    MAX_CONTEXT_BYTES >> 20
                ),
            ));
        }
        for part in [
            rel.as_bytes(),
            &mode.to_le_bytes(),
            &(bytes.len() as u64).to_le_bytes(),
            bytes,
        ] {
            hasher.update(part);
        }
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(mode);
        header.set_cksum();
        tar.append_data(&mut header, rel, bytes)
    };
    for (rel, path) in files {
        let bytes = std::fs::read(&path)?;
        add(&rel, std::fs::metadata(&path)?.permissions().mode() & 0o777, &bytes)?;
    }
    // The lab's own source, as this binary carries it (crate::bundle), for a builder stage.
    if let Some(dir) = &build.lab_source {
        for file in bundle::lab_source() {
            add(&format!("{dir}/{}", file.path), file.mode & 0o777, &file.bytes)?;
        }
    }
    let digest = hasher.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect();
    Ok(Context {
        digest,
        tar: tar.into_inner()?,
    })
}

/// `Step 2/5 : COPY …` (the classic builder's step header) → (2, 5).
fn step_of(line: &str) -> Option<(u32, u32)> {
    let rest = line.strip_prefix("Step ")?;
    let (counts, _) = rest.split_once(" : ")?;
    let (n, of) = counts.split_once('/')?;
    Some((n.parse().ok()?, of.parse().ok()?))
}

impl Engine {
    /// Builds `image` from `build` unless an image built from the same context is already here
    /// (`always` rebuilds, pulling fresh base images).
    pub(super) async fn ensure_built(
        &self,
        image: &ImageRef,
        build: &Build,
        services: &[String],
        policy: PullPolicy,
        events: &Events,
    ) -> Result<(), Error> {
        let name = image.to_string();
        let context = read_context(build).map_err(|cause| Error::BuildContext {
            image: name.clone(),
            context: build.context.clone(),
            cause: cause.to_string(),
        })?;
        if policy != PullPolicy::Always && self.build_hash(&name).await?.as_deref() == Some(context.digest.as_str()) {
            events.send(StackEvent::ImagePresent { image: name });
            return Ok(());
        }
        events.send(StackEvent::BuildStarted {
            image: name.clone(),
            services: services.to_vec(),
        });
        let mut output: VecDeque<String> = VecDeque::new();
        let failed = |reason: String, output: &VecDeque<String>| Error::BuildFailed {
            image: name.clone(),
            services: services.join(", "),
            context: build.context.clone(),
            reason,
            output: output.iter().cloned().collect(),
        };
        let labels = HashMap::from([(LABEL_BUILD_HASH, context.digest.as_str())]);
        let mut options = BuildImageOptionsBuilder::default()
            .dockerfile(&build.dockerfile)
            .t(&name)
            .rm(true)
            .forcerm(true)
            .labels(&labels);
        if policy == PullPolicy::Always {
            options = options.pull("1");
        }
        let mut stream = self
            .docker
            .build_image(options.build(), None, Some(bollard::body_full(context.tar.into())));
        let mut step = None;
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| failed(engine_message(e), &output))?;
            if let Some(detail) = info.error_detail {
                return Err(failed(
                    detail.message.unwrap_or_else(|| "unknown error".into()),
                    &output,
                ));
            }
            for line in info.stream.iter().flat_map(|s| s.lines()) {
                let line = line.trim_end();
                if line.is_empty() {
                    continue;
                }
                step = step_of(line).or(step);
                if output.len() == FAILURE_LOG_LINES {
                    output.pop_front();
                }
                output.push_back(line.to_string());
                events.send(StackEvent::Building {
                    image: name.clone(),
                    step,
                    line: line.to_string(),
                });
            }
        }
        if self.build_hash(&name).await?.as_deref() != Some(context.digest.as_str()) {
            return Err(failed(
                "the engine reported no error, but no image with this context's label was tagged".into(),
                &output,
            ));
        }
        events.send(StackEvent::Built { image: name });
        Ok(())
    }

    /// The build-context digest an image was built from, if it is here and `lab up` built it.
    async fn build_hash(&self, image: &str) -> Result<Option<String>, Error> {
        match self.docker.inspect_image(image).await {
            Ok(info) => Ok(info
                .config
                .and_then(|c| c.labels)
                .and_then(|mut l| l.remove(LABEL_BUILD_HASH))),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(api(format!("inspect image {image}"))(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build_in(dir: &Path) -> Build {
        Build {
            context: dir.to_string_lossy().into_owned(),
            dockerfile: "Dockerfile".into(),
            lab_source: None,
        }
    }

    /// With `lab_source`, the context carries the lab's source under that directory, as the
    /// binary has it, and its digest differs from the bare context's.
    #[test]
    fn a_context_with_the_lab_source_carries_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM x:1\nCOPY lab-src/ /src/\n").unwrap();
        let bare = read_context(&build_in(dir.path())).unwrap();
        let with = read_context(&Build {
            lab_source: Some("lab-src".into()),
            ..build_in(dir.path())
        })
        .unwrap();
        assert_ne!(bare.digest, with.digest);
        let mut archive = tar::Archive::new(with.tar.as_slice());
        let mut lock = None;
        let mut names = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            if name == "lab-src/Cargo.lock" {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
                lock = Some(text);
            }
            names.push(name);
        }
        let checkout = Path::new(env!("CARGO_MANIFEST_DIR"));
        assert_eq!(
            lock.unwrap(),
            std::fs::read_to_string(checkout.join("Cargo.lock")).unwrap()
        );
        for must in [
            "Dockerfile",
            "lab-src/Cargo.toml",
            "lab-src/src/main.rs",
            "lab-src/sql/postgres/schema.sql",
        ] {
            assert!(names.iter().any(|n| n == must), "{must} missing from {names:?}");
        }
        assert!(
            !names.iter().any(|n| n.starts_with("lab-src/stacks/")),
            "only the source"
        );
    }

    #[test]
    fn step_headers_parse() {
        assert_eq!(
            step_of("Step 2/5 : COPY --from=spark /opt/spark /opt/spark"),
            Some((2, 5))
        );
        assert_eq!(step_of(" ---> 1a2b3c"), None);
        assert_eq!(step_of("Step x/5 : RUN true"), None);
    }

    #[test]
    fn the_digest_follows_names_modes_and_contents() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM x:1\nCOPY a /a\n").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/a"), "one").unwrap();
        let build = build_in(dir.path());
        let first = read_context(&build).unwrap();
        assert_eq!(read_context(&build).unwrap().digest, first.digest, "stable");
        let mut names: Vec<String> = tar::Archive::new(first.tar.as_slice())
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["Dockerfile", "sub/a"]);

        std::fs::write(dir.path().join("sub/a"), "two").unwrap();
        let edited = read_context(&build).unwrap().digest;
        assert_ne!(edited, first.digest, "content");
        std::fs::set_permissions(dir.path().join("sub/a"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let chmod = read_context(&build).unwrap().digest;
        assert_ne!(chmod, edited, "mode");
        std::fs::rename(dir.path().join("sub/a"), dir.path().join("sub/b")).unwrap();
        assert_ne!(read_context(&build).unwrap().digest, chmod, "name");
    }

    #[test]
    fn a_context_without_its_dockerfile_or_missing_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("other"), "x").unwrap();
        let err = read_context(&build_in(dir.path())).err().unwrap();
        assert!(err.to_string().contains("it has no Dockerfile"), "{err}");
        assert!(read_context(&build_in(&dir.path().join("gone"))).is_err());
    }
}
