//! A deterministic generator of Yelp-format datasets, for labs and tests without the 9 GB download.
//!
//! The output has the layout of the official files (field order, number formats, `\/` escapes,
//! string-encoded quirks) and is referentially consistent: reviews and tips name existing
//! businesses and users, friends are existing users, every business's `review_count` and `stars`
//! and every user's `review_count` and `average_stars` agree with the reviews written. The same
//! seed gives the same bytes on every platform and with every crate version, because the
//! generator uses its own PRNG and no floating-point function whose result is platform-dependent
//! (only `+ - * /` and `sqrt`, which IEEE 754 rounds exactly; no `ln`, `exp` or `powf`).

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Serialize, Serializer};
use serde_json::Value;

use super::Entity;
use super::types::{Business, Checkin, Review, Tip, User};

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

const REVIEW_INVALID_KINDS: [InvalidKind; 6] = [
    InvalidKind::TruncatedJson,
    InvalidKind::StarsOutOfRange,
    InvalidKind::MissingId,
    InvalidKind::BadDate,
    InvalidKind::EmptyBusinessId,
    InvalidKind::WrongType,
];

/// Tips have no stars, so one kind fewer.
const TIP_INVALID_KINDS: [InvalidKind; 5] = [
    InvalidKind::TruncatedJson,
    InvalidKind::MissingId,
    InvalidKind::BadDate,
    InvalidKind::EmptyBusinessId,
    InvalidKind::WrongType,
];

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
        use super::inspect::{format_bytes, format_count};
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
                format_count(file.lines),
                format_count(file.invalid),
                format_bytes(file.bytes)
            )?;
        }
        let lines: u64 = self.files.values().map(|f| f.lines).sum();
        let invalid: u64 = self.files.values().map(|f| f.invalid).sum();
        writeln!(
            f,
            "  {:<10} {:>12} {:>10} {:>11}",
            "total",
            format_count(lines),
            format_count(invalid),
            format_bytes(self.bytes_written())
        )?;
        write!(
            f,
            "  in {:.2} s ({} reviews/s)",
            self.elapsed.as_secs_f64(),
            format_count(self.reviews_per_sec() as u64)
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

// ---------------------------------------------------------------------------------------------
// The simulated world: sizes, popularity, and the review assignments every file agrees on

/// Line counts derived from the number of reviews, with the real dataset's ratios
/// (6.99 M reviews, 150 k businesses, 1.99 M users, 909 k tips, 131 k check-in lines).
#[derive(Debug, Clone, Copy)]
struct Sizes {
    businesses: usize,
    users: usize,
    reviews: u64,
    tips: u64,
}

impl Sizes {
    fn for_reviews(reviews: u64) -> Self {
        let reviews_f = reviews as f64;
        Sizes {
            businesses: ((reviews_f / 45.0) as usize).max(10),
            users: ((reviews_f / 3.5) as usize).max(10),
            reviews,
            tips: reviews / 8,
        }
    }
}

/// Independent random streams, so that e.g. changing how tips are written does not change reviews.
#[derive(Debug, Clone, Copy)]
enum Stream {
    Assignment,
    Popularity,
    Typical,
    Since,
    Business,
    User,
    Review,
    Tip,
    Checkin,
}

impl Stream {
    fn salt(self) -> u64 {
        match self {
            Stream::Assignment => 0x6173_7369_676e_0001,
            Stream::Popularity => 0x706f_7075_6c61_0002,
            Stream::Typical => 0x7479_7069_6361_0003,
            Stream::Since => 0x7369_6e63_6500_0004,
            Stream::Business => 0x6275_7369_6e65_0005,
            Stream::User => 0x7573_6572_0000_0006,
            Stream::Review => 0x7265_7669_6577_0007,
            Stream::Tip => 0x7469_7000_0000_0008,
            Stream::Checkin => 0x6368_6563_6b69_0009,
        }
    }
}

/// Reviews received (or written) and the sum of their stars.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    count: u32,
    star_sum: u32,
}

impl Tally {
    fn add(&mut self, stars: u8) {
        self.count += 1;
        self.star_sum += u32::from(stars);
    }

    fn mean(self) -> Option<f64> {
        (self.count > 0).then(|| f64::from(self.star_sum) / f64::from(self.count))
    }
}

/// Who reviews what with how many stars; replayed identically from its own stream by
/// [`World::build`] (to count) and when writing reviews.
struct Assignment {
    business: usize,
    user: usize,
    stars: u8,
}

struct World {
    seed: u64,
    sizes: Sizes,
    invalid_rate: f64,
    business_popularity: Popularity,
    user_popularity: Popularity,
    /// Each business's "true" rating, which a share of its reviews follow so that businesses differ.
    business_typical_stars: Vec<u8>,
    business_tally: Vec<Tally>,
    user_tally: Vec<Tally>,
    /// Unix seconds; reviews and tips by a user never predate it.
    user_since: Vec<i64>,
    text: TextGenerator,
}

impl World {
    fn build(opts: &GenerateOptions) -> Self {
        let sizes = Sizes::for_reviews(opts.reviews);
        let seed = opts.seed;
        let mut rng = Prng::new(seed, Stream::Popularity);
        let business_popularity = Popularity::new(sizes.businesses, &mut rng);
        let user_popularity = Popularity::new(sizes.users, &mut rng);
        let mut rng = Prng::new(seed, Stream::Typical);
        let business_typical_stars = (0..sizes.businesses).map(|_| draw_stars(rng.unit())).collect();
        let mut rng = Prng::new(seed, Stream::Since);
        let user_since = (0..sizes.users)
            .map(|_| rng.range_i64(USER_SINCE_START, USER_SINCE_END))
            .collect();
        let mut world = World {
            seed,
            sizes,
            invalid_rate: opts.invalid_rate,
            business_popularity,
            user_popularity,
            business_typical_stars,
            business_tally: vec![Tally::default(); sizes.businesses],
            user_tally: vec![Tally::default(); sizes.users],
            user_since,
            text: TextGenerator::new(),
        };
        world.tally_reviews();
        world
    }

    /// First pass over the assignments, so businesses and users, written before the reviews,
    /// can carry counts and averages that match them.
    fn tally_reviews(&mut self) {
        let mut rng = Prng::new(self.seed, Stream::Assignment);
        for _ in 0..self.sizes.reviews {
            let a = self.assign(&mut rng);
            self.business_tally[a.business].add(a.stars);
            self.user_tally[a.user].add(a.stars);
        }
    }

    fn assign(&self, rng: &mut Prng) -> Assignment {
        let business = self.business_popularity.sample(rng);
        let user = self.user_popularity.sample(rng);
        // A mixture of the business's typical rating and the global distribution: the overall
        // distribution stays the global one (typical ratings are drawn from it), yet businesses differ.
        let stars = if rng.chance(0.35) {
            self.business_typical_stars[business]
        } else {
            draw_stars(rng.unit())
        };
        Assignment { business, user, stars }
    }

    fn write(&self, entity: Entity, out: &mut impl Write) -> io::Result<Counts> {
        match entity {
            Entity::Business => self.write_businesses(out),
            Entity::User => self.write_users(out),
            Entity::Review => self.write_reviews(out),
            Entity::Tip => self.write_tips(out),
            Entity::Checkin => self.write_checkins(out),
        }
    }

    fn business_id(&self, index: usize, out: &mut String) {
        push_id(out, self.seed, Stream::Business, index as u64);
    }

    fn user_id(&self, index: usize, out: &mut String) {
        push_id(out, self.seed, Stream::User, index as u64);
    }

    // -- businesses ---------------------------------------------------------------------------

    fn write_businesses(&self, out: &mut impl Write) -> io::Result<Counts> {
        let mut rng = Prng::new(self.seed, Stream::Business);
        for index in 0..self.sizes.businesses {
            write_line(out, &self.business(index, &mut rng))?;
        }
        Ok(Counts {
            lines: self.sizes.businesses as u64,
            invalid: 0,
        })
    }

    fn business(&self, index: usize, rng: &mut Prng) -> Business {
        let profile = rng.weighted(&PROFILES, |p| p.weight);
        let city = rng.weighted(&CITIES, |c| c.weight);
        let tally = self.business_tally[index];
        let stars = tally.mean().map_or(f64::from(self.business_typical_stars[index]), |m| {
            (m * 2.0).round() / 2.0
        });
        let mut business_id = String::with_capacity(22);
        self.business_id(index, &mut business_id);
        Business {
            business_id,
            name: business_name(rng, profile),
            address: address(rng),
            city: city.name.to_string(),
            state: city.state.to_string(),
            postal_code: postal_code(rng, city),
            latitude: Some(jitter_coordinate(rng, city.latitude)),
            longitude: Some(jitter_coordinate(rng, city.longitude)),
            stars,
            review_count: i64::from(tally.count),
            is_open: i64::from(rng.chance(0.8)),
            attributes: (!rng.chance(0.10)).then(|| attributes(rng, profile)),
            categories: (!rng.chance(0.01)).then(|| categories(rng, profile)),
            hours: (!rng.chance(0.15)).then(|| hours(rng)),
        }
    }

    // -- users --------------------------------------------------------------------------------

    fn write_users(&self, out: &mut impl Write) -> io::Result<Counts> {
        let mut rng = Prng::new(self.seed, Stream::User);
        for index in 0..self.sizes.users {
            write_line(out, &self.user(index, &mut rng))?;
        }
        Ok(Counts {
            lines: self.sizes.users as u64,
            invalid: 0,
        })
    }

