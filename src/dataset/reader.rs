//! Streaming reader for the Yelp Open Dataset: one file, a directory, or the official tar archive.
//!
//! Memory stays constant whatever the input size: one reused line buffer, archives streamed member
//! by member (never extracted to disk), and lines longer than a hard cap skipped without being
//! buffered. Line contents reach the caller as raw bytes — invalid UTF-8 or invalid JSON included —
//! because deciding what is valid is the stream transform's job, and it dead-letters what it rejects.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use flate2::read::MultiGzDecoder;
use serde::Serialize;

use super::Entity;

/// Longest line accepted (64 MiB; the longest line of the real dataset is a few hundred KiB).
/// A longer line is skipped and reported in [`ReadStats::too_long`], so hostile or corrupt input
/// cannot make the reader buffer an unbounded amount of memory.
pub const MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

/// Read buffer per file; large enough that the per-call overhead of `read` disappears.
const READ_BUFFER_BYTES: usize = 256 * 1024;

/// The first two bytes of every gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// POSIX tar headers carry `ustar` at byte 257.
const USTAR_MAGIC_OFFSET: usize = 257;

/// One line of a dataset file, borrowed for the duration of the callback.
#[derive(Debug, Clone, Copy)]
pub struct LineRef<'a> {
    pub entity: Entity,
    /// The file path, or `archive.tar:member` for a line inside an archive.
    pub source: &'a str,
    /// 1-based; empty and over-long lines count, so the number matches what an editor shows.
    pub line_no: u64,
    /// The line without its trailing `\n` or `\r\n`, byte for byte as in the file.
    pub text: &'a [u8],
    /// Bytes of the dataset consumed so far, in the unit of [`DatasetSource::total_bytes`]
    /// (compressed bytes for a `.tar.gz`), for progress bars. Runs slightly ahead of `text`
    /// because of read-ahead buffering.
    pub progress_bytes: u64,
}

/// Where the dataset lives. Built by [`DatasetSource::open`], which checks the path up front so
/// that a mistake is reported before anything is produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatasetSource {
    /// One `yelp_academic_dataset_*.json` file.
    File { path: PathBuf, entity: Entity },
    /// A directory holding some of the five files; `files` follows [`Entity::ALL`] order.
    Directory {
        path: PathBuf,
        files: Vec<(Entity, PathBuf)>,
    },
    /// The official `yelp_dataset.tar`, or a gzip-compressed tar.
    Tar { path: PathBuf, gzip: bool },
}

/// Why the dataset could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot open {}: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },

    #[error(
        "{} is not a Yelp dataset file: expected one of {}, a directory holding them, or a .tar/.tar.gz archive of them",
        path.display(),
        expected_file_names()
    )]
    UnrecognisedFile { path: PathBuf },

    #[error(
        "directory {} holds none of the Yelp dataset files (expected one or more of {}); to read an archive, pass the .tar or .tar.gz file itself",
        path.display(),
        expected_file_names()
    )]
    NoDatasetFiles { path: PathBuf },

    #[error(
        "archive {} holds none of the Yelp dataset files (expected members named {})",
        path.display(),
        expected_file_names()
    )]
    NoDatasetMembers { path: PathBuf },

    #[error("reading {source_name} failed after line {line_no}: {source}; is the file complete and readable?")]
    Read {
        source_name: String,
        line_no: u64,
        source: io::Error,
    },

    #[error("cannot read the tar archive {}: {source}; is it a complete .tar or .tar.gz file?", path.display())]
    Archive { path: PathBuf, source: io::Error },
}

fn expected_file_names() -> String {
    Entity::ALL.map(Entity::file_name).join(", ")
}

/// A line skipped because it exceeded the line cap; counts as a malformed line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineTooLong {
    pub entity: Entity,
    pub source: String,
    pub line_no: u64,
    /// Length of the line in bytes, without its `\n`.
    pub bytes: u64,
}

