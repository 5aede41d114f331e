//! A deterministic generator of Yelp-format datasets, for labs and tests without the 9 GB download.
//!
//! The output has the layout of the official files (field order, number formats, `\/` escapes,
//! string-encoded quirks) and is referentially consistent: reviews and tips name existing
//! businesses and users, friends are existing users, every business's `review_count` and `stars`
//! and every user's `review_count` and `average_stars` agree with the reviews written. The same
//! seed gives the same bytes on every platform and with every crate version, because the
//! generator uses its own PRNG and no floating-point function whose result is platform-dependent
//! (only `+ - * /` and `sqrt`, which IEEE 754 rounds exactly; no `ln`, `exp` or `powf`).

mod calendar;
mod invalid;
mod rng;
#[cfg(test)]
mod tests;
mod text;
mod vocab;
mod world;

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Serialize, Serializer};

use super::Entity;
use world::World;

/// Largest `reviews` accepted: memory grows with the number of users (≈ 30 bytes each), and
/// 50 million reviews (7× the real dataset) already needs ≈ 0.5 GB.
pub const MAX_REVIEWS: u64 = 50_000_000;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GenerateOptions {
    /// Number of review lines; every other file is sized from it like the real dataset.
    pub reviews: u64,
    pub seed: u64,
    /// Fraction (0–1) of review and tip lines replaced by malformed ones, to exercise dead-lettering.
    pub invalid_rate: f64,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            reviews: 10_000,
            seed: 42,
            invalid_rate: 0.0,
        }
    }
}

/// Why generation failed. Nothing is left behind: partially written files are removed.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("invalid rate {0} is not a fraction between 0 and 1 (use e.g. 0.01 for 1 %)")]
    InvalidRate(f64),

    #[error(
        "{requested} reviews is more than the generator supports ({MAX_REVIEWS}); the real dataset has about 7 million"
    )]
    TooManyReviews { requested: u64 },

    #[error("cannot create the output directory {}: {source}", path.display())]
    CreateDir { path: PathBuf, source: io::Error },

    #[error("cannot write {}: {source}; check free disk space and permissions", path.display())]
    Write { path: PathBuf, source: io::Error },

    #[error("cannot move {} into place as {}: {source}", from.display(), to.display())]
    Rename {
        from: PathBuf,
        to: PathBuf,
        source: io::Error,
    },
}

/// The kinds of malformed line `invalid_rate` injects, in the order they cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InvalidKind {
    /// The line stops halfway through the JSON object.
    TruncatedJson,
    /// `"stars":7.0` (reviews only).
    StarsOutOfRange,
    /// No `review_id` (reviews), no `user_id` (tips).
    MissingId,
    /// `"date":"not a date"`.
    BadDate,
    /// `"business_id":""`.
    EmptyBusinessId,
    /// `"stars":"five"` (reviews), `"compliment_count":"one"` (tips).
    WrongType,
}

/// One generated file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileSummary {
    pub path: PathBuf,
    /// Lines written, malformed ones included.
    pub lines: u64,
    /// Malformed lines injected (see [`GenerateOptions::invalid_rate`]).
    pub invalid: u64,
    pub bytes: u64,
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GenerateSummary {
    pub out_dir: PathBuf,
    pub seed: u64,
    pub invalid_rate: f64,
    pub files: BTreeMap<Entity, FileSummary>,
    #[serde(rename = "elapsed_secs", serialize_with = "serialize_secs")]
    pub elapsed: Duration,
}

impl GenerateSummary {
    #[must_use]
    pub fn lines(&self, entity: Entity) -> u64 {
        self.files.get(&entity).map_or(0, |f| f.lines)
    }

    #[must_use]
    pub fn invalid(&self, entity: Entity) -> u64 {
        self.files.get(&entity).map_or(0, |f| f.invalid)
    }

    #[must_use]
    pub fn bytes_written(&self) -> u64 {
        self.files.values().map(|f| f.bytes).sum()
    }

    /// Review lines per second of wall-clock time, the generator's headline speed.
    #[must_use]
    pub fn reviews_per_sec(&self) -> f64 {
        self.lines(Entity::Review) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn serialize_secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl fmt::Display for GenerateSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use indicatif::{HumanBytes, HumanCount};
        writeln!(
            f,
            "Generated a Yelp-format dataset in {} (seed {})",
            self.out_dir.display(),
            self.seed
        )?;
        writeln!(f, "  {:<10} {:>12} {:>10} {:>11}", "entity", "lines", "invalid", "size")?;
        for (entity, file) in &self.files {
            writeln!(
                f,
                "  {:<10} {:>12} {:>10} {:>11}",
                entity.name(),
                HumanCount(file.lines).to_string(),
                HumanCount(file.invalid).to_string(),
                HumanBytes(file.bytes).to_string()
            )?;
        }
        let lines: u64 = self.files.values().map(|f| f.lines).sum();
        let invalid: u64 = self.files.values().map(|f| f.invalid).sum();
        writeln!(
            f,
            "  {:<10} {:>12} {:>10} {:>11}",
            "total",
            HumanCount(lines).to_string(),
            HumanCount(invalid).to_string(),
            HumanBytes(self.bytes_written())
        )?;
        write!(
            f,
            "  in {:.2} s ({} reviews/s)",
            self.elapsed.as_secs_f64(),
            HumanCount(self.reviews_per_sec() as u64)
        )
    }
}

