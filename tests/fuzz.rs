//! Property-based fuzzing (proptest) of what reads untrusted text: the transform's record parser
//! (`clean`, over every entity), the Yelp quirk parsers and the stack-file parser. Each property
//! runs a bounded number of cases (fixed below, so CI time is bounded): no input may panic, and
//! whatever is accepted must come out well-formed. Failing inputs are shrunk and printed.

use std::collections::BTreeMap;
use std::path::Path;

use bigdata_lab::dataset::Entity;
use bigdata_lab::dataset::quirks;
use bigdata_lab::pipeline::clean::clean;
use bigdata_lab::stack::{Stack, StackFile};
use proptest::prelude::*;

/// One line of each entity from the checked-in sample: the seeds the mutations start from.
fn seed_lines() -> Vec<(Entity, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/sample");
    Entity::ALL
        .iter()
        .map(|e| {
            let file = dir.join(format!("yelp_academic_dataset_{}.json", e.name()));
            let text = std::fs::read(&file).unwrap_or_else(|err| panic!("{}: {err}", file.display()));
            let line = text
                .split(|b| *b == b'\n')
                .nth(1)
                .expect("the sample has two lines")
                .to_vec();
            (*e, line)
        })
        .collect()
}

#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8)).prop_map(|(i, v)| Edit::Insert(i, v)),
        (any::<usize>(), 1usize..16).prop_map(|(i, n)| Edit::Delete(i, n)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

/// Interesting JSON fragments spliced in as well as random bytes.
fn fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"null".to_vec()),
        Just(b"\"\\u0000\"".to_vec()),
        // Inside a string: a NUL in a text field, which must never reach a clean record.
        Just(b"\\u0000".to_vec()),
        Just(b"1e999".to_vec()),
        Just(b"-0".to_vec()),
        Just(b"[[[[[[[[[[".to_vec()),
        Just(b"{\"a\":".to_vec()),
        Just(b"\"2019-02-30 25:61:61\"".to_vec()),
        Just(b"\xff\xfe".to_vec()),
        Just(b"18446744073709551616".to_vec()),
    ]
}

fn apply(mut line: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let len = line.len().max(1);
        match e {
            Edit::Flip(i, b) if !line.is_empty() => line[i % len] = *b,
            Edit::Insert(i, v) => {
                let at = i % (line.len() + 1);
                line.splice(at..at, v.iter().copied());
            }
            Edit::Delete(i, n) if !line.is_empty() => {
                let at = i % len;
                let end = (at + n).min(line.len());
                line.drain(at..end);
            }
            Edit::Truncate(i) => line.truncate(i % (line.len() + 1)),
            _ => {}
        }
    }
    line
}

fn check_clean(entity: Entity, line: &[u8]) {
    // Accepted records come out as JSON objects; rejected ones carry a code.
    match clean(entity, line) {
        Ok(cleaned) => {
            let v: serde_json::Value = serde_json::from_slice(&cleaned.json).expect("clean output is JSON");
            assert!(v.is_object());
            // PostgreSQL text cannot hold NUL: no string of a clean record may carry one, nested
            // JSON text (attributes, hours) included.
            assert_no_nul(&v);
        }
        Err(r) => assert!(!r.code.is_empty()),
    }
}

fn assert_no_nul(v: &serde_json::Value) {
    match v {
        serde_json::Value::String(s) => {
            assert!(!s.contains('\0'), "a NUL reached a clean record: {s:?}");
            if let Ok(nested @ (serde_json::Value::Object(_) | serde_json::Value::Array(_))) = serde_json::from_str(s) {
                assert_no_nul(&nested);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(assert_no_nul),
        serde_json::Value::Object(map) => map.iter().for_each(|(k, v)| {
            assert!(!k.contains('\0'), "a NUL reached a clean record's key: {k:?}");
            assert_no_nul(v);
        }),
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_yelp_lines_never_panic_the_transform(
        which in 0usize..5,
        edits in prop::collection::vec(edit(), 1..6),
        splice in prop::option::of((any::<usize>(), fragment())),
    ) {
        let seeds = seed_lines();
        let (entity, line) = seeds[which].clone();
        let mut line = apply(line, &edits);
        if let Some((at, frag)) = splice {
            let at = at % (line.len() + 1);
            line.splice(at..at, frag);
        }
        check_clean(entity, &line);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_transform(which in 0usize..5, bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_clean(Entity::ALL[which], &bytes);
    }

    #[test]
    fn quirk_parsers_take_any_text(s in ".{0,200}") {
        // Whatever they accept is bounded by the input (no invented items, no blow-up).
        if let Ok(t) = quirks::parse_yelp_datetime(&s) {
            prop_assert!(!quirks::to_rfc3339(t).is_empty());
        }
        if let Ok(years) = quirks::parse_elite(&s) {
            prop_assert!(years.len() <= s.len());
        }
        prop_assert!(quirks::parse_friends(&s).len() <= s.len() + 1);
        prop_assert!(quirks::parse_categories(Some(&s)).len() <= s.len() + 1);
        let hours = BTreeMap::from([("Monday".to_string(), s.clone())]);
        if let Ok(h) = quirks::normalize_hours(&hours) {
            prop_assert!(h.len() <= 1);
        }
    }
}

/// The stack files, edited at random: parsing and validation answer Ok or a precise error.
fn stack_texts() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    ["stacks/lambda.toml", "stacks/minimal.toml", "tests/stacks/test.toml"]
        .iter()
        .map(|p| std::fs::read_to_string(root.join(p)).expect("stack file"))
        .collect()
}

fn load_text(text: &str) {
    let Ok(file) = toml::from_str::<StackFile>(text) else {
        return; // a TOML error is a precise error (tested elsewhere)
    };
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("stacks");
    if let Err(e) = Stack::from_file(file, base) {
        assert!(!e.to_string().is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn edited_stack_files_never_panic_the_loader(which in 0usize..3, edits in prop::collection::vec(edit(), 1..5)) {
        let text = stack_texts()[which].clone().into_bytes();
        if let Ok(text) = String::from_utf8(apply(text, &edits)) {
            load_text(&text);
        }
    }

    #[test]
    fn hostile_field_values_get_errors_not_panics(
        image in prop_oneof![".{0,80}", "[a-z/:@.]{0,80}"],
        port in prop_oneof![".{0,40}", "[0-9.:/a-z]{0,40}"],
        memory in prop_oneof![".{0,20}", "[0-9]{1,25}[kmgtb]?"],
        volume in ".{0,60}",
        timeout in ".{0,20}",
    ) {
        // TOML basic strings: escape backslashes and quotes (control characters make a TOML error).
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let text = format!(
            "name = \"fuzz\"\n[services.s]\nimage = \"{}\"\nports = [\"{}\"]\nmemory = \"{}\"\nvolumes = [\"{}\"]\nstart_timeout = \"{}\"\n",
            esc(&image), esc(&port), esc(&memory), esc(&volume), esc(&timeout)
        );
        load_text(&text);
    }
}