/// Counters for one entity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct EntityReadStats {
    /// Lines handed to the callback (empty and over-long lines excluded).
    pub lines: u64,
    /// Bytes read, line terminators, empty and over-long lines included.
    pub bytes: u64,
    /// Empty (or whitespace-only) lines, skipped.
    pub empty_lines: u64,
}

/// What [`read_lines`] read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReadStats {
    /// One entry per entity whose file or archive member was read, even if it was empty.
    pub entities: BTreeMap<Entity, EntityReadStats>,
    /// Lines skipped for exceeding the line cap, in reading order.
    pub too_long: Vec<LineTooLong>,
}

impl ReadStats {
    /// Lines of `entity` handed to the callback.
    #[must_use]
    pub fn lines(&self, entity: Entity) -> u64 {
        self.entities.get(&entity).map_or(0, |s| s.lines)
    }

    /// Lines handed to the callback, all entities.
    #[must_use]
    pub fn total_lines(&self) -> u64 {
        self.entities.values().map(|s| s.lines).sum()
    }

    /// Bytes read, all entities (uncompressed).
    #[must_use]
    pub fn bytes_read(&self) -> u64 {
        self.entities.values().map(|s| s.bytes).sum()
    }
}

impl DatasetSource {
    /// Recognises `path` as a dataset file, a directory of them, or a (gzipped) tar archive.
    ///
    /// Archives are detected by content (gzip magic bytes, the `ustar` header), not only by
    /// extension, so a renamed download still works.
    pub fn open(path: &Path) -> Result<Self, ReadError> {
        let open_err = |source| ReadError::Open {
            path: path.to_path_buf(),
            source,
        };
        let meta = fs::metadata(path).map_err(open_err)?;
        if meta.is_dir() {
            return Self::open_directory(path);
        }
        if let Some(entity) = entity_of(path) {
            return Ok(DatasetSource::File {
                path: path.to_path_buf(),
                entity,
            });
        }
        let head = read_head(path).map_err(open_err)?;
        if head.starts_with(&GZIP_MAGIC) {
            return Ok(DatasetSource::Tar {
                path: path.to_path_buf(),
                gzip: true,
            });
        }
        let has_ustar = head.get(USTAR_MAGIC_OFFSET..USTAR_MAGIC_OFFSET + 5) == Some(b"ustar".as_slice());
        // Pre-POSIX tars have no magic; trust the extension for those.
        let tar_extension = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("tar"));
        if has_ustar || tar_extension {
            return Ok(DatasetSource::Tar {
                path: path.to_path_buf(),
                gzip: false,
            });
        }
        Err(ReadError::UnrecognisedFile {
            path: path.to_path_buf(),
        })
    }

    fn open_directory(path: &Path) -> Result<Self, ReadError> {
        let files: Vec<(Entity, PathBuf)> = Entity::ALL
            .into_iter()
            .map(|entity| (entity, path.join(entity.file_name())))
            .filter(|(_, file)| file.is_file())
            .collect();
        if files.is_empty() {
            return Err(ReadError::NoDatasetFiles {
                path: path.to_path_buf(),
            });
        }
        Ok(DatasetSource::Directory {
            path: path.to_path_buf(),
            files,
        })
    }

    /// The path given to [`DatasetSource::open`].
    #[must_use]
    pub fn path(&self) -> &Path {
        match self {
            DatasetSource::File { path, .. }
            | DatasetSource::Directory { path, .. }
            | DatasetSource::Tar { path, .. } => path,
        }
    }

    /// One line for logs and progress output, e.g. `directory data/yelp (business, review)`.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            DatasetSource::File { path, entity } => format!("{entity} file {}", path.display()),
            DatasetSource::Directory { path, files } => {
                let names: Vec<&str> = files.iter().map(|(e, _)| e.name()).collect();
                format!("directory {} ({})", path.display(), names.join(", "))
            }
            DatasetSource::Tar { path, gzip: false } => format!("tar archive {}", path.display()),
            DatasetSource::Tar { path, gzip: true } => format!("gzip-compressed tar archive {}", path.display()),
        }
    }

    /// Size on disk (the compressed size for a `.tar.gz`), the total for
    /// [`LineRef::progress_bytes`]. `None` if a file's size cannot be read.
    #[must_use]
    pub fn total_bytes(&self) -> Option<u64> {
        let size = |p: &Path| fs::metadata(p).ok().map(|m| m.len());
        match self {
            DatasetSource::File { path, .. } | DatasetSource::Tar { path, .. } => size(path),
            DatasetSource::Directory { files, .. } => files.iter().map(|(_, p)| size(p)).sum(),
        }
    }
}