    fn user(&self, index: usize, rng: &mut Prng) -> User {
        let tally = self.user_tally[index];
        let reviews = i64::from(tally.count);
        let since = self.user_since[index];
        let mut user_id = String::with_capacity(22);
        self.user_id(index, &mut user_id);
        let mut yelping_since = String::with_capacity(19);
        push_datetime(&mut yelping_since, since);
        let mut elite = String::new();
        push_elite(&mut elite, rng, year_of(since), tally.count);
        let (friends, friend_count) = self.friends(index, rng);
        let fans = scaled(rng, friend_count as f64 * 0.4, 2) + if elite.is_empty() { 0 } else { rng.range_i64(3, 60) };
        let average_stars = tally.mean().unwrap_or_else(|| 1.0 + rng.below(401) as f64 / 100.0);
        let fame = (fans + reviews) as f64; // compliments follow visibility
        User {
            user_id,
            name: rng.pick(&FIRST_NAMES).to_string(),
            review_count: reviews,
            yelping_since,
            useful: scaled(rng, reviews as f64 * 6.0, 3),
            funny: scaled(rng, reviews as f64 * 2.0, 3),
            cool: scaled(rng, reviews as f64 * 3.0, 3),
            elite,
            friends,
            fans,
            average_stars: (average_stars * 100.0).round() / 100.0,
            compliment_hot: scaled(rng, fame * 0.8, 3),
            compliment_more: scaled(rng, fame * 0.2, 3),
            compliment_profile: scaled(rng, fame * 0.15, 3),
            compliment_cute: scaled(rng, fame * 0.15, 3),
            compliment_list: scaled(rng, fame * 0.05, 3),
            compliment_note: scaled(rng, fame * 0.8, 3),
            compliment_plain: scaled(rng, fame * 1.5, 3),
            compliment_cool: scaled(rng, fame * 1.2, 3),
            compliment_funny: scaled(rng, fame * 1.2, 3),
            compliment_writer: scaled(rng, fame * 0.6, 3),
            compliment_photos: scaled(rng, fame * 0.4, 3),
        }
    }

    /// `", "`-separated ids of other existing users, or the dataset's literal `"None"`.
    fn friends(&self, index: usize, rng: &mut Prng) -> (String, usize) {
        if rng.chance(0.45) {
            return ("None".to_string(), 0);
        }
        let wanted = (1 + scaled(rng, 60.0, 3) as usize).min(self.sizes.users - 1);
        let mut chosen: Vec<usize> = Vec::with_capacity(wanted);
        // Popular users are befriended more; a bounded number of tries keeps tiny worlds finite.
        for _ in 0..wanted * 4 {
            if chosen.len() == wanted {
                break;
            }
            let friend = self.user_popularity.sample(rng);
            if friend != index && !chosen.contains(&friend) {
                chosen.push(friend);
            }
        }
        let mut friends = String::with_capacity(chosen.len() * 24);
        for (i, &friend) in chosen.iter().enumerate() {
            if i > 0 {
                friends.push_str(", ");
            }
            self.user_id(friend, &mut friends);
        }
        if chosen.is_empty() {
            friends.push_str("None");
        }
        (friends, chosen.len())
    }

    // -- reviews ------------------------------------------------------------------------------

    fn write_reviews(&self, out: &mut impl Write) -> io::Result<Counts> {
        let mut assignments = Prng::new(self.seed, Stream::Assignment);
        let mut rng = Prng::new(self.seed, Stream::Review);
        let mut invalid = InvalidSchedule::new(self.invalid_rate, &REVIEW_INVALID_KINDS);
        // One record reused for every line: its strings keep their capacity, so the hot loop
        // does not allocate.
        let mut review = Review {
            review_id: String::with_capacity(22),
            user_id: String::with_capacity(22),
            business_id: String::with_capacity(22),
            stars: 0.0,
            useful: 0,
            funny: 0,
            cool: 0,
            text: String::with_capacity(2048),
            date: String::with_capacity(19),
        };
        let mut scratch = Vec::with_capacity(4096);
        for index in 0..self.sizes.reviews {
            let a = self.assign(&mut assignments);
            self.fill_review(index, &a, &mut rng, &mut review);
            match invalid.for_next_line() {
                None => write_line(out, &review)?,
                Some(kind) => write_invalid_review(out, &mut review, kind, &mut scratch)?,
            }
        }
        Ok(Counts {
            lines: self.sizes.reviews,
            invalid: invalid.injected,
        })
    }

    fn fill_review(&self, index: u64, a: &Assignment, rng: &mut Prng, review: &mut Review) {
        review.review_id.clear();
        push_id(&mut review.review_id, self.seed, Stream::Review, index);
        review.user_id.clear();
        self.user_id(a.user, &mut review.user_id);
        review.business_id.clear();
        self.business_id(a.business, &mut review.business_id);
        review.stars = f64::from(a.stars);
        review.useful = scaled(rng, 8.0, 4);
        review.funny = scaled(rng, 4.0, 5);
        review.cool = scaled(rng, 5.0, 5);
        self.text.review(rng, a.stars, &mut review.text);
        review.date.clear();
        push_datetime(&mut review.date, self.activity_time(rng, a.user));
    }

    /// A moment between the user's sign-up and the end of the dataset, skewed towards recent
    /// years as Yelp's activity was.
    fn activity_time(&self, rng: &mut Prng, user: usize) -> i64 {
        let since = self.user_since[user];
        let span = (DATASET_END - since) as f64;
        since + (span * rng.unit().sqrt()) as i64
    }

    // -- tips ---------------------------------------------------------------------------------

    fn write_tips(&self, out: &mut impl Write) -> io::Result<Counts> {
        let mut rng = Prng::new(self.seed, Stream::Tip);
        let mut invalid = InvalidSchedule::new(self.invalid_rate, &TIP_INVALID_KINDS);
        let mut tip = Tip {
            user_id: String::with_capacity(22),
            business_id: String::with_capacity(22),
            text: String::with_capacity(256),
            date: String::with_capacity(19),
            compliment_count: 0,
        };
        let mut scratch = Vec::with_capacity(1024);
        for _ in 0..self.sizes.tips {
            self.fill_tip(&mut rng, &mut tip);
            match invalid.for_next_line() {
                None => write_line(out, &tip)?,
                Some(kind) => write_invalid_tip(out, &mut tip, kind, &mut scratch)?,
            }
        }
        Ok(Counts {
            lines: self.sizes.tips,
            invalid: invalid.injected,
        })
    }

    fn fill_tip(&self, rng: &mut Prng, tip: &mut Tip) {
        let user = self.user_popularity.sample(rng);
        let business = self.business_popularity.sample(rng);
        tip.user_id.clear();
        self.user_id(user, &mut tip.user_id);
        tip.business_id.clear();
        self.business_id(business, &mut tip.business_id);
        let stars = self.business_typical_stars[business];
        self.text.tip(rng, stars, &mut tip.text);
        tip.date.clear();
        push_datetime(&mut tip.date, self.activity_time(rng, user));
        tip.compliment_count = match rng.unit() {
            u if u < 0.975 => 0,
            u if u < 0.997 => 1,
            _ => rng.range_i64(2, 4),
        };
    }

    // -- check-ins ----------------------------------------------------------------------------

    fn write_checkins(&self, out: &mut impl Write) -> io::Result<Counts> {
        let mut rng = Prng::new(self.seed, Stream::Checkin);
        let mut checkin = Checkin {
            business_id: String::with_capacity(22),
            date: String::new(),
        };
        let mut times: Vec<i64> = Vec::new();
        let mut lines = 0;
        for business in 0..self.sizes.businesses {
            // About one business in five never had a check-in and has no line at all.
            if !rng.chance(0.8) {
                continue;
            }
            checkin.business_id.clear();
            self.business_id(business, &mut checkin.business_id);
            let reviews = f64::from(self.business_tally[business].count);
            let count = (1 + scaled(&mut rng, reviews * 2.0 + 4.0, 1)).min(MAX_CHECKINS_PER_BUSINESS);
            times.clear();
            times.extend((0..count).map(|_| rng.range_i64(CHECKIN_START, DATASET_END)));
            times.sort_unstable(); // the official lines are in chronological order
            checkin.date.clear();
            for (i, &t) in times.iter().enumerate() {
                if i > 0 {
                    checkin.date.push_str(", ");
                }
                push_datetime(&mut checkin.date, t);
            }
            write_line(out, &checkin)?;
            lines += 1;
        }
        Ok(Counts { lines, invalid: 0 })
    }
}

/// Caps the longest check-in line (the real maximum is tens of thousands of timestamps; a few
/// thousand show the shape without bloating small datasets).
const MAX_CHECKINS_PER_BUSINESS: i64 = 3000;

// ---------------------------------------------------------------------------------------------
// Malformed lines

/// Decides, deterministically and evenly spread, which lines are replaced by malformed ones:
/// line `i` is bad when `floor((i + 1) × rate)` exceeds `floor(i × rate)`, which makes exactly
/// `floor(lines × rate)` bad lines.
struct InvalidSchedule {
    rate: f64,
    kinds: &'static [InvalidKind],
    line: u64,
    injected: u64,
}

impl InvalidSchedule {
    fn new(rate: f64, kinds: &'static [InvalidKind]) -> Self {
        InvalidSchedule {
            rate,
            kinds,
            line: 0,
            injected: 0,
        }
    }

