//! The Logs view's lines: a bounded buffer per source, so a chatty source cannot push the others
//! out, that drops its oldest lines when full and counts what it dropped (and what the followers
//! skipped unread, see [`super::logs`]). Also the view's search: case-insensitive matches, their
//! byte ranges for highlighting, and the lines a `:save` writes.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;

use super::logs::{LogBatch, Loss};

/// Lines kept per source. A source that wrote more loses its oldest lines, counted.
pub const LINES_PER_SOURCE: usize = 5_000;

/// What the view shows as the pseudo-source of every line.
pub const ALL: &str = "all";

#[derive(Debug, Default)]
pub struct SourceLog {
    /// Each line with its arrival number, oldest first (the "all" source merges by it).
    lines: VecDeque<(u64, String)>,
    /// Lines this buffer dropped, plus what the followers lost before they got here.
    pub lost: Loss,
}

impl SourceLog {
    #[must_use]
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

#[derive(Debug)]
pub struct LogBuffer {
    sources: BTreeMap<String, SourceLog>,
    next_seq: u64,
    per_source: usize,
}

impl Default for LogBuffer {
    fn default() -> Self {
        Self::with_capacity(LINES_PER_SOURCE)
    }
}

/// One line as the view shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRef<'a> {
    pub source: &'a str,
    pub text: &'a str,
}

impl LogBuffer {
    #[must_use]
    pub fn with_capacity(per_source: usize) -> Self {
        Self {
            sources: BTreeMap::new(),
            next_seq: 0,
            per_source: per_source.max(1),
        }
    }

    pub fn apply(&mut self, batch: LogBatch) {
        for (source, loss) in batch.lost {
            self.sources.entry(source).or_default().lost.add(loss);
        }
        for line in batch.lines {
            let log = self.sources.entry(line.source).or_default();
            if log.lines.len() == self.per_source {
                log.lines.pop_front();
                log.lost.lines += 1;
            }
            log.lines.push_back((self.next_seq, line.text));
            self.next_seq += 1;
        }
    }

    /// One line, for tests and callers that build batches by hand.
    pub fn push(&mut self, source: &str, text: &str) {
        self.apply(LogBatch::lines(vec![super::logs::LogLine {
            source: source.into(),
            text: text.into(),
        }]));
    }

    /// The sources in name order.
    pub fn sources(&self) -> impl Iterator<Item = (&str, &SourceLog)> {
        self.sources.iter().map(|(name, log)| (name.as_str(), log))
    }

    /// What every source lost, together.
    #[must_use]
    pub fn lost(&self) -> Loss {
        let mut total = Loss::default();
        for log in self.sources.values() {
            total.add(log.lost);
        }
        total
    }

    /// The lines of `source` ([`ALL`]: every source's, in the order they arrived), oldest first.
    #[must_use]
    pub fn lines(&self, source: &str) -> Vec<LogRef<'_>> {
        if source != ALL {
            return self
                .sources
                .get_key_value(source)
                .map_or_else(Vec::new, |(source, log)| {
                    log.lines.iter().map(|(_, text)| LogRef { source, text }).collect()
                });
        }
        let mut all: Vec<(u64, LogRef<'_>)> = self
            .sources
            .iter()
            .flat_map(|(name, log)| {
                log.lines
                    .iter()
                    .map(move |(seq, text)| (*seq, LogRef { source: name, text }))
            })
            .collect();
        all.sort_unstable_by_key(|(seq, _)| *seq);
        all.into_iter().map(|(_, line)| line).collect()
    }

    /// How many lines of each source contain `needle`.
    #[must_use]
    pub fn match_counts(&self, needle: &str) -> BTreeMap<&str, usize> {
        self.sources
            .iter()
            .map(|(name, log)| {
                let n = log
                    .lines
                    .iter()
                    .filter(|(_, text)| !matches(text, needle).is_empty())
                    .count();
                (name.as_str(), n)
            })
            .collect()
    }
}