impl fmt::Display for DatasetSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// The entity a path's file name denotes, if any.
fn entity_of(path: &Path) -> Option<Entity> {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(Entity::from_file_name)
}

/// The first 512 bytes of a file (fewer if it is shorter): enough for gzip and tar magic.
fn read_head(path: &Path) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    File::open(path)?.take(512).read_to_end(&mut head)?;
    Ok(head)
}

/// Streams every non-empty line of the selected entities (`entities` empty = all) to `f`.
///
/// Files of a directory are read in [`Entity::ALL`] order; archive members in archive order
/// (the official archive stores them alphabetically: business, checkin, review, tip, user).
/// The first error from `f` stops reading and is returned as is. `E` is the caller's error type,
/// which must be able to hold a [`ReadError`] (`anyhow::Error`, or an enum with `#[from]`).
pub fn read_lines<E, F>(source: &DatasetSource, entities: &[Entity], f: F) -> Result<ReadStats, E>
where
    E: From<ReadError>,
    F: FnMut(LineRef<'_>) -> Result<(), E>,
{
    read_lines_capped(source, entities, MAX_LINE_BYTES, f)
}

/// [`read_lines`] with an explicit line cap, so tests can exercise the cap with small inputs.
pub(crate) fn read_lines_capped<E, F>(
    source: &DatasetSource,
    entities: &[Entity],
    max_line_bytes: usize,
    mut f: F,
) -> Result<ReadStats, E>
where
    E: From<ReadError>,
    F: FnMut(LineRef<'_>) -> Result<(), E>,
{
    let mut reader = LineReader::new(entities, max_line_bytes);
    match source {
        DatasetSource::File { path, entity } => {
            reader.warn_if_absent(&[*entity], source);
            reader.read_file(path, *entity, &mut f)?;
        }
        DatasetSource::Directory { files, .. } => {
            let present: Vec<Entity> = files.iter().map(|(e, _)| *e).collect();
            reader.warn_if_absent(&present, source);
            for (entity, path) in files {
                reader.read_file(path, *entity, &mut f)?;
            }
        }
        DatasetSource::Tar { path, gzip } => reader.read_archive(path, *gzip, &mut f)?,
    }
    Ok(reader.stats)
}

/// State shared by every file of one [`read_lines`] call.
struct LineReader<'e> {
    entities: &'e [Entity],
    max_line_bytes: usize,
    /// Reused for every line of every file: the only buffer that grows with line length.
    buf: Vec<u8>,
    /// Bytes consumed from disk, shared with the [`CountingReader`] of the current file.
    consumed: Rc<Cell<u64>>,
    stats: ReadStats,
}

impl<'e> LineReader<'e> {
    fn new(entities: &'e [Entity], max_line_bytes: usize) -> Self {
        LineReader {
            entities,
            max_line_bytes,
            buf: Vec::with_capacity(64 * 1024),
            consumed: Rc::new(Cell::new(0)),
            stats: ReadStats::default(),
        }
    }

    fn selected(&self, entity: Entity) -> bool {
        self.entities.is_empty() || self.entities.contains(&entity)
    }

    /// A requested entity the source cannot provide is most likely a typo on the command line;
    /// say so rather than silently producing nothing.
    fn warn_if_absent(&self, present: &[Entity], source: &DatasetSource) {
        for entity in self.entities.iter().filter(|e| !present.contains(e)) {
            tracing::warn!(%entity, source = %source, "no {} in this dataset source; nothing to read for it", entity.file_name());
        }
    }

    fn read_file<E, F>(&mut self, path: &Path, entity: Entity, f: &mut F) -> Result<(), E>
    where
        E: From<ReadError>,
        F: FnMut(LineRef<'_>) -> Result<(), E>,
    {
        let file = File::open(path).map_err(|source| ReadError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        if !self.selected(entity) {
            // Count the skipped file as consumed so progress still ends at `total_bytes`.
            let len = file.metadata().map_or(0, |m| m.len());
            self.consumed.set(self.consumed.get() + len);
            return Ok(());
        }
        let counted = CountingReader {
            inner: file,
            consumed: Rc::clone(&self.consumed),
        };
        let source_name = path.display().to_string();
        self.read_stream(
            BufReader::with_capacity(READ_BUFFER_BYTES, counted),
            entity,
            &source_name,
            f,
        )
    }

    fn read_archive<E, F>(&mut self, path: &Path, gzip: bool, f: &mut F) -> Result<(), E>
    where
        E: From<ReadError>,
        F: FnMut(LineRef<'_>) -> Result<(), E>,
    {
        let file = File::open(path).map_err(|source| ReadError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let counted = CountingReader {
            inner: file,
            consumed: Rc::clone(&self.consumed),
        };
        let found = if gzip {
            // Multi-member: `pigz` and concatenated gzip files are valid .tar.gz too.
            self.read_tar_stream(path, MultiGzDecoder::new(counted), f)?
        } else {
            self.read_tar_stream(path, BufReader::with_capacity(READ_BUFFER_BYTES, counted), f)?
        };
        if found {
            Ok(())
        } else {
            Err(ReadError::NoDatasetMembers {
                path: path.to_path_buf(),
            }
            .into())
        }
    }

    /// Reads the dataset members of a tar stream; returns whether there was any.
    fn read_tar_stream<R, E, F>(&mut self, path: &Path, tar_stream: R, f: &mut F) -> Result<bool, E>
    where
        R: Read,
        E: From<ReadError>,
        F: FnMut(LineRef<'_>) -> Result<(), E>,
    {
        let archive_err = |source| ReadError::Archive {
            path: path.to_path_buf(),
            source,
        };
        let mut archive = tar::Archive::new(tar_stream);
        let mut found = false;
        for member in archive.entries().map_err(archive_err)? {
            let member = member.map_err(archive_err)?;
            if !member.header().entry_type().is_file() {
                continue;
            }
            let name = member.path().map_err(archive_err)?.to_string_lossy().into_owned();
            let Some(entity) = Entity::from_file_name(&name) else {
                tracing::debug!(member = %name, "skipping archive member that is not a dataset file");
                continue;
            };
            found = true;
            if !self.selected(entity) {
                continue; // the tar reader skips the member's data when we move on
            }
            let source_name = format!("{}:{name}", path.display());
            self.read_stream(
                BufReader::with_capacity(READ_BUFFER_BYTES, member),
                entity,
                &source_name,
                f,
            )?;
        }
        Ok(found)
    }

    /// Reads one file or archive member line by line.
    fn read_stream<R, E, F>(&mut self, mut input: R, entity: Entity, source_name: &str, f: &mut F) -> Result<(), E>
    where
        R: BufRead,
        E: From<ReadError>,
        F: FnMut(LineRef<'_>) -> Result<(), E>,
    {
        self.stats.entities.entry(entity).or_default();
        let mut line_no = 0u64;
        loop {
            let raw = self
                .next_raw_line(&mut input)
                .map_err(read_error(source_name, line_no))?;
            let raw_len = match raw {
                RawLine::End => return Ok(()),
                RawLine::TooLong { content, raw } => {
                    line_no += 1;
                    self.record_too_long(entity, source_name, line_no, content, raw);
                    continue;
                }
                RawLine::InBuffer { raw } => raw,
            };
            line_no += 1;
            let text = line_content(&self.buf, line_no);
            if text.len() > self.max_line_bytes {
                let content = text.len() as u64;
                self.record_too_long(entity, source_name, line_no, content, raw_len);
                continue;
            }
            let counters = self.stats.entities.entry(entity).or_default();
            counters.bytes += raw_len;
            if text.iter().all(u8::is_ascii_whitespace) {
                counters.empty_lines += 1;
                continue;
            }
            counters.lines += 1;
            let progress_bytes = self.consumed.get();
            f(LineRef {
                entity,
                source: source_name,
                line_no,
                text,
                progress_bytes,
            })?;
        }
    }

    /// Reads the next line into `buf`, unless it is over-long: then it is skipped without
    /// being buffered. Room is left for the longest accepted content plus `\r\n`, so a line
    /// that fills it without reaching `\n` is over-long.
    fn next_raw_line(&mut self, input: &mut impl BufRead) -> io::Result<RawLine> {
        self.buf.clear();
        let limit = self.max_line_bytes as u64 + 2;
        let n = input.by_ref().take(limit).read_until(b'\n', &mut self.buf)? as u64;
        if n == 0 {
            return Ok(RawLine::End);
        }
        if n == limit && self.buf.last() != Some(&b'\n') {
            let (rest, newline) = skip_past_newline(input)?;
            return Ok(RawLine::TooLong {
                content: n + rest - u64::from(newline),
                raw: n + rest,
            });
        }
        Ok(RawLine::InBuffer { raw: n })
    }

    fn record_too_long(&mut self, entity: Entity, source_name: &str, line_no: u64, content: u64, raw: u64) {
        // Neither a valid record nor safe to forward; the caller learns about it from the stats.
        tracing::warn!(
            source = source_name,
            line_no,
            bytes = content,
            cap = self.max_line_bytes,
            "skipping an over-long line"
        );
        self.stats.entities.entry(entity).or_default().bytes += raw;
        self.stats.too_long.push(LineTooLong {
            entity,
            source: source_name.to_string(),
            line_no,
            bytes: content,
        });
    }
}

/// What [`LineReader::next_raw_line`] found; `raw` counts bytes including the terminator.
enum RawLine {
    End,
    /// Skipped; `content` excludes the `\n`.
    TooLong {
        content: u64,
        raw: u64,
    },
    /// In the line buffer.
    InBuffer {
        raw: u64,
    },
}

fn read_error(source_name: &str, line_no: u64) -> impl Fn(io::Error) -> ReadError + '_ {
    move |source| ReadError::Read {
        source_name: source_name.to_string(),
        line_no,
        source,
    }
}

/// The line without its `\n` / `\r\n`, and without a UTF-8 byte-order mark on the first line
/// (an editor artefact, not data; left in place it would make the first record invalid JSON).
fn line_content(raw: &[u8], line_no: u64) -> &[u8] {
    let text = raw.strip_suffix(b"\n").unwrap_or(raw);
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    if line_no == 1 {
        text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text)
    } else {
        text
    }
}

/// Discards input up to and including the next `\n` without buffering it.
/// Returns the bytes skipped and whether a `\n` (counted in them) ended the line.
fn skip_past_newline(input: &mut impl BufRead) -> io::Result<(u64, bool)> {
    let mut skipped = 0u64;
    loop {
        let chunk = match input.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok((skipped, false));
        }
        match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => {
                input.consume(i + 1);
                return Ok((skipped + i as u64 + 1, true));
            }
            None => {
                let len = chunk.len();
                input.consume(len);
                skipped += len as u64;
            }
        }
    }
}

/// Counts the bytes read from disk into a counter shared with the [`LineReader`], which is how
/// progress is known in on-disk (compressed) bytes while lines come out of a decompressor.
struct CountingReader<R> {
    inner: R,
    consumed: Rc<Cell<u64>>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.consumed.set(self.consumed.get() + n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;

    /// Everything a test needs to know about the lines it was given.
    #[derive(Debug, PartialEq)]
    struct Seen {
        entity: Entity,
        source: String,
        line_no: u64,
        text: Vec<u8>,
    }

    fn collect(source: &DatasetSource, entities: &[Entity], cap: usize) -> (Vec<Seen>, ReadStats) {
        let mut seen = Vec::new();
        let stats = read_lines_capped::<ReadError, _>(source, entities, cap, |line| {
            seen.push(Seen {
                entity: line.entity,
                source: line.source.to_string(),
                line_no: line.line_no,
                text: line.text.to_vec(),
            });
            Ok(())
        })
        .unwrap();
        (seen, stats)
    }

    fn texts(seen: &[Seen]) -> Vec<&[u8]> {
        seen.iter().map(|s| s.text.as_slice()).collect()
    }

    fn write(dir: &Path, entity: Entity, content: &[u8]) -> PathBuf {
        let path = dir.join(entity.file_name());
        fs::write(&path, content).unwrap();
        path
    }

    fn tar_bytes(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, content) in members {
            let mut header = tar::Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, name, *content).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn official_members() -> Vec<(&'static str, &'static [u8])> {
        vec![
            (
                "Dataset_User_Agreement.pdf",
                b"%PDF-1.4 not a dataset file\n".as_slice(),
            ),
            (
                "yelp_academic_dataset_business.json",
                b"{\"business_id\":\"b1\"}\n{\"business_id\":\"b2\"}\n",
            ),
            (
                "yelp_academic_dataset_checkin.json",
                b"{\"business_id\":\"b1\",\"date\":\"2020-03-13 21:10:56\"}\n",
            ),
            ("yelp_academic_dataset_review.json", b"{\"review_id\":\"r1\"}\n"),
        ]
    }

    #[test]
    fn reads_a_single_file_with_line_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), Entity::Tip, b"{\"a\":1}\n{\"a\":2}\n{\"a\":3}");
        let source = DatasetSource::open(&path).unwrap();
        assert_eq!(
            source,
            DatasetSource::File {
                path: path.clone(),
                entity: Entity::Tip
            }
        );
        assert_eq!(source.total_bytes(), Some(23));
        let (seen, stats) = collect(&source, &[], MAX_LINE_BYTES);
        assert_eq!(texts(&seen), [b"{\"a\":1}".as_slice(), b"{\"a\":2}", b"{\"a\":3}"]);
        assert_eq!(seen.iter().map(|s| s.line_no).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(
            seen.iter()
                .all(|s| s.entity == Entity::Tip && s.source == path.display().to_string())
        );
        assert_eq!(stats.lines(Entity::Tip), 3);
        assert_eq!(stats.bytes_read(), 23);
    }

    #[test]
    fn reads_a_directory_in_entity_order_and_filters() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), Entity::Review, b"review\n");
        write(dir.path(), Entity::Business, b"business\n");
        write(dir.path(), Entity::Checkin, b"checkin\n");
        fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let source = DatasetSource::open(dir.path()).unwrap();
        assert!(
            source.describe().ends_with("(business, review, checkin)"),
            "{}",
            source.describe()
        );
        assert_eq!(source.total_bytes(), Some(9 + 7 + 8));

        let (seen, _) = collect(&source, &[], MAX_LINE_BYTES);
        assert_eq!(texts(&seen), [b"business".as_slice(), b"review", b"checkin"]);

        let (seen, stats) = collect(&source, &[Entity::Checkin, Entity::Review], MAX_LINE_BYTES);
        assert_eq!(texts(&seen), [b"review".as_slice(), b"checkin"]);
        assert_eq!(
            stats.entities.keys().copied().collect::<Vec<_>>(),
            [Entity::Review, Entity::Checkin]
        );
    }

    #[test]
    fn progress_reaches_total_bytes_even_when_files_are_filtered_out() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), Entity::Business, b"business\n");
        write(dir.path(), Entity::Review, b"review\n");
        let source = DatasetSource::open(dir.path()).unwrap();
        let mut last = 0;
        read_lines_capped::<ReadError, _>(&source, &[Entity::Review], MAX_LINE_BYTES, |line| {
            last = line.progress_bytes;
            Ok(())
        })
        .unwrap();
        assert_eq!(Some(last), source.total_bytes());
    }

    #[test]
    fn reads_a_tar_in_archive_order_skipping_other_members() {
        let dir = tempfile::tempdir().unwrap();
        let mut members = official_members();
        members.push((
            "yelp_dataset/._yelp_academic_dataset_tip.json",
            b"macOS resource fork\n",
        ));
        members.push(("yelp_dataset/yelp_academic_dataset_tip.json", b"tip\n"));
        let path = dir.path().join("yelp_dataset.tar");
        fs::write(&path, tar_bytes(&members)).unwrap();

        let source = DatasetSource::open(&path).unwrap();
        assert_eq!(
            source,
            DatasetSource::Tar {
                path: path.clone(),
                gzip: false
            }
        );
        let (seen, stats) = collect(&source, &[], MAX_LINE_BYTES);
        let entities: Vec<Entity> = seen.iter().map(|s| s.entity).collect();
        assert_eq!(
            entities,
            [
                Entity::Business,
                Entity::Business,
                Entity::Checkin,
                Entity::Review,
                Entity::Tip
            ]
        );
        assert_eq!(
            seen[3].source,
            format!("{}:yelp_academic_dataset_review.json", path.display())
        );
        assert_eq!(seen[4].text, b"tip");
        assert_eq!(stats.total_lines(), 5);

        let (seen, _) = collect(&source, &[Entity::Review], MAX_LINE_BYTES);
        assert_eq!(texts(&seen), [b"{\"review_id\":\"r1\"}".as_slice()]);
    }

    #[test]
    fn reads_a_gzipped_tar_detected_by_magic_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let compressed = gzip(&tar_bytes(&official_members()));
        // A misleading extension: detection goes by content.
        let path = dir.path().join("download.bin");
        fs::write(&path, &compressed).unwrap();
        let source = DatasetSource::open(&path).unwrap();
        assert_eq!(
            source,
            DatasetSource::Tar {
                path: path.clone(),
                gzip: true
            }
        );
        assert_eq!(source.total_bytes(), Some(compressed.len() as u64));

        let mut last_progress = 0;
        let mut lines = 0;
        read_lines_capped::<ReadError, _>(&source, &[], MAX_LINE_BYTES, |line| {
            lines += 1;
            last_progress = line.progress_bytes;
            Ok(())
        })
        .unwrap();
        assert_eq!(lines, 4);
        assert!(last_progress <= compressed.len() as u64);
    }

    #[test]
    fn archive_without_dataset_members_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.tar.gz");
        fs::write(&path, gzip(&tar_bytes(&[("readme.txt", b"hello\n")]))).unwrap();
        let source = DatasetSource::open(&path).unwrap();
        let err = read_lines::<ReadError, _>(&source, &[], |_| Ok(())).unwrap_err();
        assert!(matches!(err, ReadError::NoDatasetMembers { .. }), "{err}");
        assert!(err.to_string().contains("yelp_academic_dataset_checkin.json"), "{err}");
    }

    #[test]
    fn corrupt_archive_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.tar.gz");
        let mut bytes = gzip(&tar_bytes(&official_members()));
        bytes.truncate(bytes.len() / 2);
        fs::write(&path, bytes).unwrap();
        let source = DatasetSource::open(&path).unwrap();
        let err = read_lines::<ReadError, _>(&source, &[], |_| Ok(())).unwrap_err();
        assert!(
            matches!(err, ReadError::Archive { .. } | ReadError::Read { .. }),
            "{err}"
        );
    }

    #[test]
    fn strips_crlf_and_skips_empty_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            Entity::User,
            b"\xEF\xBB\xBF{\"a\":1}\r\n\r\n\n   \n{\"a\":2}\r\n\n",
        );
        let (seen, stats) = collect(&DatasetSource::open(&path).unwrap(), &[], MAX_LINE_BYTES);
        assert_eq!(texts(&seen), [b"{\"a\":1}".as_slice(), b"{\"a\":2}"]);
        assert_eq!(seen[1].line_no, 5);
        let user = stats.entities[&Entity::User];
        assert_eq!((user.lines, user.empty_lines), (2, 4));
    }

    #[test]
    fn invalid_utf8_and_invalid_json_pass_through_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let content = b"{\"text\":\"caf\xE9\"}\nnot json at all\n\xFF\xFE\x00\n";
        let path = write(dir.path(), Entity::Review, content);
        let (seen, _) = collect(&DatasetSource::open(&path).unwrap(), &[], MAX_LINE_BYTES);
        assert_eq!(
            texts(&seen),
            [
                b"{\"text\":\"caf\xE9\"}".as_slice(),
                b"not json at all",
                b"\xFF\xFE\x00"
            ]
        );
    }

    #[test]
    fn over_long_lines_are_skipped_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let long = "x".repeat(100);
        let at_cap = "y".repeat(16);
        let content = format!("short\n{long}\n{at_cap}\r\n{long}");
        let path = write(dir.path(), Entity::Review, content.as_bytes());
        let (seen, stats) = collect(&DatasetSource::open(&path).unwrap(), &[], 16);
        assert_eq!(texts(&seen), [b"short".as_slice(), at_cap.as_bytes()]);
        assert_eq!(seen[1].line_no, 3);
        let source = path.display().to_string();
        assert_eq!(
            stats.too_long,
            [
                LineTooLong {
                    entity: Entity::Review,
                    source: source.clone(),
                    line_no: 2,
                    bytes: 100
                },
                LineTooLong {
                    entity: Entity::Review,
                    source,
                    line_no: 4,
                    bytes: 100
                },
            ]
        );
        assert_eq!(stats.bytes_read(), content.len() as u64);
    }

    #[test]
    fn callback_error_stops_reading() {
        #[derive(Debug)]
        enum TestError {
            Stop,
            Read,
        }
        impl From<ReadError> for TestError {
            fn from(_: ReadError) -> Self {
                TestError::Read
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), Entity::Tip, b"1\n2\n3\n");
        let mut calls = 0;
        let result = read_lines(&DatasetSource::open(&path).unwrap(), &[], |_| {
            calls += 1;
            if calls == 2 { Err(TestError::Stop) } else { Ok(()) }
        });
        assert!(matches!(result, Err(TestError::Stop)));
        assert_eq!(calls, 2);
    }

    #[test]
    fn unrecognised_file_name_lists_the_expected_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reviews.json");
        fs::write(&path, "{}\n").unwrap();
        let err = DatasetSource::open(&path).unwrap_err();
        assert!(matches!(err, ReadError::UnrecognisedFile { .. }));
        let msg = err.to_string();
        for entity in Entity::ALL {
            assert!(msg.contains(entity.file_name()), "{msg}");
        }
    }

    #[test]
    fn empty_directory_is_an_error_naming_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let err = DatasetSource::open(dir.path()).unwrap_err();
        assert!(matches!(err, ReadError::NoDatasetFiles { .. }));
        assert!(err.to_string().contains("yelp_academic_dataset_business.json"), "{err}");
    }

    #[test]
    fn missing_path_is_an_open_error() {
        let err = DatasetSource::open(Path::new("/nonexistent/yelp")).unwrap_err();
        assert!(matches!(err, ReadError::Open { .. }));
        assert!(err.to_string().contains("/nonexistent/yelp"), "{err}");
    }
}