    /// The kind of malformed line to write instead of the next line, if any.
    fn for_next_line(&mut self) -> Option<InvalidKind> {
        let before = (self.line as f64 * self.rate).floor();
        self.line += 1;
        let after = (self.line as f64 * self.rate).floor();
        if after <= before {
            return None;
        }
        let kind = self.kinds[(self.injected % self.kinds.len() as u64) as usize];
        self.injected += 1;
        Some(kind)
    }
}

/// A review whose fields the malformed kinds can drop or retype, in the official field order.
#[derive(Serialize)]
struct LooseReview<'a, S: Serialize> {
    #[serde(skip_serializing_if = "Option::is_none")]
    review_id: Option<&'a str>,
    user_id: &'a str,
    business_id: &'a str,
    stars: S,
    useful: i64,
    funny: i64,
    cool: i64,
    text: &'a str,
    date: &'a str,
}

/// `review` as a [`LooseReview`] with the given `review_id` and `stars`.
fn loose_review<'a, S: Serialize>(review: &'a Review, review_id: Option<&'a str>, stars: S) -> LooseReview<'a, S> {
    LooseReview {
        review_id,
        user_id: &review.user_id,
        business_id: &review.business_id,
        stars,
        useful: review.useful,
        funny: review.funny,
        cool: review.cool,
        text: &review.text,
        date: &review.date,
    }
}

fn write_invalid_review(
    out: &mut impl Write,
    review: &mut Review,
    kind: InvalidKind,
    scratch: &mut Vec<u8>,
) -> io::Result<()> {
    match kind {
        InvalidKind::TruncatedJson => write_truncated(out, review, scratch),
        InvalidKind::StarsOutOfRange => {
            review.stars = 7.0;
            write_line(out, review)
        }
        InvalidKind::MissingId => write_line(out, &loose_review(review, None, review.stars)),
        InvalidKind::BadDate => {
            review.date.clear();
            review.date.push_str("not a date");
            write_line(out, review)
        }
        InvalidKind::EmptyBusinessId => {
            review.business_id.clear();
            write_line(out, review)
        }
        InvalidKind::WrongType => write_line(out, &loose_review(review, Some(&review.review_id), "five")),
    }
}

/// A tip whose fields the malformed kinds can drop or retype, in the official field order.
#[derive(Serialize)]
struct LooseTip<'a, C: Serialize> {
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    business_id: &'a str,
    text: &'a str,
    date: &'a str,
    compliment_count: C,
}

/// `tip` as a [`LooseTip`] with the given `user_id` and `compliment_count`.
fn loose_tip<'a, C: Serialize>(tip: &'a Tip, user_id: Option<&'a str>, compliment_count: C) -> LooseTip<'a, C> {
    LooseTip {
        user_id,
        business_id: &tip.business_id,
        text: &tip.text,
        date: &tip.date,
        compliment_count,
    }
}

fn write_invalid_tip(out: &mut impl Write, tip: &mut Tip, kind: InvalidKind, scratch: &mut Vec<u8>) -> io::Result<()> {
    match kind {
        InvalidKind::TruncatedJson => write_truncated(out, tip, scratch),
        InvalidKind::MissingId => write_line(out, &loose_tip(tip, None, tip.compliment_count)),
        InvalidKind::BadDate => {
            tip.date.clear();
            tip.date.push_str("not a date");
            write_line(out, tip)
        }
        InvalidKind::EmptyBusinessId => {
            tip.business_id.clear();
            write_line(out, tip)
        }
        // Tips have no stars ([`TIP_INVALID_KINDS`] never asks); a retyped count stands in.
        InvalidKind::WrongType | InvalidKind::StarsOutOfRange => {
            write_line(out, &loose_tip(tip, Some(&tip.user_id), "one"))
        }
    }
}

/// The first half of the record's line, cut on a character boundary so that the line is
/// broken JSON but still valid UTF-8 (one defect per line keeps dead-letter reasons clear).
fn write_truncated<W: Write, T: Serialize>(out: &mut W, record: &T, scratch: &mut Vec<u8>) -> io::Result<()> {
    scratch.clear();
    write_line(scratch, record)?;
    let mut cut = scratch.len() / 2;
    while cut > 0 && (scratch[cut] & 0xC0) == 0x80 {
        cut -= 1; // inside a multi-byte UTF-8 sequence
    }
    out.write_all(&scratch[..cut])?;
    out.write_all(b"\n")
}

// ---------------------------------------------------------------------------------------------
// PRNG: SplitMix64 seeding xoshiro256**, both by Blackman and Vigna (public domain).

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// xoshiro256**: fast, small, and fully specified, so a seed means the same sequence forever
/// (unlike `rand`'s `StdRng`, whose algorithm may change between versions).
struct Prng {
    s: [u64; 4],
}

impl Prng {
    fn new(seed: u64, stream: Stream) -> Self {
        let mut state = seed ^ stream.salt();
        Prng {
            s: [(); 4].map(|()| splitmix64(&mut state)),
        }
    }

    fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)`, 53 bits.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `0..n` (`n > 0`), by multiply-shift (Lemire); the bias is below 2⁻⁶⁴·n.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    fn range_i64(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo) as u64 + 1) as i64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// An item drawn with probability proportional to its integer weight.
    fn weighted<'a, T>(&mut self, items: &'a [T], weight: impl Fn(&T) -> u32) -> &'a T {
        let total: u64 = items.iter().map(|i| u64::from(weight(i))).sum();
        let mut target = self.below(total);
        for item in items {
            let w = u64::from(weight(item));
            if target < w {
                return item;
            }
            target -= w;
        }
        &items[items.len() - 1]
    }
}

/// `floor(max × uᵏ)`: mostly small with a long tail, the shape of most counters in the dataset
/// (useful votes, fans, compliments). Repeated multiplication instead of `powf` keeps it exact.
fn scaled(rng: &mut Prng, max: f64, k: u32) -> i64 {
    let u = rng.unit();
    let mut x = max;
    for _ in 0..k {
        x *= u;
    }
    x as i64
}

/// Stars with the real dataset's skew: 1★ 15 %, 2★ 8 %, 3★ 11 %, 4★ 22 %, 5★ 44 %.
fn draw_stars(u: f64) -> u8 {
    const CUMULATIVE: [f64; 5] = [0.15, 0.23, 0.34, 0.56, 1.0];
    CUMULATIVE.iter().position(|&c| u < c).map_or(5, |i| i as u8 + 1)
}

/// Zipf-like popularity (weight of rank r ∝ 1/√r, which gives the real dataset's long tail:
/// a few businesses with thousands of reviews, the median with a dozen), with ranks shuffled
/// over indices so file order does not reveal popularity.
struct Popularity {
    cumulative: Vec<f64>,
    index_of_rank: Vec<u32>,
}

impl Popularity {
    fn new(n: usize, rng: &mut Prng) -> Self {
        let mut total = 0.0;
        let cumulative = (0..n)
            .map(|rank| {
                total += 1.0 / ((rank + 1) as f64).sqrt();
                total
            })
            .collect();
        let mut index_of_rank: Vec<u32> = (0..n as u32).collect();
        for i in (1..n).rev() {
            let j = rng.below(i as u64 + 1) as usize; // Fisher–Yates
            index_of_rank.swap(i, j);
        }
        Popularity {
            cumulative,
            index_of_rank,
        }
    }

    fn sample(&self, rng: &mut Prng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let target = rng.unit() * total;
        let rank = self
            .cumulative
            .partition_point(|&c| c <= target)
            .min(self.cumulative.len() - 1);
        self.index_of_rank[rank] as usize
    }
}

// ---------------------------------------------------------------------------------------------
// Identifiers and timestamps

const ID_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Appends the 22-character id of record `index` of a kind: the URL-safe base64 of 128 bits, as
/// Yelp's ids are (hence their last character is always one of `A`, `Q`, `g`, `w`).
///
/// Derived from the index instead of stored, so friends lists, reviews and tips can name any
/// user or business for free. Unique within a kind: each id consumes two SplitMix64 states of
/// its own (stride 2), the first 64 bits are the output of distinct states, and SplitMix64's
/// output function is a bijection.
fn push_id(out: &mut String, seed: u64, kind: Stream, index: u64) {
    const ID_SALT: u64 = 0x6964_7300_0000_0000; // keeps ids apart from the record streams
    let base = seed ^ kind.salt() ^ ID_SALT;
    let mut state = base.wrapping_add(index.wrapping_mul(2).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let bits = (u128::from(splitmix64(&mut state)) << 64) | u128::from(splitmix64(&mut state));
    for i in 0..21 {
        out.push(char::from(ID_ALPHABET[((bits >> (122 - 6 * i)) & 63) as usize]));
    }
    out.push(char::from(ID_ALPHABET[((bits & 3) << 4) as usize]));
}

/// 2005-01-01 00:00:00 UTC: the first sign-ups of the dataset are from late 2004, reviews from 2005.
const USER_SINCE_START: i64 = 1_104_537_600;
/// 2021-12-31 00:00:00 UTC.
const USER_SINCE_END: i64 = 1_640_908_800;
/// 2010-01-01 00:00:00 UTC: the check-in history starts in 2010.
const CHECKIN_START: i64 = 1_262_304_000;
/// 2022-01-19 20:00:00 UTC, just after the last review of the 2022 release.
const DATASET_END: i64 = 1_642_622_400;

/// Appends `"YYYY-MM-DD HH:MM:SS"` for Unix seconds, without allocating (chrono's `format`
/// would allocate and parse a format string per call, in the hottest loop).
fn push_datetime(out: &mut String, unix: i64) {
    let (year, month, day) = civil_from_days(unix.div_euclid(86_400));
    let secs = unix.rem_euclid(86_400);
    push_padded(out, year, 4);
    out.push('-');
    push_padded(out, i64::from(month), 2);
    out.push('-');
    push_padded(out, i64::from(day), 2);
    out.push(' ');
    push_padded(out, secs / 3600, 2);
    out.push(':');
    push_padded(out, secs / 60 % 60, 2);
    out.push(':');
    push_padded(out, secs % 60, 2);
}

fn push_padded(out: &mut String, value: i64, width: u32) {
    let mut divisor = 10i64.pow(width - 1);
    while divisor > 0 {
        out.push(char::from(b'0' + (value / divisor % 10) as u8));
        divisor /= 10;
    }
}

/// (year, month, day) of a day count since 1970-01-01, by Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn year_of(unix: i64) -> i64 {
    civil_from_days(unix.div_euclid(86_400)).0
}

/// Elite years: a run of consecutive years after sign-up, for a few active users; 2020 is
/// written `20,20` as in the 2021+ releases of the dataset.
fn push_elite(out: &mut String, rng: &mut Prng, since_year: i64, reviews: u32) {
    let p = if reviews >= 10 { 0.35 } else { 0.02 };
    if !rng.chance(p) {
        return;
    }
    let first = (since_year + 1).max(2006);
    if first > 2021 {
        return;
    }
    let start = rng.range_i64(first, 2021);
    let end = (start + scaled(rng, 7.0, 2)).min(2021);
    for year in start..=end {
        if !out.is_empty() {
            out.push(',');
        }
        if year == 2020 {
            out.push_str("20,20");
        } else {
            push_padded(out, year, 4);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Businesses: places, names, categories, attributes, hours

struct City {
    name: &'static str,
    state: &'static str,
    latitude: f64,
    longitude: f64,
    /// First digits of the ZIP codes; empty for Canadian cities.
    zip_prefix: &'static str,
    /// Businesses in the 2022 release, to weight the choice.
    weight: u32,
}

const CITIES: [City; 12] = [
    City {
        name: "Philadelphia",
        state: "PA",
        latitude: 39.9526,
        longitude: -75.1652,
        zip_prefix: "191",
        weight: 14569,
    },
    City {
        name: "Tucson",
        state: "AZ",
        latitude: 32.2226,
        longitude: -110.9747,
        zip_prefix: "857",
        weight: 9250,
    },
    City {
        name: "Tampa",
        state: "FL",
        latitude: 27.9506,
        longitude: -82.4572,
        zip_prefix: "336",
        weight: 9050,
    },
    City {
        name: "Indianapolis",
        state: "IN",
        latitude: 39.7684,
        longitude: -86.1581,
        zip_prefix: "462",
        weight: 7540,
    },
    City {
        name: "Nashville",
        state: "TN",
        latitude: 36.1627,
        longitude: -86.7816,
        zip_prefix: "372",
        weight: 6971,
    },
    City {
        name: "New Orleans",
        state: "LA",
        latitude: 29.9511,
        longitude: -90.0715,
        zip_prefix: "701",
        weight: 6209,
    },
    City {
        name: "Reno",
        state: "NV",
        latitude: 39.5296,
        longitude: -119.8138,
        zip_prefix: "895",
        weight: 5935,
    },
    City {
        name: "Edmonton",
        state: "AB",
        latitude: 53.5461,
        longitude: -113.4938,
        zip_prefix: "",
        weight: 5054,
    },
    City {
        name: "Saint Louis",
        state: "MO",
        latitude: 38.6270,
        longitude: -90.1994,
        zip_prefix: "631",
        weight: 4827,
    },
    City {
        name: "Santa Barbara",
        state: "CA",
        latitude: 34.4208,
        longitude: -119.6982,
        zip_prefix: "931",
        weight: 3829,
    },
    City {
        name: "Boise",
        state: "ID",
        latitude: 43.6150,
        longitude: -116.2023,
        zip_prefix: "837",
        weight: 2937,
    },
    City {
        name: "Clearwater",
        state: "FL",
        latitude: 27.9659,
        longitude: -82.8001,
        zip_prefix: "337",
        weight: 2221,
    },
];

/// A kind of business: its categories (the first two always listed), name nouns, and whether
/// the restaurant attributes apply.
struct Profile {
    categories: &'static [&'static str],
    nouns: &'static [&'static str],
    food: bool,
    weight: u32,
}

// "Beer, Wine & Spirits" is one category containing a comma, as in the real data: splitting
// on commas turns it into "Beer" and "Wine & Spirits" there too.
const PROFILES: [Profile; 16] = [
    Profile {
        categories: &[
            "Restaurants",
            "Mexican",
            "Tacos",
            "Tex-Mex",
            "Bars",
            "Nightlife",
            "Food Trucks",
        ],
        nouns: &["Taqueria", "Cantina", "Tacos", "Cocina"],
        food: true,
        weight: 10,
    },
    Profile {
        categories: &[
            "Restaurants",
            "Pizza",
            "Italian",
            "Salad",
            "Chicken Wings",
            "Sandwiches",
        ],
        nouns: &["Pizza", "Pizzeria", "Trattoria"],
        food: true,
        weight: 12,
    },
    Profile {
        categories: &[
            "Food",
            "Coffee & Tea",
            "Cafes",
            "Breakfast & Brunch",
            "Bakeries",
            "Restaurants",
        ],
        nouns: &["Coffee", "Cafe", "Roasters", "Espresso Bar"],
        food: true,
        weight: 9,
    },
    Profile {
        categories: &[
            "Nightlife",
            "Bars",
            "American (Traditional)",
            "Restaurants",
            "Sports Bars",
            "Pubs",
            "Cocktail Bars",
            "Beer, Wine & Spirits",
        ],
        nouns: &["Tavern", "Pub", "Taproom", "Lounge"],
        food: true,
        weight: 10,
    },
    Profile {
        categories: &[
            "Restaurants",
            "Chinese",
            "Asian Fusion",
            "Noodles",
            "Dim Sum",
            "Seafood",
        ],
        nouns: &["Garden", "Kitchen", "Noodle House", "Wok"],
        food: true,
        weight: 7,
    },
    Profile {
        categories: &[
            "Restaurants",
            "Burgers",
            "Fast Food",
            "American (New)",
            "Hot Dogs",
            "Sandwiches",
        ],
        nouns: &["Burgers", "Grill", "Diner", "Drive-In"],
        food: true,
        weight: 9,
    },
    Profile {
        categories: &["Restaurants", "Japanese", "Sushi Bars", "Ramen", "Asian Fusion"],
        nouns: &["Sushi", "Ramen", "Izakaya"],
        food: true,
        weight: 5,
    },
    Profile {
        categories: &["Restaurants", "Cajun/Creole", "Seafood", "Southern", "Soul Food"],
        nouns: &["Kitchen", "Po-Boys", "Oyster Bar"],
        food: true,
        weight: 4,
    },
    Profile {
        categories: &["Food", "Ice Cream & Frozen Yogurt", "Desserts", "Bakeries", "Donuts"],
        nouns: &["Creamery", "Sweets", "Bakery"],
        food: true,
        weight: 5,
    },
    Profile {
        categories: &[
            "Beauty & Spas",
            "Hair Salons",
            "Nail Salons",
            "Barbers",
            "Hair Removal",
            "Eyelash Service",
        ],
        nouns: &["Salon", "Hair Studio", "Beauty Bar"],
        food: false,
        weight: 8,
    },
    Profile {
        categories: &[
            "Automotive",
            "Auto Repair",
            "Oil Change Stations",
            "Tires",
            "Car Wash",
            "Body Shops",
        ],
        nouns: &["Auto Care", "Motors", "Tire & Auto"],
        food: false,
        weight: 6,
    },
    Profile {
        categories: &[
            "Health & Medical",
            "Doctors",
            "Dentists",
            "Chiropractors",
            "Acupuncture",
            "Naturopathic/Holistic",
            "Traditional Chinese Medicine",
        ],
        nouns: &["Family Dental", "Wellness Center", "Chiropractic"],
        food: false,
        weight: 6,
    },
    Profile {
        categories: &[
            "Shopping",
            "Food",
            "Grocery",
            "Convenience Stores",
            "Specialty Food",
            "Health Markets",
            "Drugstores",
        ],
        nouns: &["Market", "Grocery", "Food Mart"],
        food: false,
        weight: 7,
    },
    Profile {
        categories: &[
            "Home Services",
            "Contractors",
            "Plumbing",
            "Heating & Air Conditioning/HVAC",
            "Electricians",
            "Handyman",
        ],
        nouns: &["Plumbing", "Home Services", "Heating & Air"],
        food: false,
        weight: 5,
    },
    Profile {
        categories: &[
            "Active Life",
            "Fitness & Instruction",
            "Gyms",
            "Yoga",
            "Trainers",
            "Pilates",
        ],
        nouns: &["Fitness", "Yoga Studio", "Athletic Club"],
        food: false,
        weight: 4,
    },
    Profile {
        categories: &["Pets", "Pet Services", "Pet Groomers", "Veterinarians", "Pet Stores"],
        nouns: &["Pet Care", "Animal Hospital", "Pet Supply"],
        food: false,
        weight: 3,
    },
];

const SURNAMES: [&str; 30] = [
    "Smith",
    "Johnson",
    "Garcia",
    "Nguyen",
    "Rossi",
    "Kim",
    "Patel",
    "Miller",
    "Lopez",
    "Chen",
    "Brown",
    "Davis",
    "Martinez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Moore",
    "Jackson",
    "Lee",
    "Walker",
    "Hernandez",
    "O'Brien",
    "Murphy",
    "Russo",
    "Schmidt",
    "Dubois",
    "Kowalski",
    "Tanaka",
    "Singh",
    "Romano",
];

const ADJECTIVES: [&str; 20] = [
    "Golden",
    "Blue",
    "Little",
    "Happy",
    "Rustic",
    "Urban",
    "Lucky",
    "Silver",
    "Old Town",
    "Green",
    "Red",
    "Sunny",
    "Royal",
    "Hidden",
    "Corner",
    "Main Street",
    "Southern",
    "Coastal",
    "Modern",
    "Copper",
];

const FIRST_NAMES: [&str; 40] = [
    "Walker",
    "Jennifer",
    "Michael",
    "Sarah",
    "David",
    "Jessica",
    "Chris",
    "Ashley",
    "John",
    "Emily",
    "Daniel",
    "Amanda",
    "Kevin",
    "Melissa",
    "Brian",
    "Nicole",
    "James",
    "Stephanie",
    "Mark",
    "Lauren",
    "Jason",
    "Elizabeth",
    "Ryan",
    "Rachel",
    "Eric",
    "Megan",
    "Steve",
    "Amy",
    "Matt",
    "Laura",
    "Tony",
    "Linda",
    "Karen",
    "Jose",
    "Maria",
    "Wei",
    "Priya",
    "Ahmed",
    "Olga",
    "Kenji",
];

const STREETS: [&str; 25] = [
    "Main",
    "Chapala",
    "Walnut",
    "Market",
    "Broad",
    "Oak",
    "Maple",
    "Pine",
    "Cedar",
    "Elm",
    "Washington",
    "Lincoln",
    "Jefferson",
    "Franklin",
    "Canal",
    "Magnolia",
    "Bourbon",
    "Speedway",
    "Meridian",
    "Fairview",
    "Sunset",
    "Lake",
    "Park",
    "Church",
    "Mill",
];

const STREET_SUFFIXES: [&str; 8] = ["St", "Ave", "Rd", "Blvd", "Dr", "Ln", "Way", "Pike"];

fn business_name(rng: &mut Prng, profile: &Profile) -> String {
    let noun = rng.pick(profile.nouns);
    match rng.below(4) {
        0 => format!("{}'s {noun}", rng.pick(&SURNAMES)),
        1 => format!("The {} {noun}", rng.pick(&ADJECTIVES)),
        2 => format!("{} {noun}", rng.pick(&ADJECTIVES)),
        _ => format!("{} & {} {noun}", rng.pick(&SURNAMES), rng.pick(&SURNAMES)),
    }
}

fn address(rng: &mut Prng) -> String {
    // Food trucks and mobile services have no address in the real data.
    if rng.chance(0.03) {
        return String::new();
    }
    let mut address = format!(
        "{} {} {}",
        rng.range_i64(1, 9999),
        rng.pick(&STREETS),
        rng.pick(&STREET_SUFFIXES)
    );
    if rng.chance(0.08) {
        address.push_str(&format!(", Ste {}", rng.range_i64(1, 400)));
    }
    address
}

fn postal_code(rng: &mut Prng, city: &City) -> String {
    if city.zip_prefix.is_empty() {
        // Canadian format, "T5J 0N3".
        const LETTERS: &[u8] = b"ABCEGHJKLMNPRSTVXY";
        let letter = |rng: &mut Prng| char::from(*rng.pick(LETTERS));
        return format!(
            "T{}{} {}{}{}",
            rng.below(7),
            letter(rng),
            rng.below(10),
            letter(rng),
            rng.below(10)
        );
    }
    format!("{}{:02}", city.zip_prefix, rng.below(100))
}

/// Within about ±0.08° (a city's extent), rounded to 7 decimals like the real coordinates.
fn jitter_coordinate(rng: &mut Prng, centre: f64) -> f64 {
    let value = centre + (rng.unit() - 0.5) * 0.16;
    (value * 1e7).round() / 1e7
}

/// `"Restaurants, Mexican, Bars"`: the profile's two main categories plus up to three more, in
/// random order as in the real data.
fn categories(rng: &mut Prng, profile: &Profile) -> String {
    let pool = profile.categories;
    let mut chosen: Vec<&str> = vec![pool[0], pool[1]];
    let extra = rng.below(4) as usize;
    for _ in 0..extra {
        let candidate = *rng.pick(&pool[2..]);
        if !chosen.contains(&candidate) {
            chosen.push(candidate);
        }
    }
    for i in (1..chosen.len()).rev() {
        chosen.swap(i, rng.below(i as u64 + 1) as usize);
    }
    chosen.join(", ")
}

/// How an attribute's value is drawn. Values are strings holding Python literals, the
/// dataset's best-known quirk.
enum AttributeValue {
    /// `"True"` / `"False"`, rarely `"None"`.
    Bool,
    Choice(&'static [&'static str]),
    /// A Python dict literal of booleans, `"{'garage': False, 'street': True, …}"`.
    Dict(&'static [&'static str]),
}

const COMMON_ATTRIBUTES: [(&str, AttributeValue); 6] = [
    ("BusinessAcceptsCreditCards", AttributeValue::Bool),
    (
        "BusinessParking",
        AttributeValue::Dict(&["garage", "street", "validated", "lot", "valet"]),
    ),
    ("WheelchairAccessible", AttributeValue::Bool),
    ("ByAppointmentOnly", AttributeValue::Bool),
    ("BikeParking", AttributeValue::Bool),
    ("DogsAllowed", AttributeValue::Bool),
];

const FOOD_ATTRIBUTES: [(&str, AttributeValue); 16] = [
    (
        "RestaurantsPriceRange2",
        AttributeValue::Choice(&["1", "2", "2", "2", "3", "4", "None"]),
    ),
    (
        "WiFi",
        AttributeValue::Choice(&["u'free'", "'free'", "u'no'", "'no'", "u'paid'", "None"]),
    ),
    (
        "Alcohol",
        AttributeValue::Choice(&[
            "u'full_bar'",
            "'full_bar'",
            "u'beer_and_wine'",
            "'beer_and_wine'",
            "u'none'",
            "'none'",
            "None",
        ]),
    ),
    (
        "NoiseLevel",
        AttributeValue::Choice(&[
            "u'average'",
            "'average'",
            "u'quiet'",
            "'quiet'",
            "u'loud'",
            "u'very_loud'",
        ]),
    ),
    (
        "RestaurantsAttire",
        AttributeValue::Choice(&["u'casual'", "'casual'", "'dressy'", "u'formal'"]),
    ),
    ("RestaurantsTakeOut", AttributeValue::Bool),
    ("RestaurantsDelivery", AttributeValue::Bool),
    ("RestaurantsReservations", AttributeValue::Bool),
    ("OutdoorSeating", AttributeValue::Bool),
    ("GoodForKids", AttributeValue::Bool),
    ("HasTV", AttributeValue::Bool),
    ("Caters", AttributeValue::Bool),
    ("RestaurantsGoodForGroups", AttributeValue::Bool),
    ("HappyHour", AttributeValue::Bool),
    (
        "Ambience",
        AttributeValue::Dict(&[
            "touristy", "hipster", "romantic", "divey", "intimate", "trendy", "upscale", "classy", "casual",
        ]),
    ),
    (
        "GoodForMeal",
        AttributeValue::Dict(&["dessert", "latenight", "lunch", "dinner", "brunch", "breakfast"]),
    ),
];

fn attributes(rng: &mut Prng, profile: &Profile) -> BTreeMap<String, Value> {
    let mut attrs = BTreeMap::new();
    let food: &[(&str, AttributeValue)] = if profile.food { &FOOD_ATTRIBUTES } else { &[] };
    for (name, kind) in COMMON_ATTRIBUTES.iter().chain(food) {
        if rng.chance(0.6) {
            attrs.insert((*name).to_string(), Value::String(attribute_value(rng, kind)));
        }
    }
    if attrs.is_empty() {
        attrs.insert(
            "BusinessAcceptsCreditCards".to_string(),
            Value::String("True".to_string()),
        );
    }
    attrs
}

fn attribute_value(rng: &mut Prng, kind: &AttributeValue) -> String {
    let python_bool = |rng: &mut Prng| match rng.below(40) {
        0 => "None",
        n if n < 24 => "True",
        _ => "False",
    };
    match kind {
        AttributeValue::Bool => python_bool(rng).to_string(),
        AttributeValue::Choice(options) => (*rng.pick(options)).to_string(),
        AttributeValue::Dict(keys) => {
            let entries: Vec<String> = keys.iter().map(|k| format!("'{k}': {}", python_bool(rng))).collect();
            format!("{{{}}}", entries.join(", "))
        }
    }
}

const WEEKDAYS: [(&str, f64); 7] = [
    ("Monday", 0.85),
    ("Tuesday", 0.92),
    ("Wednesday", 0.92),
    ("Thursday", 0.92),
    ("Friday", 0.93),
    ("Saturday", 0.85),
    ("Sunday", 0.65),
];

/// Weekday → `"8:0-18:30"` (hours and minutes unpadded, as in the files). Some businesses
/// list `"0:0-0:0"` for every day, another real quirk.
fn hours(rng: &mut Prng) -> BTreeMap<String, String> {
    let all_day = rng.chance(0.05);
    let open_hour: i64 = *rng.pick(&[6, 7, 7, 8, 8, 9, 10, 11, 11, 16, 17]);
    let open_minute: i64 = *rng.pick(&[0, 0, 0, 30, 0, 15]);
    // Evening openers (bars) close around midnight, day businesses in the evening.
    let close_hour = if open_hour >= 16 {
        (open_hour + rng.range_i64(5, 9)) % 24
    } else {
        open_hour + rng.range_i64(6, 12)
    };
    let close_minute: i64 = *rng.pick(&[0, 0, 30, 0, 45]);
    let mut hours = BTreeMap::new();
    for (day, p) in WEEKDAYS {
        if !rng.chance(p) {
            continue;
        }
        let value = if all_day {
            "0:0-0:0".to_string()
        } else {
            format!("{open_hour}:{open_minute}-{close_hour}:{close_minute}")
        };
        hours.insert(day.to_string(), value);
    }
    hours
}

// ---------------------------------------------------------------------------------------------
// Text

/// Common words, most frequent first (sampled with Zipf weights by rank).
const WORDS: &[&str] = &[
    "the",
    "and",
    "I",
    "a",
    "to",
    "was",
    "it",
    "of",
    "for",
    "is",
    "in",
    "we",
    "my",
    "with",
    "this",
    "they",
    "but",
    "you",
    "on",
    "that",
    "had",
    "were",
    "food",
    "so",
    "place",
    "here",
    "at",
    "not",
    "have",
    "our",
    "be",
    "good",
    "are",
    "very",
    "all",
    "just",
    "there",
    "out",
    "like",
    "great",
    "me",
    "time",
    "as",
    "one",
    "service",
    "get",
    "back",
    "would",
    "if",
    "up",
    "which",
    "their",
    "an",
    "really",
    "or",
    "came",
    "go",
    "from",
    "also",
    "order",
    "us",
    "what",
    "when",
    "about",
    "some",
    "will",
    "more",
    "can",
    "ordered",
    "nice",
    "it's",
    "staff",
    "little",
    "because",
    "been",
    "always",
    "menu",
    "only",
    "even",
    "got",
    "try",
    "by",
    "restaurant",
    "no",
    "other",
    "well",
    "chicken",
    "too",
    "first",
    "went",
    "don't",
    "then",
    "could",
    "table",
    "people",
    "make",
    "know",
    "than",
    "made",
    "come",
    "our",
    "much",
    "came",
    "minutes",
    "pretty",
    "server",
    "wait",
    "bar",
    "night",
    "experience",
    "sauce",
    "definitely",
    "she",
    "he",
    "again",
    "after",
    "check",
    "over",
    "price",
    "prices",
    "way",
    "went",
    "lunch",
    "dinner",
    "drinks",
    "said",
    "two",
    "area",
    "location",
    "next",
    "friends",
    "ever",
    "since",
    "going",
    "want",
    "day",
    "before",
    "everything",
    "sure",
    "fries",
    "cheese",
    "pizza",
    "salad",
    "burger",
    "coffee",
    "last",
    "bit",
    "where",
    "home",
    "though",
    "right",
    "these",
    "think",
    "atmosphere",
    "side",
    "selection",
    "town",
    "lot",
    "small",
    "around",
    "new",
    "order",
    "times",
    "while",
    "drink",
    "fresh",
    "meal",
    "ask",
    "hot",
    "bread",
    "see",
    "hour",
    "table",
    "seated",
    "kitchen",
    "portion",
    "portions",
    "sandwich",
    "tacos",
    "rice",
    "beef",
    "pork",
    "shrimp",
    "fish",
    "soup",
    "dessert",
    "cake",
    "tea",
    "beer",
    "wine",
    "cocktails",
    "happy",
    "weekend",
    "Saturday",
    "Friday",
    "morning",
    "parking",
    "street",
    "downtown",
    "neighborhood",
    "owner",
    "manager",
    "waitress",
    "waiter",
    "bartender",
    "customer",
    "customers",
    "appointment",
    "car",
    "hair",
    "room",
    "hotel",
    "stay",
    "visit",
    "visited",
    "tried",
    "felt",
    "seemed",
    "looked",
    "decided",
    "wanted",
    "needed",
    "took",
    "gave",
    "left",
    "found",
    "called",
    "said",
    "told",
    "asked",
    "paid",
    "bill",
    "tip",
    "cash",
    "card",
    "line",
    "crowd",
    "busy",
    "quiet",
    "clean",
    "spot",
    "patio",
    "music",
    "view",
    "decor",
    "space",
    "inside",
    "outside",
    "upstairs",
    "menu",
    "special",
    "specials",
    "options",
    "vegan",
    "vegetarian",
    "gluten-free",
    "spicy",
    "sweet",
    "sour",
    "savory",
    "rich",
    "light",
    "crispy",
    "tender",
    "juicy",
    "huge",
    "tiny",
    "quick",
    "long",
    "late",
    "early",
    "open",
    "closed",
    "family",
    "kids",
    "dog",
    "birthday",
    "anniversary",
    "date",
    "group",
    "party",
    "reservation",
    "minute",
    "hours",
    "week",
    "month",
    "year",
    "years",
    "ago",
    "later",
    "soon",
    "never",
    "usually",
    "often",
    "probably",
    "maybe",
    "actually",
    "honestly",
    "overall",
    "though",
    "however",
    "especially",
    "almost",
    "quite",
    "café",
    "jalapeño",
    "crème",
    "brûlée",
    "piña",
    "colada",
    "$20",
    "5/5",
    "24/7",
];

const POSITIVE_WORDS: &[&str] = &[
    "amazing",
    "delicious",
    "fantastic",
    "excellent",
    "wonderful",
    "perfect",
    "awesome",
    "fresh",
    "friendly",
    "attentive",
    "outstanding",
    "incredible",
    "tasty",
    "cozy",
    "lovely",
    "helpful",
    "welcoming",
    "flavorful",
    "spotless",
    "reasonable",
    "generous",
    "recommend",
    "favorite",
    "impressed",
    "gem",
    "beautiful",
    "superb",
    "fast",
    "professional",
    "yummy",
    "10/10",
    "highly",
    "loved",
    "enjoyed",
    "pleasant",
    "best",
    "authentic",
    "perfectly",
    "worth",
    "thank",
];

const NEGATIVE_WORDS: &[&str] = &[
    "terrible",
    "rude",
    "awful",
    "bland",
    "cold",
    "overpriced",
    "dirty",
    "slow",
    "disappointing",
    "worst",
    "horrible",
    "mediocre",
    "greasy",
    "soggy",
    "stale",
    "unprofessional",
    "ignored",
    "waited",
    "wrong",
    "burnt",
    "disgusting",
    "refund",
    "complaint",
    "gross",
    "unfriendly",
    "sticky",
    "undercooked",
    "salty",
    "dry",
    "forgot",
    "poor",
    "lukewarm",
    "noisy",
    "avoid",
    "sadly",
    "meh",
    "unacceptable",
    "inedible",
    "never",
    "rushed",
];

/// Number of slots of the word table; a power of two so a slot is a mask of random bits.
const WORD_TABLE_SLOTS: usize = 4096;

/// Builds review and tip texts into reused buffers: random words from [`WORDS`] with Zipf
/// frequencies, seasoned with sentiment words that match the stars, in capitalised sentences.
struct TextGenerator {
    /// Index into [`WORDS`] per slot, each word holding slots in proportion to its frequency,
    /// so drawing a word is one random number and one lookup.
    word_table: Vec<u16>,
}

impl TextGenerator {
    fn new() -> Self {
        let mut total = 0.0;
        let cumulative: Vec<f64> = (0..WORDS.len())
            .map(|rank| {
                total += 1.0 / (rank + 1) as f64;
                total
            })
            .collect();
        let word_table = (0..WORD_TABLE_SLOTS)
            .map(|slot| {
                let target = (slot as f64 + 0.5) / WORD_TABLE_SLOTS as f64 * total;
                cumulative.partition_point(|&c| c <= target).min(WORDS.len() - 1) as u16
            })
            .collect();
        TextGenerator { word_table }
    }

    /// 20–149 words in sentences, sometimes split into paragraphs with `" \n\n"` like real reviews.
    fn review(&self, rng: &mut Prng, stars: u8, out: &mut String) {
        out.clear();
        let u = rng.unit();
        let words = 20 + (130.0 * u * u.sqrt()) as usize;
        let mut written = 0;
        while written < words {
            if written > 0 {
                out.push_str(if rng.chance(0.07) { " \n\n" } else { " " });
            }
            let len = (6 + rng.below(11) as usize).min(words - written);
            self.sentence(rng, stars, len, out);
            written += len;
        }
    }

    /// One sentence of 3–24 words.
    fn tip(&self, rng: &mut Prng, stars: u8, out: &mut String) {
        out.clear();
        let len = 3 + rng.below(22) as usize;
        self.sentence(rng, stars, len, out);
    }

    fn sentence(&self, rng: &mut Prng, stars: u8, len: usize, out: &mut String) {
        let mut previous = "";
        for i in 0..len {
            let mut word = self.word(rng, stars);
            if word == previous {
                word = self.word(rng, stars); // "the the" reads like a bug, not like a review
            }
            previous = word;
            if i == 0 {
                push_capitalised(out, word);
            } else {
                out.push_str(if rng.chance(0.05) { ", " } else { " " });
                out.push_str(word);
            }
        }
        out.push(if rng.chance(0.12) { '!' } else { '.' });
    }

    fn word(&self, rng: &mut Prng, stars: u8) -> &'static str {
        let bits = rng.next_u64();
        // The low bits pick a slot, independent high bits decide on a sentiment word.
        if (bits >> 56) < 28 {
            // ≈ 11 % of words carry the review's sentiment; 3★ reviews mix both.
            let pool = match stars {
                1 | 2 => NEGATIVE_WORDS,
                3 if bits & (1 << 40) != 0 => NEGATIVE_WORDS,
                _ => POSITIVE_WORDS,
            };
            return pool[((bits >> 16) % pool.len() as u64) as usize];
        }
        WORDS[usize::from(self.word_table[(bits as usize) & (WORD_TABLE_SLOTS - 1)])]
    }
}

fn push_capitalised(out: &mut String, word: &str) {
    let mut chars = word.chars();
    if let Some(first) = chars.next() {
        out.push(first.to_ascii_uppercase());
        out.push_str(chars.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::quirks;
    use std::collections::HashSet;

    fn generate_into(dir: &Path, reviews: u64, seed: u64, invalid_rate: f64) -> GenerateSummary {
        generate(
            dir,
            &GenerateOptions {
                reviews,
                seed,
                invalid_rate,
            },
        )
        .unwrap()
    }

    fn lines(dir: &Path, entity: Entity) -> Vec<String> {
        fs::read_to_string(dir.join(entity.file_name()))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn parse_all<T: serde::de::DeserializeOwned>(dir: &Path, entity: Entity) -> Vec<T> {
        lines(dir, entity)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{entity} line does not parse ({e}): {l}")))
            .collect()
    }

    fn all_bytes(dir: &Path) -> Vec<u8> {
        Entity::ALL
            .iter()
            .flat_map(|e| fs::read(dir.join(e.file_name())).unwrap())
            .collect()
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let (a, b, c) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        generate_into(a.path(), 2_000, 7, 0.02);
        generate_into(b.path(), 2_000, 7, 0.02);
        generate_into(c.path(), 2_000, 8, 0.02);
        assert_eq!(all_bytes(a.path()), all_bytes(b.path()));
        assert_ne!(all_bytes(a.path()), all_bytes(c.path()));
    }

    /// Pins the output of one seed, so an accidental change of the byte stream (which would
    /// break "same seed, same data" across releases) fails a test rather than going unnoticed.
    #[test]
    fn output_is_stable_across_releases() {
        let dir = tempfile::tempdir().unwrap();
        generate_into(dir.path(), 50, 1, 0.0);
        let first_review = &lines(dir.path(), Entity::Review)[0];
        assert!(first_review.starts_with("{\"review_id\":\""), "{first_review}");
        let fingerprint = all_bytes(dir.path()).iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3) // FNV-1a
        });
        assert_eq!(
            fingerprint, 11_085_152_987_898_834_926,
            "update the pinned fingerprint only for an intended format change"
        );
    }

    #[test]
    fn sizes_follow_the_real_ratios() {
        let dir = tempfile::tempdir().unwrap();
        let s = generate_into(dir.path(), 9_000, 3, 0.0);
        assert_eq!(s.lines(Entity::Review), 9_000);
        assert_eq!(s.lines(Entity::Business), 200);
        assert_eq!(s.lines(Entity::User), 2_571);
        assert_eq!(s.lines(Entity::Tip), 1_125);
        let checkins = s.lines(Entity::Checkin);
        assert!((140..=180).contains(&checkins), "{checkins}");
        for entity in Entity::ALL {
            assert_eq!(lines(dir.path(), entity).len() as u64, s.lines(entity));
            let file = &s.files[&entity];
            assert_eq!(fs::metadata(&file.path).unwrap().len(), file.bytes);
            assert!(!dir.path().join(format!("{}.tmp", entity.file_name())).exists());
        }
        let tiny = tempfile::tempdir().unwrap();
        let s = generate_into(tiny.path(), 0, 3, 0.0);
        assert_eq!(
            (
                s.lines(Entity::Business),
                s.lines(Entity::User),
                s.lines(Entity::Review)
            ),
            (10, 10, 0)
        );
    }

    #[test]
    fn records_are_referentially_consistent() {
        let dir = tempfile::tempdir().unwrap();
        generate_into(dir.path(), 5_000, 11, 0.0);
        let businesses: Vec<Business> = parse_all(dir.path(), Entity::Business);
        let users: Vec<User> = parse_all(dir.path(), Entity::User);
        let reviews: Vec<Review> = parse_all(dir.path(), Entity::Review);
        let tips: Vec<Tip> = parse_all(dir.path(), Entity::Tip);
        let checkins: Vec<Checkin> = parse_all(dir.path(), Entity::Checkin);

        let business_ids: HashSet<&str> = businesses.iter().map(|b| b.business_id.as_str()).collect();
        let user_ids: HashSet<&str> = users.iter().map(|u| u.user_id.as_str()).collect();
        let review_ids: HashSet<&str> = reviews.iter().map(|r| r.review_id.as_str()).collect();
        assert_eq!(
            (business_ids.len(), user_ids.len(), review_ids.len()),
            (businesses.len(), users.len(), reviews.len())
        );
        for id in business_ids.iter().chain(&user_ids).chain(&review_ids) {
            assert_eq!(id.len(), 22, "{id}");
            assert!(id.bytes().all(|b| ID_ALPHABET.contains(&b)), "{id}");
            assert!(id.ends_with(['A', 'Q', 'g', 'w']), "{id}");
        }
        for r in &reviews {
            assert!(business_ids.contains(r.business_id.as_str()) && user_ids.contains(r.user_id.as_str()));
        }
        for t in &tips {
            assert!(business_ids.contains(t.business_id.as_str()) && user_ids.contains(t.user_id.as_str()));
        }
        let checkin_ids: HashSet<&str> = checkins.iter().map(|c| c.business_id.as_str()).collect();
        assert_eq!(checkin_ids.len(), checkins.len(), "one check-in line per business");
        assert!(checkin_ids.is_subset(&business_ids));
        for u in &users {
            for friend in quirks::parse_friends(&u.friends) {
                assert!(user_ids.contains(friend.as_str()) && friend != u.user_id);
            }
        }

        // Aggregates agree with the reviews written.
        let mut per_business: BTreeMap<&str, (i64, f64)> = BTreeMap::new();
        let mut per_user: BTreeMap<&str, (i64, f64)> = BTreeMap::new();
        for r in &reviews {
            let b = per_business.entry(r.business_id.as_str()).or_default();
            *b = (b.0 + 1, b.1 + r.stars);
            let u = per_user.entry(r.user_id.as_str()).or_default();
            *u = (u.0 + 1, u.1 + r.stars);
        }
        for b in &businesses {
            let (count, sum) = per_business.get(b.business_id.as_str()).copied().unwrap_or_default();
            assert_eq!(b.review_count, count);
            if count > 0 {
                assert_eq!(b.stars, (sum / count as f64 * 2.0).round() / 2.0);
            }
        }
        for u in &users {
            let (count, sum) = per_user.get(u.user_id.as_str()).copied().unwrap_or_default();
            assert_eq!(u.review_count, count);
            if count > 0 {
                assert!((u.average_stars - sum / count as f64).abs() <= 0.005 + 1e-9);
            }
        }
        // Nobody writes before joining.
        let since: BTreeMap<&str, &str> = users
            .iter()
            .map(|u| (u.user_id.as_str(), u.yelping_since.as_str()))
            .collect();
        for (user, date) in reviews
            .iter()
            .map(|r| (&r.user_id, &r.date))
            .chain(tips.iter().map(|t| (&t.user_id, &t.date)))
        {
            assert!(
                date.as_str() >= since[user.as_str()],
                "{date} before {}",
                since[user.as_str()]
            );
        }
    }

    #[test]
    fn star_distribution_matches_the_real_skew() {
        let dir = tempfile::tempdir().unwrap();
        generate_into(dir.path(), 20_000, 5, 0.0);
        let reviews: Vec<Review> = parse_all(dir.path(), Entity::Review);
        let mut counts = [0usize; 5];
        for r in &reviews {
            assert_eq!(r.stars.fract(), 0.0);
            counts[r.stars as usize - 1] += 1;
        }
        let expected = [0.15, 0.08, 0.11, 0.22, 0.44];
        for (stars, (&count, &share)) in counts.iter().zip(&expected).enumerate() {
            let actual = count as f64 / reviews.len() as f64;
            assert!((actual - share).abs() < 0.03, "{}★: {actual:.3} vs {share}", stars + 1);
        }
        assert!(
            lines(dir.path(), Entity::Review)
                .iter()
                .any(|l| l.contains("\"stars\":4.0,")),
            "stars are written as floats"
        );
    }

    #[test]
    fn every_field_parses_with_the_quirk_parsers() {
        let dir = tempfile::tempdir().unwrap();
        generate_into(dir.path(), 9_000, 13, 0.0);
        let businesses: Vec<Business> = parse_all(dir.path(), Entity::Business);
        let (mut null_attributes, mut null_hours, mut python_literals) = (0, 0, 0);
        for b in &businesses {
            let categories = quirks::parse_categories(b.categories.as_deref());
            assert!(b.categories.is_none() || categories.len() >= 2, "{:?}", b.categories);
            match &b.hours {
                Some(h) => {
                    quirks::normalize_hours(h).unwrap();
                }
                None => null_hours += 1,
            }
            match &b.attributes {
                Some(a) => {
                    for value in quirks::normalize_attributes(a).values() {
                        assert!(
                            !value.is_string() || value.as_str().is_some_and(|s| !s.starts_with(['\'', 'u', '{'])),
                            "{value}"
                        );
                    }
                    python_literals += a
                        .values()
                        .filter(|v| v.as_str().is_some_and(|s| s.starts_with('{')))
                        .count();
                }
                None => null_attributes += 1,
            }
            assert!(CITIES.iter().any(|c| c.name == b.city && c.state == b.state));
        }
        assert!(python_literals > 0);
        assert!((8..=35).contains(&null_attributes), "{null_attributes} of 200");
        assert!((15..=50).contains(&null_hours), "{null_hours} of 200");

        let users: Vec<User> = parse_all(dir.path(), Entity::User);
        let mut quirky_elite = 0;
        for u in &users {
            quirks::parse_yelp_datetime(&u.yelping_since).unwrap();
            let years = quirks::parse_elite(&u.elite).unwrap();
            assert!(years.iter().all(|y| (2006..=2021).contains(y)), "{}", u.elite);
            quirky_elite += usize::from(u.elite.contains("20,20"));
            assert_eq!(u.average_stars, (u.average_stars * 100.0).round() / 100.0);
        }
        assert!(quirky_elite > 0);
        assert!(users.iter().any(|u| u.friends == "None") && users.iter().any(|u| u.friends.contains(", ")));
        assert!(users.iter().any(|u| u.elite.is_empty()));

        let start = quirks::parse_yelp_datetime("2005-01-01 00:00:00").unwrap();
        let end = quirks::parse_yelp_datetime("2022-01-19 20:00:00").unwrap();
        for r in parse_all::<Review>(dir.path(), Entity::Review) {
            let date = quirks::parse_yelp_datetime(&r.date).unwrap();
            assert!(date >= start && date <= end, "{}", r.date);
            let words = quirks::word_count(&r.text);
            assert!((20..=150).contains(&words), "{words}: {}", r.text);
        }
        for t in parse_all::<Tip>(dir.path(), Entity::Tip) {
            quirks::parse_yelp_datetime(&t.date).unwrap();
        }
        for c in parse_all::<Checkin>(dir.path(), Entity::Checkin) {
            let dates = quirks::parse_checkin_dates(&c.date).unwrap();
            assert!(!dates.is_empty() && dates.is_sorted());
        }
    }

    #[test]
    fn output_has_the_official_layout() {
        let dir = tempfile::tempdir().unwrap();
        generate_into(dir.path(), 5_000, 17, 0.0);
        let business = &lines(dir.path(), Entity::Business)[0];
        assert!(business.starts_with("{\"business_id\":\""), "{business}");
        let keys = [
            "\"name\":",
            "\"address\":",
            "\"city\":",
            "\"state\":",
            "\"postal_code\":",
            "\"latitude\":",
            "\"longitude\":",
            "\"stars\":",
            "\"review_count\":",
            "\"is_open\":",
            "\"attributes\":",
            "\"categories\":",
            "\"hours\":",
        ];
        let positions: Vec<usize> = keys.iter().map(|k| business.find(k).unwrap()).collect();
        assert!(positions.is_sorted(), "{business}");
        let all = fs::read_to_string(dir.path().join(Entity::Business.file_name())).unwrap();
        assert!(all.contains("\"attributes\":null") && all.contains("\"hours\":null"));
        let reviews = fs::read_to_string(dir.path().join(Entity::Review.file_name())).unwrap();
        assert!(reviews.contains("\\/"), "slashes are escaped as in the official files");
        assert_eq!(reviews.matches('/').count(), reviews.matches("\\/").count());
        let review = &lines(dir.path(), Entity::Review)[0];
        assert!(
            review.starts_with("{\"review_id\":") && review.contains(",\"date\":\"") && review.ends_with("\"}"),
            "{review}"
        );
    }

    #[test]
    fn invalid_rate_injects_the_expected_count_and_kinds() {
        let dir = tempfile::tempdir().unwrap();
        let s = generate_into(dir.path(), 1_200, 19, 0.05);
        assert_eq!(s.invalid(Entity::Review), 60);
        assert_eq!(s.invalid(Entity::Tip), 7); // floor(150 × 0.05)
        assert_eq!(s.invalid(Entity::Business), 0);

        let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
        for line in lines(dir.path(), Entity::Review) {
            let kind = match serde_json::from_str::<Review>(&line) {
                Err(e) if e.is_eof() => "truncated",
                Err(e) if e.to_string().contains("missing field `review_id`") => "missing_id",
                Err(e) if e.to_string().contains("invalid type: string \"five\"") => "wrong_type",
                Err(e) => panic!("unexpected error {e}: {line}"),
                Ok(r) if r.stars == 7.0 => "stars",
                Ok(r) if r.date == "not a date" => "date",
                Ok(r) if r.business_id.is_empty() => "empty_business",
                Ok(_) => continue,
            };
            *kinds.entry(kind).or_default() += 1;
        }
        assert_eq!(kinds.len(), 6, "{kinds:?}");
        assert!(kinds.values().all(|&n| n == 10), "{kinds:?}");

        let bad_tips = lines(dir.path(), Entity::Tip)
            .iter()
            .filter(|l| {
                serde_json::from_str::<Tip>(l).map_or(true, |t| t.date == "not a date" || t.business_id.is_empty())
            })
            .count();
        assert_eq!(bad_tips, 7);

        let clean = tempfile::tempdir().unwrap();
        let s = generate_into(clean.path(), 1_200, 19, 0.0);
        assert_eq!(s.invalid(Entity::Review) + s.invalid(Entity::Tip), 0);
        parse_all::<Review>(clean.path(), Entity::Review);
        // The valid lines are the same whatever the rate: bad lines replace, they do not shift.
        let dirty = lines(dir.path(), Entity::Review);
        let same = lines(clean.path(), Entity::Review)
            .iter()
            .zip(&dirty)
            .filter(|(a, b)| a == b)
            .count();
        assert_eq!(same, 1_200 - 60);
    }

    #[test]
    fn rejects_bad_options_and_leaves_no_files() {
        let dir = tempfile::tempdir().unwrap();
        for rate in [-0.1, 1.5, f64::NAN] {
            let err = generate(
                dir.path(),
                &GenerateOptions {
                    invalid_rate: rate,
                    ..GenerateOptions::default()
                },
            )
            .unwrap_err();
            assert!(matches!(err, GenerateError::InvalidRate(_)), "{err}");
        }
        let err = generate(
            dir.path(),
            &GenerateOptions {
                reviews: MAX_REVIEWS + 1,
                ..GenerateOptions::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("7 million"), "{err}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn summary_serialises_and_displays() {
        let dir = tempfile::tempdir().unwrap();
        let s = generate_into(dir.path(), 500, 23, 0.1);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["files"]["review"]["invalid"], 50);
        assert!(json["elapsed_secs"].is_f64());
        let text = s.to_string();
        assert!(text.contains("review") && text.contains("reviews/s"), "{text}");
    }

    #[test]
    fn datetime_formatting_agrees_with_chrono() {
        for unix in [
            0,
            USER_SINCE_START,
            USER_SINCE_END,
            CHECKIN_START,
            DATASET_END,
            951_782_400,
            1_582_934_399,
            4_102_444_800,
        ] {
            let mut s = String::new();
            push_datetime(&mut s, unix);
            let expected = chrono::DateTime::from_timestamp(unix, 0)
                .unwrap()
                .format("%Y-%m-%d %H:%M:%S")
                .to_string();
            assert_eq!(s, expected);
        }
        assert_eq!(year_of(DATASET_END), 2022);
    }

    #[test]
    fn prng_matches_the_reference_algorithms() {
        // SplitMix64 from seed 1234567, as in Vigna's reference implementation.
        let mut state = 1_234_567u64;
        let outputs: Vec<u64> = (0..3).map(|_| splitmix64(&mut state)).collect();
        assert_eq!(
            outputs,
            [
                6_457_827_717_110_365_317,
                3_203_168_211_198_807_973,
                9_817_491_932_198_370_423
            ]
        );
        // xoshiro256** from state [1, 2, 3, 4], the test vector of the `rand_xoshiro` crate.
        let mut rng = Prng { s: [1, 2, 3, 4] };
        let outputs: Vec<u64> = (0..4).map(|_| rng.next_u64()).collect();
        assert_eq!(outputs, [11_520, 0, 1_509_978_240, 1_215_971_899_390_074_240]);
    }

    /// Speed check: `cargo test --lib generation_speed -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing, run on demand"]
    fn generation_speed() {
        let dir = tempfile::tempdir().unwrap();
        let s = generate_into(dir.path(), 100_000, 1, 0.0);
        println!("{s}");
    }
}
