//! Logs: the followed log files, by source, with `/` search (matching lines only) and follow mode.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, List, ListItem, ListState, Paragraph, StatefulWidget, Widget};

use crate::tui::app::{App, View};
use crate::tui::logs::LogLine;

/// What the view shows, derived from the app state (the key handlers select from the same lists).
impl App {
    /// "all" followed by every log source seen.
    #[must_use]
    pub fn log_sources(&self) -> Vec<String> {
        let mut s: Vec<String> = self.logs.iter().map(|l| l.source.clone()).collect();
        s.sort();
        s.dedup();
        s.insert(0, "all".into());
        s
    }

    /// Log lines of the selected source that match the filter (the `/` search).
    #[must_use]
    pub fn visible_logs(&self) -> Vec<&LogLine> {
        let sources = self.log_sources();
        let source = sources
            .get(self.selection[View::Logs.index()])
            .map_or("all", String::as_str);
        self.logs
            .iter()
            .filter(|l| source == "all" || l.source == source)
            .filter(|l| self.matches(&l.text))
            .collect()
    }
}

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let [sources, text] = Layout::horizontal([Constraint::Length(18), Constraint::Fill(1)]).areas(area);
    let pane = app.pane[View::Logs.index()];
    let items: Vec<ListItem> = app.log_sources().into_iter().map(ListItem::new).collect();
    let list = List::new(items).highlight_style(t.selected()).block(
        Block::bordered()
            .border_style(if pane == 0 { t.accent() } else { t.dim() })
            .title(" Sources "),
    );
    let mut state = ListState::default().with_selected(Some(app.selection[View::Logs.index()]));
    StatefulWidget::render(list, sources, buf, &mut state);
    super::remember_rows(app, 0, sources, 0, state.offset());

    let lines = app.visible_logs();
    let block = Block::bordered()
        .border_style(if pane == 1 { t.accent() } else { t.dim() })
        .title(Line::styled(
            format!(
                " {} lines{}{} ",
                lines.len(),
                if app.log_follow {
                    ", following"
                } else {
                    ", paused (f: follow)"
                },
                if app.filter.is_empty() {
                    String::new()
                } else {
                    format!(", matching {:?}", app.filter)
                }
            ),
            t.title(),
        ));
    let height = block.inner(text).height as usize;
    let end = lines.len().saturating_sub(app.log_scroll);
    let start = end.saturating_sub(height);
    let shown: Vec<Line> = if lines.is_empty() {
        vec![Line::styled(
            "no log lines yet (the lab's logs are in <state-dir>/logs; set LAB_SERVICES_DIR for the services')",
            t.dim(),
        )]
    } else {
        lines[start..end]
            .iter()
            .map(|l| {
                Line::from(vec![
                    Span::styled(format!("{:<9} ", l.source), t.dim()),
                    Span::raw(l.text.clone()),
                ])
            })
            .collect()
    };
    Paragraph::new(shown).block(block).render(text, buf);
}
