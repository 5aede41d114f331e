//! The `?` overlay: every key and `:` command, from the same table as the footer.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Widget};

use super::centered;
use crate::tui::app::App;
use crate::tui::keys::{COMMANDS, KEYMAP};

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let mut keys = vec![Line::styled("Keys", t.title())];
    for k in KEYMAP {
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
    // Side by side when there is room, so every line shows on a 100×30 terminal.
    let wide = area.width >= 100;
    let lines = if wide {
        keys.len().max(commands.len())
    } else {
        keys.len() + commands.len()
    };
    let h = (lines as u16 + 2).min(area.height);
    let popup = centered(area, if wide { area.width.min(140) } else { 76 }, h);
    Clear.render(popup, buf);
    let block = Block::bordered()
        .title(" Help — any key closes ")
        .border_style(t.accent());
    let inner = block.inner(popup);
    block.render(popup, buf);
    if wide {
        let [left, right] = Layout::horizontal([Constraint::Percentage(62), Constraint::Percentage(38)]).areas(inner);
        Paragraph::new(keys).render(left, buf);
        Paragraph::new(commands).render(right, buf);
    } else {
        keys.extend(commands);
        Paragraph::new(keys).render(inner, buf);
    }
}
