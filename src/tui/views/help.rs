//! The `?` overlay: every key and `:` command, from the same table as the footer.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Widget};

use super::centered;
use crate::tui::app::App;
use crate::tui::keys::{COMMANDS, KEYS};

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let mut lines = vec![Line::styled("Keys", t.title())];
    for k in KEYS {
        let scope = k.view.map_or(String::new(), |v| format!("[{}] ", v.title()));
        lines.push(Line::from(vec![
            Span::styled(format!("{:>14}  ", k.keys), t.accent()),
            Span::raw(format!("{scope}{}", k.action)),
        ]));
    }
    lines.push(Line::styled("Commands", t.title()));
    for (c, what) in COMMANDS {
        lines.push(Line::from(vec![
            Span::styled(format!("{c:<26}"), t.accent()),
            Span::raw(*what),
        ]));
    }
    let h = (lines.len() as u16 + 2).min(area.height);
    let popup = centered(area, 76, h);
    Clear.render(popup, buf);
    Paragraph::new(lines)
        .block(
            Block::bordered()
                .title(" Help — any key closes ")
                .border_style(t.accent()),
        )
        .render(popup, buf);
}
