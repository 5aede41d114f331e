//! What the Logs view's keys and `:save` do: jump between search matches across every source,
//! show only the matching lines, and hand the shown lines (or the whole search result) to an
//! effect that writes them to a file.

use std::path::PathBuf;

use super::App;
use crate::tui::log_buffer::{self, ALL, LogRef};
use crate::tui::msg::Cmd;
use crate::tui::views::tabs::View;

/// The lines a `:save` writes, and a name for the default file. Its `Debug` leaves the lines out:
/// effects are logged, and a service's log lines are not the lab's to copy into its own log.
#[derive(Clone, PartialEq, Eq)]
pub struct SavedLogs {
    /// Where to write (`None`: a new file under the state dir, named after `name`).
    pub path: Option<PathBuf>,
    /// The source, or the search, the lines came from (`docker-kafka`, `search-error`).
    pub name: String,
    pub text: String,
    pub lines: usize,
}

impl std::fmt::Debug for SavedLogs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SavedLogs")
            .field("path", &self.path)
            .field("name", &self.name)
            .field("lines", &self.lines)
            .finish_non_exhaustive()
    }
}

impl App {
    /// The selected log source ("all" or a source's name).
    #[must_use]
    pub fn log_source(&self) -> String {
        let sources = self.log_sources();
        sources
            .get(self.selection[View::Logs.index()])
            .cloned()
            .unwrap_or_else(|| ALL.to_string())
    }

    /// `n` (`forward`) or `N`: the next (newer) or previous (older) line that matches the search,
    /// in the shown source, then in the next or previous source that has a match.
    pub(super) fn jump_to_match(&mut self, forward: bool) {
        if self.filter.is_empty() {
            self.fail("no search yet: / then the text to find".into());
            return;
        }
        let needle = self.filter.clone();
        let lines = self.visible_logs();
        // The cursor is the bottom line on screen.
        let cursor = lines.len().checked_sub(1 + self.log_scroll);
        let hit = |l: &LogRef<'_>| log_buffer::contains(l.text, &needle);
        let found = match (forward, cursor) {
            (true, Some(c)) => (c + 1..lines.len()).find(|&i| hit(&lines[i])),
            (false, Some(c)) => (0..c).rev().find(|&i| hit(&lines[i])),
            (_, None) => None,
        };
        if let Some(i) = found {
            let total = lines.len();
            self.show_log_line(i, total);
            return;
        }
        // Not in this source: the next source (in the list's order, round) with a match.
        let counts = self.logs.match_counts(&needle);
        let sources = self.log_sources();
        let here = self.selection[View::Logs.index()];
        let n = sources.len();
        let next = (1..=n)
            .map(|step| {
                if forward {
                    (here + step) % n
                } else {
                    (here + n - step) % n
                }
            })
            .find(|&i| sources[i] != ALL && counts.get(sources[i].as_str()).is_some_and(|c| *c > 0));
        let Some(next) = next else {
            self.fail(format!("no log line matches {needle:?}"));
            return;
        };
        let wrapped = next == here || sources[here] == ALL;
        if !wrapped {
            self.selection[View::Logs.index()] = next;
        }
        let lines = self.visible_logs();
        let total = lines.len();
        let i = if forward {
            lines.iter().position(hit)
        } else {
            lines.iter().rposition(hit)
        };
        if let Some(i) = i {
            self.show_log_line(i, total);
        }
        let source = self.log_source();
        self.say(if wrapped {
            format!("search wrapped ({source})")
        } else {
            format!("next match in {source}")
        });
    }

    /// After a search is entered: where it matches, and the keys that go there.
    pub(super) fn say_log_matches(&mut self) {
        let counts = self.logs.match_counts(&self.filter);
        let lines: usize = counts.values().sum();
        let sources = counts.values().filter(|c| **c > 0).count();
        if lines == 0 {
            self.fail(format!("no log line matches {:?}", self.filter));
        } else {
            self.say(format!(
                "{lines} lines match in {sources} source{}: n/N next/previous, m only these, :save writes them",
                if sources == 1 { "" } else { "s" }
            ));
        }
    }

    /// Scrolls so that line `i` of `total` is the bottom line (following when it is the newest).
    fn show_log_line(&mut self, i: usize, total: usize) {
        self.log_scroll = total - 1 - i;
        self.log_follow = self.log_scroll == 0;
    }

    /// `m`: with a search, only the matching lines, or every line with the matches highlighted.
    pub(super) fn toggle_matching_only(&mut self) {
        self.log_matching_only = !self.log_matching_only;
        self.log_scroll = 0;
        self.log_follow = true;
    }