/// Writes the five `yelp_academic_dataset_*.json` files into `out_dir` (created if missing).
///
/// Files are written as `<name>.tmp` and renamed only once all five are complete, so an
/// interrupted run never leaves a truncated dataset file behind (and never clobbers a previous
/// complete one with half a file).
pub fn generate(out_dir: &Path, opts: &GenerateOptions) -> Result<GenerateSummary, GenerateError> {
    validate(opts)?;
    let started = Instant::now();
    fs::create_dir_all(out_dir).map_err(|source| GenerateError::CreateDir {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let world = World::build(opts);
    tracing::debug!(?world.sizes, "generating Yelp-format dataset");

    let mut staged = StagedFiles::new(out_dir);
    let mut files = BTreeMap::new();
    for entity in Entity::ALL {
        let summary = staged.write(entity, |out| world.write(entity, out))?;
        files.insert(entity, summary);
    }
    staged.commit()?;
    Ok(GenerateSummary {
        out_dir: out_dir.to_path_buf(),
        seed: opts.seed,
        invalid_rate: opts.invalid_rate,
        files,
        elapsed: started.elapsed(),
    })
}

fn validate(opts: &GenerateOptions) -> Result<(), GenerateError> {
    if !(0.0..=1.0).contains(&opts.invalid_rate) {
        return Err(GenerateError::InvalidRate(opts.invalid_rate)); // NaN fails `contains` too
    }
    if opts.reviews > MAX_REVIEWS {
        return Err(GenerateError::TooManyReviews {
            requested: opts.reviews,
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Output files

/// Files written under a temporary name, renamed by [`StagedFiles::commit`] or removed on drop.
struct StagedFiles {
    dir: PathBuf,
    /// (temporary, final) paths of the files written so far and not yet renamed.
    pending: Vec<(PathBuf, PathBuf)>,
}

impl StagedFiles {
    fn new(dir: &Path) -> Self {
        StagedFiles {
            dir: dir.to_path_buf(),
            pending: Vec::new(),
        }
    }

    fn write(
        &mut self,
        entity: Entity,
        body: impl FnOnce(&mut BufWriter<File>) -> io::Result<Counts>,
    ) -> Result<FileSummary, GenerateError> {
        let path = self.dir.join(entity.file_name());
        let tmp = self.dir.join(format!("{}.tmp", entity.file_name()));
        let write_err = |source| GenerateError::Write {
            path: tmp.clone(),
            source,
        };
        let file = File::create(&tmp).map_err(write_err)?;
        self.pending.push((tmp.clone(), path.clone()));
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let counts = body(&mut out).map_err(write_err)?;
        let file = out.into_inner().map_err(|e| write_err(e.into_error()))?;
        let bytes = file.metadata().map_err(write_err)?.len();
        Ok(FileSummary {
            path,
            lines: counts.lines,
            invalid: counts.invalid,
            bytes,
        })
    }

    fn commit(mut self) -> Result<(), GenerateError> {
        // One at a time, so that on failure `drop` still removes the files not yet renamed.
        while let Some((tmp, path)) = self.pending.first().cloned() {
            fs::rename(&tmp, &path).map_err(|source| GenerateError::Rename {
                from: tmp,
                to: path,
                source,
            })?;
            self.pending.remove(0);
        }
        Ok(())
    }
}

impl Drop for StagedFiles {
    fn drop(&mut self) {
        for (tmp, _) in &self.pending {
            if let Err(e) = fs::remove_file(tmp) {
                tracing::debug!(path = %tmp.display(), error = %e, "could not remove a temporary file");
            }
        }
    }
}

/// Lines written to one file.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    lines: u64,
    invalid: u64,
}

/// serde_json's compact output plus the official files' one deviation from it: `/` is escaped
/// as `\/` (`"Naturopathic\/Holistic"`), a habit of the encoder Yelp used.
struct YelpFormatter;

impl serde_json::ser::Formatter for YelpFormatter {
    fn write_string_fragment<W: ?Sized + Write>(&mut self, writer: &mut W, fragment: &str) -> io::Result<()> {
        let mut rest = fragment;
        while let Some(slash) = rest.find('/') {
            writer.write_all(&rest.as_bytes()[..slash])?;
            writer.write_all(b"\\/")?;
            rest = &rest[slash + 1..];
        }
        writer.write_all(rest.as_bytes())
    }
}

/// Writes `record` as one line in the official format.
fn write_line<W: Write, T: Serialize>(out: &mut W, record: &T) -> io::Result<()> {
    record.serialize(&mut serde_json::Serializer::with_formatter(&mut *out, YelpFormatter))?;
    out.write_all(b"\n")
}
