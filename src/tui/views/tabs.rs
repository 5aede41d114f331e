//! The nine views and the tab bar's geometry (the same for drawing and for mouse clicks).

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    Overview,
    Pipeline,
    Kafka,
    Hdfs,
    Spark,
    Airflow,
    Postgres,
    Logs,
    Stack,
}

/// Number of views (tabs).
pub const VIEWS: usize = 9;

impl View {
    pub const ALL: [View; VIEWS] = [
        View::Overview,
        View::Pipeline,
        View::Kafka,
        View::Hdfs,
        View::Spark,
        View::Airflow,
        View::Postgres,
        View::Logs,
        View::Stack,
    ];

    #[must_use]
    pub fn title(self) -> &'static str {
        match self {
            View::Overview => "Overview",
            View::Pipeline => "Pipeline",
            View::Kafka => "Kafka",
            View::Hdfs => "HDFS",
            View::Spark => "Spark",
            View::Airflow => "Airflow",
            View::Postgres => "PostgreSQL",
            View::Logs => "Logs",
            View::Stack => "Stack",
        }
    }

    /// The tab label when the terminal is narrow (all nine fit in 80 columns).
    #[must_use]
    pub fn short_title(self) -> &'static str {
        match self {
            View::Postgres => "Postgres",
            v => v.title(),
        }
    }

    #[must_use]
    pub fn index(self) -> usize {
        View::ALL.iter().position(|v| *v == self).unwrap_or(0)
    }

    /// A view by its tab name, any case (`pg` and `postgres` too).
    #[must_use]
    pub fn from_name(name: &str) -> Option<View> {
        let n = name.to_ascii_lowercase();
        View::ALL.into_iter().find(|v| {
            let t = v.title().to_ascii_lowercase();
            t == n || ((n == "pg" || n == "postgres") && *v == View::Postgres)
        })
    }
}

/// Terminal width below which the tab labels drop their padding (so all nine fit in 80 columns).
const WIDE_TABS: u16 = 100;

/// The tab bar's layout: ` 1 Overview │ 2 Pipeline │…` (`1 Overview│2 Pipeline│…` when narrow),
/// the same for drawing and mouse clicks.
#[must_use]
pub fn tab_labels(width: u16) -> Vec<(View, String)> {
    View::ALL
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let label = if width >= WIDE_TABS {
                format!(" {} {} ", i + 1, v.title())
            } else {
                format!("{} {}", i + 1, v.short_title())
            };
            (*v, label)
        })
        .collect()
}

/// Which tab a click on the tab bar's column `x` hits, on a terminal `width` wide.
#[must_use]
pub fn tab_at(x: u16, width: u16) -> Option<View> {
    let mut start = 0u16;
    for (v, label) in tab_labels(width) {
        let end = start + label.chars().count() as u16;
        if x >= start && x < end {
            return Some(v);
        }
        start = end + 1; // one-column divider
    }
    None
}
