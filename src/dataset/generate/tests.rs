//! End-to-end tests of [`generate`]: determinism and the pinned fingerprint, sizes, referential
//! consistency, the official layout and quirks, and malformed-line injection.

use super::rng::ID_ALPHABET;
use super::vocab::CITIES;
use super::*;
use crate::dataset::quirks;
use crate::dataset::types::{Business, Checkin, Review, Tip, User};
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
        .filter(|l| serde_json::from_str::<Tip>(l).map_or(true, |t| t.date == "not a date" || t.business_id.is_empty()))
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
