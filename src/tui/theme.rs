//! Colours, with `NO_COLOR` respected: without colour, health still reads from the words
//! (UP / DEGRADED / DOWN) and selection from reverse video.

use ratatui::style::{Color, Modifier, Style};

use crate::probes::Health;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    /// Colour unless `NO_COLOR` is set to a non-empty value (<https://no-color.org>).
    #[must_use]
    pub fn from_env() -> Self {
        Self {
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }

    fn fg(self, c: Color) -> Style {
        if self.color { Style::new().fg(c) } else { Style::new() }
    }

    #[must_use]
    pub fn health(self, h: Health) -> Style {
        match h {
            Health::Up => self.fg(Color::Green),
            Health::Degraded => self.fg(Color::Yellow),
            Health::Down => self.fg(Color::Red).add_modifier(Modifier::BOLD),
            Health::Unknown => self.fg(Color::DarkGray),
        }
    }

    /// Airflow / Spark state words (`success`, `failed`, `running`…).
    #[must_use]
    pub fn state(self, state: &str) -> Style {
        match state.to_ascii_lowercase().as_str() {
            "success" | "finished" | "alive" | "stable" => self.fg(Color::Green),
            "failed" | "upstream_failed" | "dead" | "killed" | "error" => self.fg(Color::Red),
            "running"
            | "queued"
            | "scheduled"
            | "up_for_retry"
            | "restarting"
            | "preparingrebalance"
            | "completingrebalance" => self.fg(Color::Yellow),
            _ => self.fg(Color::DarkGray),
        }
    }

    #[must_use]
    pub fn title(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    #[must_use]
    pub fn dim(self) -> Style {
        self.fg(Color::DarkGray)
    }

    #[must_use]
    pub fn selected(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    #[must_use]
    pub fn error(self) -> Style {
        self.fg(Color::Red)
    }

    #[must_use]
    pub fn accent(self) -> Style {
        self.fg(Color::Cyan)
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
