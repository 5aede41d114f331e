//! Colours, with `NO_COLOR` respected: without colour, health still reads from the words
//! (UP / DEGRADED / DOWN) and selection from reverse video. `lab.toml`'s `[tui.theme]` sets the
//! colour of each role.

use std::str::FromStr;

use ratatui::style::{Color, Modifier, Style};

use crate::config::ThemeSection;
use crate::probes::Health;

/// The colour of each role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Palette {
    pub up: Color,
    pub degraded: Color,
    pub down: Color,
    pub dim: Color,
    pub title: Color,
    pub accent: Color,
    pub error: Color,
}

impl Default for Palette {
    fn default() -> Self {
        Self {
            up: Color::Green,
            degraded: Color::Yellow,
            down: Color::Red,
            dim: Color::DarkGray,
            title: Color::Cyan,
            accent: Color::Cyan,
            error: Color::Red,
        }
    }
}

/// A `[tui.theme]` colour that is not one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{role} = {value:?}` is not a colour; use a name (red, light-blue, dark-gray, …), #rrggbb, or 0-255")]
pub struct ThemeError {
    pub role: &'static str,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
    pub palette: Palette,
}

impl Default for Theme {
    /// The built-in colours.
    fn default() -> Self {
        Self {
            color: true,
            palette: Palette::default(),
        }
    }
}

impl Theme {
    /// No colour at all (`NO_COLOR`).
    #[must_use]
    pub fn no_color() -> Self {
        Self {
            color: false,
            ..Self::default()
        }
    }

    /// Colour unless `NO_COLOR` is set to a non-empty value (<https://no-color.org>).
    #[must_use]
    pub fn from_env() -> Self {
        Self {
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
            ..Self::default()
        }
    }

    /// `from_env` with the roles `[tui.theme]` sets; `NO_COLOR` still wins.
    pub fn configured(section: &ThemeSection) -> Result<Self, ThemeError> {
        let mut theme = Self::from_env();
        let p = &mut theme.palette;
        let roles: [(&'static str, &Option<String>, &mut Color); 7] = [
            ("up", &section.up, &mut p.up),
            ("degraded", &section.degraded, &mut p.degraded),
            ("down", &section.down, &mut p.down),
            ("dim", &section.dim, &mut p.dim),
            ("title", &section.title, &mut p.title),
            ("accent", &section.accent, &mut p.accent),
            ("error", &section.error, &mut p.error),
        ];
        for (role, value, slot) in roles {
            if let Some(v) = value {
                *slot = Color::from_str(v.trim()).map_err(|_| ThemeError { role, value: v.clone() })?;
            }
        }
        Ok(theme)
    }

    fn fg(self, c: Color) -> Style {
        if self.color { Style::new().fg(c) } else { Style::new() }
    }

    #[must_use]
    pub fn health(self, h: Health) -> Style {
        match h {
            Health::Up => self.fg(self.palette.up),
            Health::Degraded => self.fg(self.palette.degraded),
            Health::Down => self.fg(self.palette.down).add_modifier(Modifier::BOLD),
            Health::Unknown => self.fg(self.palette.dim),
        }
    }

    /// Airflow / Spark state words (`success`, `failed`, `running`…).
    #[must_use]
    pub fn state(self, state: &str) -> Style {
        match state.to_ascii_lowercase().as_str() {
            // `succeeded`: yelp.batch_runs' word for a finished load.
            "success" | "succeeded" | "finished" | "alive" | "stable" => self.fg(self.palette.up),
            "failed" | "upstream_failed" | "dead" | "killed" | "error" => self.fg(self.palette.down),
            "running"
            | "queued"
            | "scheduled"
            | "up_for_retry"
            | "restarting"
            | "preparingrebalance"
            | "completingrebalance" => self.fg(self.palette.degraded),
            _ => self.fg(self.palette.dim),
        }
    }

    #[must_use]
    pub fn title(self) -> Style {
        self.fg(self.palette.title).add_modifier(Modifier::BOLD)
    }

    #[must_use]
    pub fn dim(self) -> Style {
        self.fg(self.palette.dim)
    }

    #[must_use]
    pub fn selected(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    #[must_use]
    pub fn error(self) -> Style {
        self.fg(self.palette.error)
    }

    #[must_use]
    pub fn accent(self) -> Style {
        self.fg(self.palette.accent)
    }
}

/// Health as one word, in capitals so it reads without colour.
#[must_use]
pub fn health_label(h: Health) -> &'static str {
    match h {
        Health::Up => "UP",
        Health::Degraded => "DEGRADED",
        Health::Down => "DOWN",
        Health::Unknown => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configured_role_takes_its_colour_and_a_wrong_one_says_what_colours_are() {
        let section = ThemeSection {
            up: Some("light-blue".into()),
            down: Some("#ff8800".into()),
            dim: Some("244".into()),
            ..ThemeSection::default()
        };
        let t = Theme::configured(&section).unwrap();
        assert_eq!(t.palette.up, Color::LightBlue);
        assert_eq!(t.palette.down, Color::Rgb(0xff, 0x88, 0x00));
        assert_eq!(t.palette.dim, Color::Indexed(244));
        assert_eq!(t.palette.title, Palette::default().title, "unset roles keep theirs");
        let t = Theme { color: true, ..t };
        assert_eq!(t.health(Health::Up).fg, Some(Color::LightBlue));
        assert_eq!(t.state("failed").fg, Some(Color::Rgb(0xff, 0x88, 0x00)));
        let err = Theme::configured(&ThemeSection {
            accent: Some("blurple".into()),
            ..ThemeSection::default()
        })
        .unwrap_err();
        assert_eq!(err.role, "accent");
        assert!(err.to_string().contains("#rrggbb"), "{err}");
    }
}
