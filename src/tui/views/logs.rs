//! Logs: the followed log files and containers, by source, with follow mode and a `/` search
//! over every source: the matches highlighted, each source's count of matching lines, and what a
//! source lost (dropped lines, skipped bytes) beside its name.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, List, ListItem, ListState, Paragraph, StatefulWidget, Widget};

use crate::tui::app::{App, View};
use crate::tui::keys::Action;
use crate::tui::log_buffer::{self, ALL, LogRef};
use crate::tui::logs::Loss;

/// What the view shows, derived from the app state (the key handlers select from the same lists).
impl App {
    /// "all" followed by every log source seen.
    #[must_use]
    pub fn log_sources(&self) -> Vec<String> {
        std::iter::once(ALL)
            .chain(self.logs.sources().map(|(name, _)| name))
            .map(str::to_string)
            .collect()
    }

    /// The lines of the selected source; with a search and `m`, only the matching ones.
    #[must_use]
    pub fn visible_logs(&self) -> Vec<LogRef<'_>> {
        let mut lines = self.logs.lines(&self.log_source());
        if self.log_matching_only && !self.filter.is_empty() {
            lines.retain(|l| log_buffer::contains(l.text, &self.filter));
        }
        lines
    }
}

/// "1,204 lines dropped, 3.1 MiB skipped", or empty when nothing was lost.
#[must_use]
pub fn describe_loss(loss: Loss) -> String {
    let mut parts = Vec::new();
    if loss.lines > 0 {
        parts.push(format!("{} lines dropped", super::count(loss.lines as i64)));
    }
    if loss.bytes > 0 {
        parts.push(format!("{:.1} MiB skipped", loss.bytes as f64 / (1024.0 * 1024.0)));
    }
    parts.join(", ")
}

/// `text` with each match of `needle` in the highlight style.
fn highlighted<'a>(text: &'a str, needle: &str, style: ratatui::style::Style) -> Vec<Span<'a>> {
    let mut spans = Vec::new();
    let mut at = 0;
    for m in log_buffer::matches(text, needle) {
        if m.start > at {
            spans.push(Span::raw(&text[at..m.start]));
        }
        spans.push(Span::styled(&text[m.clone()], style));
        at = m.end;
    }
    if at < text.len() || spans.is_empty() {
        spans.push(Span::raw(&text[at..]));
    }
    spans
}

