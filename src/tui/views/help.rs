//! The `?` overlay: every key and `:` command, from the same table as the footer.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Widget, Wrap};

use super::centered;
use crate::tui::app::App;
use crate::tui::keys::COMMANDS;

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let mut keys = vec![Line::styled("Keys", t.title())];
    for k in app.keymap.bindings() {
        let scope = k.view.map_or(String::new(), |v| format!("[{}] ", v.title()));
        keys.push(Line::from(vec![
            Span::styled(format!("{:>14}  ", k.shown), t.accent()),
            Span::raw(format!("{scope}{}", k.help)),
        ]));
    }
    let mut commands = vec![Line::styled("Commands", t.title())];
    for (c, what) in COMMANDS {
        commands.push(Line::styled(*c, t.accent()));
        commands.push(Line::from(format!("    {what}")));
    }
    // Side by side when there is room; every line wraps within its column, never cut.
    let wide = area.width >= 100;
    let width = if wide { area.width.min(160) } else { area.width.min(76) };
    let inner_width = width.saturating_sub(2);
    let column = if wide { inner_width / 2 } else { inner_width };
    let rows = |lines: &[Line]| -> usize {
        lines
            .iter()
            .map(|l| l.width().div_ceil(usize::from(column.max(1))).max(1))
            .sum()
    };
    let lines = if wide {
        rows(&keys).max(rows(&commands))
    } else {
        rows(&keys) + rows(&commands)
    };
    let h = (lines as u16 + 2).min(area.height);
    let popup = centered(area, width, h);
    Clear.render(popup, buf);
    let block = Block::bordered()
        .title(" Help — any key closes ")
        .border_style(t.accent());
    let inner = block.inner(popup);
    block.render(popup, buf);
    let wrap = Wrap { trim: false };
    if wide {
        let [left, right] = Layout::horizontal([Constraint::Length(column), Constraint::Fill(1)]).areas(inner);
        Paragraph::new(keys).wrap(wrap).render(left, buf);
        Paragraph::new(commands).wrap(wrap).render(right, buf);
    } else {
        keys.extend(commands);
        Paragraph::new(keys).wrap(wrap).render(inner, buf);
    }
}