/// Where `needle` occurs in `text`, without overlaps, ignoring ASCII case (a needle with other
/// characters matches exactly as typed). Empty for an empty needle.
#[must_use]
pub fn matches(text: &str, needle: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    if needle.is_empty() || needle.len() > text.len() {
        return out;
    }
    if !needle.is_ascii() {
        let mut from = 0;
        while let Some(i) = text[from..].find(needle) {
            out.push(from + i..from + i + needle.len());
            from += i + needle.len();
        }
        return out;
    }
    // An ASCII needle matches only ASCII bytes, so every match starts and ends on a char boundary.
    let (hay, pat) = (text.as_bytes(), needle.as_bytes());
    let mut i = 0;
    while i + pat.len() <= hay.len() {
        if hay[i..i + pat.len()].eq_ignore_ascii_case(pat) {
            out.push(i..i + pat.len());
            i += pat.len();
        } else {
            i += 1;
        }
    }
    out
}

/// Whether `text` contains `needle` as [`matches`] finds it.
#[must_use]
pub fn contains(text: &str, needle: &str) -> bool {
    !matches(text, needle).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::logs::LogLine;

    fn line(source: &str, text: &str) -> LogLine {
        LogLine {
            source: source.into(),
            text: text.into(),
        }
    }

    #[test]
    fn a_chatty_source_drops_only_its_own_oldest_lines_and_counts_them() {
        let mut b = LogBuffer::with_capacity(3);
        b.push("namenode", "quiet one");
        b.apply(LogBatch::lines(
            (0..5).map(|i| line("lab", &format!("chatty {i}"))).collect(),
        ));
        let lab: Vec<&str> = b.lines("lab").iter().map(|l| l.text).collect();
        assert_eq!(lab, ["chatty 2", "chatty 3", "chatty 4"]);
        assert_eq!(b.lines("namenode").len(), 1, "the quiet source keeps its line");
        let lost: BTreeMap<&str, u64> = b.sources().map(|(n, l)| (n, l.lost.lines)).collect();
        assert_eq!(lost, BTreeMap::from([("lab", 2), ("namenode", 0)]));
    }

    #[test]
    fn all_merges_the_sources_in_arrival_order_and_follower_losses_add_up() {
        let mut b = LogBuffer::default();
        b.apply(LogBatch::lines(vec![line("b", "1"), line("a", "2")]));
        b.push("b", "3");
        let mut batch = LogBatch::lines(vec![line("a", "4")]);
        batch.lost.push(("a".into(), Loss { lines: 2, bytes: 100 }));
        b.apply(batch);
        let all: Vec<(&str, &str)> = b.lines(ALL).iter().map(|l| (l.source, l.text)).collect();
        assert_eq!(all, [("b", "1"), ("a", "2"), ("b", "3"), ("a", "4")]);
        assert_eq!(b.lost(), Loss { lines: 2, bytes: 100 });
        assert!(b.lines("nothing").is_empty());
    }

    #[test]
    fn matches_ignore_ascii_case_and_keep_char_boundaries() {
        assert_eq!(matches("WARN warn Warn", "warn"), [0..4, 5..9, 10..14]);
        assert_eq!(matches("aaaa", "aa"), [0..2, 2..4], "no overlaps");
        // Multi-byte characters around and between matches: every range slices cleanly.
        let text = "é ERROR ü error ß";
        for r in matches(text, "error") {
            assert!(text[r].eq_ignore_ascii_case("error"));
        }
        assert_eq!(matches(text, "error").len(), 2);
        assert_eq!(
            matches("Grüße grüße", "grüße"),
            vec![std::ops::Range { start: 8, end: 15 }],
            "a non-ASCII needle matches as typed"
        );
        assert!(matches("anything", "").is_empty());
        let mut b = LogBuffer::default();
        b.apply(LogBatch::lines(vec![
            line("x", "WARN a"),
            line("x", "ok"),
            line("y", "warn"),
        ]));
        assert_eq!(b.match_counts("warn"), BTreeMap::from([("x", 1), ("y", 1)]));
    }
}