    /// `:save [PATH]`: the shown source's lines, or, with a search, the matching lines of every
    /// source (the whole search result).
    pub(super) fn save_logs(&mut self, path: Option<PathBuf>) -> Vec<Cmd> {
        let source = self.log_source();
        // One source's lines as they were written; lines of several sources say whose they are.
        let several = source == ALL || !self.filter.is_empty();
        let (name, lines): (String, Vec<LogRef<'_>>) = if self.filter.is_empty() {
            (source.clone(), self.logs.lines(&source))
        } else {
            let found = self
                .logs
                .lines(ALL)
                .into_iter()
                .filter(|l| log_buffer::contains(l.text, &self.filter))
                .collect();
            (format!("search-{}", self.filter), found)
        };
        if lines.is_empty() {
            let what = if self.filter.is_empty() {
                format!("no log lines in {name} yet")
            } else {
                format!("no log line matches {:?}", self.filter)
            };
            self.fail(format!("nothing to save: {what}"));
            return Vec::new();
        }
        let mut text = String::new();
        for l in &lines {
            if several {
                text.push('[');
                text.push_str(l.source);
                text.push_str("] ");
            }
            text.push_str(l.text);
            text.push('\n');
        }
        let saved = SavedLogs {
            path,
            name: file_safe(&name),
            lines: lines.len(),
            text,
        };
        vec![Cmd::SaveLogs(Box::new(saved))]
    }
}

/// A name usable in a file name: letters, digits, `-`, `_` and `.`; anything else becomes `-`.
fn file_safe(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(60)
        .collect();
    safe.trim_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::views::test_support::{app, live_lab};

    /// Sources a (two matches among others), b (one), c (none); "a" selected, following.
    fn searching() -> App {
        let mut a = app(live_lab(), View::Logs);
        for (source, text) in [
            ("a", "x"),
            ("a", "ERR 1"),
            ("b", "ERR b"),
            ("a", "y"),
            ("c", "nothing"),
            ("a", "ERR 2"),
            ("a", "z"),
        ] {
            a.logs.push(source, text);
        }
        a.selection[View::Logs.index()] = 1;
        a.filter = "err".into();
        a
    }

    /// The selected source and its bottom line on screen (the cursor).
    fn at(a: &App) -> (String, String) {
        let lines = a.visible_logs();
        let bottom = lines[lines.len() - 1 - a.log_scroll].text.to_string();
        (a.log_source(), bottom)
    }

    #[test]
    fn n_and_shift_n_walk_the_matches_then_the_other_sources() {
        let mut a = searching();
        assert_eq!(at(&a), ("a".into(), "z".into()));
        a.jump_to_match(false);
        assert_eq!(at(&a), ("a".into(), "ERR 2".into()));
        assert!(!a.log_follow, "a match above the newest line pauses following");
        a.jump_to_match(false);
        assert_eq!(at(&a), ("a".into(), "ERR 1".into()));
        // No older match in a: the previous source with one (c has none).
        a.jump_to_match(false);
        assert_eq!(at(&a), ("b".into(), "ERR b".into()));
        assert!(a.notice.as_ref().unwrap().text.contains("next match in b"));
        // Forward from b's only match: round to a's first.
        a.jump_to_match(true);
        assert_eq!(at(&a), ("a".into(), "ERR 1".into()));
        a.jump_to_match(true);
        assert_eq!(at(&a), ("a".into(), "ERR 2".into()));

        // In "all", the search wraps within it.
        a.selection[View::Logs.index()] = 0;
        a.log_scroll = 0;
        a.jump_to_match(true);
        assert_eq!(at(&a), (ALL.into(), "ERR 1".into()));
        assert!(a.notice.as_ref().unwrap().text.contains("wrapped"));

        a.filter = "absent".into();
        a.jump_to_match(true);
        assert!(a.notice.as_ref().unwrap().error);
        a.filter.clear();
        a.jump_to_match(true);
        assert!(a.notice.as_ref().unwrap().text.contains("no search"));
    }

    #[test]
    fn save_writes_the_whole_search_result_or_the_shown_source_never_over_a_file() {
        let mut a = searching();
        let [Cmd::SaveLogs(result)] = &a.save_logs(None)[..] else {
            panic!("no save")
        };
        assert_eq!(
            result.text, "[a] ERR 1\n[b] ERR b\n[a] ERR 2\n",
            "every source's matches, in order"
        );
        assert_eq!(result.name, "search-err");

        a.filter.clear();
        a.selection[View::Logs.index()] = 2;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/b.log");
        let [Cmd::SaveLogs(b)] = &a.save_logs(Some(path.clone()))[..] else {
            panic!("no save")
        };
        assert_eq!(b.text, "ERR b\n", "one source's lines as written");
        let said = crate::tui::run::save_logs(b, dir.path()).unwrap();
        assert!(said.contains("saved 1 log lines to"), "{said}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "ERR b\n");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        std::fs::write(&path, "the user's own file").unwrap();
        let refused = crate::tui::run::save_logs(b, dir.path()).unwrap_err();
        assert!(refused.contains("another path"), "{refused}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "the user's own file");

        // Without a path: a new file in the default directory, named after the source.
        let said = crate::tui::run::save_logs(
            &SavedLogs {
                path: None,
                ..(**b).clone()
            },
            dir.path(),
        )
        .unwrap();
        let saved: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(
            saved.iter().any(|n| n.to_string_lossy().starts_with("b-")),
            "{said} {saved:?}"
        );

        a.selection[View::Logs.index()] = 3;
        a.filter = "absent".into();
        assert!(a.save_logs(None).is_empty());
        assert!(a.notice.as_ref().unwrap().text.contains("nothing to save"));
    }

    #[test]
    fn file_names_keep_only_safe_characters() {
        assert_eq!(file_safe("docker:kafka"), "docker-kafka");
        assert_eq!(file_safe("search-../etc/passwd"), "search-..-etc-passwd");
        assert_eq!(file_safe("../x"), "-x");
    }
}