/// The widest the list of sources gets: a long container name is cut rather than the log text.
const SOURCES_WIDTH: u16 = 24;

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let pane = app.pane[View::Logs.index()];
    let searching = !app.filter.is_empty();
    let counts = if searching {
        app.logs.match_counts(&app.filter)
    } else {
        std::collections::BTreeMap::new()
    };
    // Each source with its count of matches (while searching) and a mark when it lost lines.
    let lost: std::collections::BTreeMap<&str, Loss> = app.logs.sources().map(|(n, l)| (n, l.lost)).collect();
    let items: Vec<ListItem> = app
        .log_sources()
        .iter()
        .map(|name| {
            let mut spans = vec![Span::raw(name.clone())];
            if searching {
                let n = if name == ALL {
                    counts.values().sum()
                } else {
                    counts.get(name.as_str()).copied().unwrap_or(0)
                };
                spans.push(Span::styled(format!(" {n}"), if n > 0 { t.accent() } else { t.dim() }));
            }
            if lost.get(name.as_str()).is_some_and(|l| !l.is_none()) {
                spans.push(Span::styled(" !", t.error()));
            }
            ListItem::new(Line::from(spans))
        })
        .collect();
    let title = if searching { " Sources (matches) " } else { " Sources " };
    // As wide as its names (up to 24 columns): the log text needs the rest on a small terminal,
    // where a fixed 24 for `all` and `lab` wrapped every line of the embedded lab's log.
    let widest = items
        .iter()
        .map(ListItem::width)
        .chain([title.len()])
        .max()
        .unwrap_or(0);
    let width = u16::try_from(widest + 2).unwrap_or(SOURCES_WIDTH).min(SOURCES_WIDTH);
    let [sources, text] = Layout::horizontal([Constraint::Length(width), Constraint::Fill(1)]).areas(area);
    let list = List::new(items).highlight_style(t.selected()).block(
        Block::bordered()
            .border_style(if pane == 0 { t.accent() } else { t.dim() })
            .title(title),
    );
    let mut state = ListState::default().with_selected(Some(app.selection[View::Logs.index()]));
    StatefulWidget::render(list, sources, buf, &mut state);
    super::remember_rows(app, 0, sources, 0, state.offset());

    let source = app.log_source();
    let lines = app.visible_logs();
    let source_lost = if source == ALL {
        app.logs.lost()
    } else {
        lost.get(source.as_str()).copied().unwrap_or_default()
    };
    let keys = &app.keymap;
    let mut title = format!(
        " {} lines{}",
        super::count(lines.len() as i64),
        if app.log_follow {
            ", following".to_string()
        } else {
            format!(", paused ({}: follow)", keys.shown(Action::ToggleFollow))
        }
    );
    if searching {
        let m = keys.shown(Action::MatchingOnly);
        let shown = if app.log_matching_only {
            format!("only matches, {m}: all")
        } else {
            format!("{m}: only matches")
        };
        title.push_str(&format!(
            ", search {:?} ({}/{}, {shown})",
            app.filter,
            keys.shown(Action::NextMatch),
            keys.shown(Action::PreviousMatch)
        ));
    }
    title.push(' ');
    let mut block = Block::bordered()
        .border_style(if pane == 1 { t.accent() } else { t.dim() })
        .title(Line::styled(title, t.title()));
    if !source_lost.is_none() {
        block = block.title_bottom(Line::styled(
            format!(" {} (the newest kept) ", describe_loss(source_lost)),
            t.error(),
        ));
    }
    let inner = block.inner(text);
    let (height, width) = (usize::from(inner.height), usize::from(inner.width.max(1)));
    let end = lines.len().saturating_sub(app.log_scroll);
    let mark = t.selected();
    let today = app.now.utc.date_naive();
    let shown: Vec<Line> = if lines.is_empty() {
        // Wrapped as the lines are: at 80 columns it was cut before where the logs are.
        hard_wrapped(
            Line::styled(
                "no log lines yet (the lab's logs are in <state-dir>/logs; set LAB_SERVICES_DIR for the services')",
                t.dim(),
            ),
            width,
        )
    } else {
        // Whole lines, wrapped at the pane's edge (at 80 columns a cut line showed its timestamp
        // and not a word of its message), from the newest shown up as far as they fill the pane.
        let mut rows: Vec<Vec<Line>> = Vec::new();
        let mut used = 0;
        for l in lines[..end].iter().rev() {
            let mut spans = Vec::new();
            // The source only where lines of several are mixed.
            if source == ALL {
                spans.push(Span::styled(format!("{:<9} ", l.source), t.dim()));
            }
            let text = time_of_day_if_today(l.text, today);
            spans.extend(highlighted(&text, &app.filter, mark));
            let wrapped = hard_wrapped(Line::from(spans), width);
            if used > 0 && used + wrapped.len() > height {
                break;
            }
            used += wrapped.len();
            rows.push(wrapped);
            if used >= height {
                break;
            }
        }
        let mut shown: Vec<Line> = rows.into_iter().rev().flatten().collect();
        // A newest line taller than the pane shows its end.
        shown.drain(..shown.len().saturating_sub(height));
        shown
    };
    Paragraph::new(shown).block(block).render(text, buf);
}

/// A line that starts with an RFC 3339 time of `today` (`lab`'s own log) from its time of day in
/// UTC to the millisecond (`22:51:20.188  WARN …`): the date and the microseconds took a third of
/// an 80-column pane. Any other line as it is.
fn time_of_day_if_today(text: &str, today: chrono::NaiveDate) -> std::borrow::Cow<'_, str> {
    let stamp = text.split_whitespace().next().unwrap_or_default();
    match chrono::DateTime::parse_from_rfc3339(stamp) {
        Ok(at) if text.starts_with(stamp) && at.with_timezone(&chrono::Utc).date_naive() == today => {
            let rest = &text[stamp.len()..];
            let time = at.with_timezone(&chrono::Utc).format("%H:%M:%S%.3f");
            std::borrow::Cow::Owned(format!("{time}{rest}"))
        }
        _ => std::borrow::Cow::Borrowed(text),
    }
}

/// `line` in rows of at most `width` columns, cut at the column (a log line is read as it is,
/// not reflowed), each part keeping its style.
fn hard_wrapped(line: Line<'_>, width: usize) -> Vec<Line<'static>> {
    let mut rows = vec![Line::default()];
    let mut used = 0;
    for span in line.spans {
        let mut part = String::new();
        for c in span.content.chars() {
            let w = super::columns_of(c);
            if used + w > width && used > 0 {
                let row = rows.last_mut().expect("rows start with one");
                row.spans.push(Span::styled(std::mem::take(&mut part), span.style));
                rows.push(Line::default());
                used = 0;
            }
            part.push(c);
            used += w;
        }
        if !part.is_empty() {
            rows.last_mut()
                .expect("rows start with one")
                .spans
                .push(Span::styled(part, span.style));
        }
    }
    rows
}
