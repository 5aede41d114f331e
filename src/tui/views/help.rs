//! The `?` overlay: every key and `:` command, from the same table as the footer.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Widget, Wrap};

use super::centered;
use crate::tui::app::App;
use crate::tui::keys::{Action, COMMANDS};

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
    // Side by side when there is room; every line wraps within its column, never cut, and what
    // does not fit the terminal's height scrolls (j/k, PgDn/PgUp, g/G).
    let wide = area.width >= 100;
    let width = if wide { area.width.min(160) } else { area.width.min(76) };
    let inner_width = width.saturating_sub(2);
    let column = if wide { inner_width / 2 } else { inner_width };
    let wrap = Wrap { trim: false };
    let paragraphs = if wide {
        vec![Paragraph::new(keys).wrap(wrap), Paragraph::new(commands).wrap(wrap)]
    } else {
        keys.extend(commands);
        vec![Paragraph::new(keys).wrap(wrap)]
    };
    let lines = paragraphs.iter().map(|p| p.line_count(column)).max().unwrap_or(0);
    let h = (lines as u16).saturating_add(2).min(area.height);
    let shown = usize::from(h.saturating_sub(2));
    let max = lines.saturating_sub(shown);
    app.help_scroll_max.set(max);
    let scroll = app.help_scroll.min(max);
    let title = if max == 0 {
        " Help — any key closes ".to_string()
    } else {
        format!(
            " Help {}–{} of {lines} — {} {} {} scroll, other keys close ",
            scroll + 1,
            scroll + shown,
            app.keymap.shown(Action::Down),
            app.keymap.shown(Action::Up),
            app.keymap.shown(Action::PageDown)
        )
    };
    let popup = centered(area, width, h);
    Clear.render(popup, buf);
    let block = Block::bordered().title(title).border_style(t.accent());
    let inner = block.inner(popup);
    block.render(popup, buf);
    let offset = (u16::try_from(scroll).unwrap_or(u16::MAX), 0);
    let areas: Vec<Rect> = if wide {
        Layout::horizontal([Constraint::Length(column), Constraint::Fill(1)])
            .split(inner)
            .to_vec()
    } else {
        vec![inner]
    };
    for (paragraph, area) in paragraphs.into_iter().zip(areas) {
        paragraph.scroll(offset).render(area, buf);
    }
}
