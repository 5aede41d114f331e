//! Where the lab's services are and where it keeps its state.
//!
//! Precedence, highest first: command-line flags, environment (`LAB_*`), `lab.toml`
//! (in the working directory or the state directory), built-in defaults.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Default location of the lab's state (logs, raw zone, generated secrets), relative to the working dir.
pub const DEFAULT_STATE_DIR: &str = ".lab";
pub const DEFAULT_BROKERS: &str = "127.0.0.1:9092";
pub const DEFAULT_TOPIC_PREFIX: &str = "yelp";
pub const DEFAULT_HDFS_URL: &str = "hdfs://127.0.0.1:9000";
pub const DEFAULT_HDFS_HTTP: &str = "http://127.0.0.1:9870";
pub const DEFAULT_SPARK_MASTER: &str = "spark://127.0.0.1:7077";
pub const DEFAULT_SPARK_UI: &str = "http://127.0.0.1:9090";
pub const DEFAULT_AIRFLOW_URL: &str = "http://127.0.0.1:8080";
pub const DEFAULT_AIRFLOW_USER: &str = "admin";
/// Written by `lab up` into the state dir (mode 0600): where the stack's services listen.
/// Same schema as `lab.toml`; `lab.toml`, env and flags override it.
pub const ENDPOINTS_FILE: &str = "endpoints.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not valid lab.toml: {source}\nfix the file or remove it to use the defaults")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("topic prefix {0:?} is invalid: use letters, digits, '.', '_' or '-' (at most 200 characters)")]
    TopicPrefix(String),
}

/// The optional `lab.toml` file. Every field may be omitted.
#[derive(Debug, Default, Deserialize, serde::Serialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub state_dir: Option<PathBuf>,
    pub kafka: Option<KafkaSection>,
    pub postgres: Option<PostgresSection>,
    pub raw_zone: Option<RawZoneSection>,
    pub hdfs: Option<HdfsSection>,
    pub spark: Option<SparkSection>,
    pub airflow: Option<AirflowSection>,
    pub alerts: Option<AlertsSection>,
    pub tui: Option<TuiSection>,
}

/// `[tui]`: the monitor's keys and colours. Read here as written; the monitor checks them
/// (`tui::keys::Keymap::configured`, `tui::theme::Theme::configured`) before it opens.
#[derive(Debug, Default, Deserialize, serde::Serialize, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TuiSection {
    /// Action → its keys (`stop_selected = "x"`, `quit = ["q", "F10"]`).
    pub keys: Option<BTreeMap<String, KeyList>>,
    pub theme: Option<ThemeSection>,
}

/// One key or several.
#[derive(Debug, Deserialize, serde::Serialize, Clone, PartialEq, Eq)]
#[serde(untagged)]
pub enum KeyList {
    One(String),
    Many(Vec<String>),
}

impl KeyList {
    #[must_use]
    pub fn keys(&self) -> Vec<&str> {
        match self {
            KeyList::One(k) => vec![k.as_str()],
            KeyList::Many(ks) => ks.iter().map(String::as_str).collect(),
        }
    }
}

/// `[tui.theme]`: a colour per role (`red`, `light-blue`, `#ff8800`, `208`).
#[derive(Debug, Default, Deserialize, serde::Serialize, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ThemeSection {
    /// A healthy service, a successful run.
    pub up: Option<String>,
    /// Degraded, running, waiting.
    pub degraded: Option<String>,
    /// Down, failed.
    pub down: Option<String>,
    /// Not answered yet, idle, secondary text.
    pub dim: Option<String>,
    /// Titles of views and tiles.
    pub title: Option<String>,
    /// Keys, prompts, highlights.
    pub accent: Option<String>,
    /// Error messages.
    pub error: Option<String>,
}

/// `[alerts]`: when a consumer group's lag is an alert (the monitor turns it red with a banner;
/// `lab status` fails while Kafka is required).
#[derive(Debug, Default, Deserialize, serde::Serialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct AlertsSection {
    /// Records behind, for every group without a threshold of its own.
    pub lag: Option<u64>,
    /// Thresholds of single groups (`[alerts.groups]`, `"lab-consumer-yelp" = 500`).
    pub groups: Option<BTreeMap<String, u64>>,
}

#[derive(Debug, Default, Deserialize, serde::Serialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct HdfsSection {
    /// NameNode RPC, e.g. `hdfs://127.0.0.1:9000`.
    pub url: Option<String>,
    /// NameNode HTTP (JMX, WebHDFS), e.g. `http://127.0.0.1:9870`.
    pub http: Option<String>,
}

#[derive(Debug, Default, Deserialize, serde::Serialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct SparkSection {
    /// Master URL for spark-submit, e.g. `spark://127.0.0.1:7077`.
    pub master: Option<String>,
    /// Master web UI (its `/json/` endpoint is probed), e.g. `http://127.0.0.1:9090`.
    pub ui: Option<String>,
}

#[derive(Debug, Default, Deserialize, serde::Serialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct AirflowSection {
    /// API server base URL, e.g. `http://127.0.0.1:8080`.
    pub url: Option<String>,
    pub username: Option<String>,
    /// File holding the password (generated per lab by `lab up`, mode 0600).
    pub password_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize, serde::Serialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct KafkaSection {
    pub brokers: Option<String>,
    pub topic_prefix: Option<String>,
}

#[derive(Debug, Default, Deserialize, serde::Serialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct PostgresSection {
    pub url: Option<String>,
}

#[derive(Debug, Default, Deserialize, serde::Serialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawZoneSection {
    pub path: Option<PathBuf>,
}

/// Values given on the command line or in the environment: clap fills them straight from the
/// flags (`lab --help` shows them), so a new setting is declared once, here.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct Overrides {
    /// Where the lab keeps logs, the raw zone and generated data.
    #[arg(long, global = true, env = "LAB_STATE_DIR", help_heading = "Lab options")]
    pub state_dir: Option<PathBuf>,
    /// Kafka bootstrap servers.
    #[arg(long, global = true, env = "LAB_KAFKA_BROKERS", help_heading = "Lab options")]
    pub brokers: Option<String>,
    /// Prefix of every topic name (`<prefix>.review`, `<prefix>.review.clean`, `<prefix>.dlq`).
    #[arg(long, global = true, env = "LAB_TOPIC_PREFIX", help_heading = "Lab options")]
    pub topic_prefix: Option<String>,
    /// PostgreSQL connection string for the serving tables.
    #[arg(
        long = "pg",
        global = true,
        env = "LAB_PG_URL",
        hide_env_values = true,
        help_heading = "Lab options"
    )]
    pub pg_url: Option<String>,
    /// Raw zone: a directory or hdfs://HOST:PORT/DIR (default: <state-dir>/raw, or HDFS after `lab up`).
    #[arg(long, global = true, env = "LAB_RAW_ZONE", help_heading = "Lab options")]
    pub raw_zone: Option<PathBuf>,
    /// HDFS NameNode RPC URL.
    #[arg(long = "hdfs", global = true, env = "LAB_HDFS_URL", help_heading = "Endpoints")]
    pub hdfs_url: Option<String>,
    /// HDFS NameNode HTTP URL (JMX, WebHDFS).
    #[arg(long, global = true, env = "LAB_HDFS_HTTP", help_heading = "Endpoints")]
    pub hdfs_http: Option<String>,
    /// Spark master URL.
    #[arg(long, global = true, env = "LAB_SPARK_MASTER", help_heading = "Endpoints")]
    pub spark_master: Option<String>,
    /// Spark master web UI URL.
    #[arg(long, global = true, env = "LAB_SPARK_UI", help_heading = "Endpoints")]
    pub spark_ui: Option<String>,
    /// Airflow API server URL.
    #[arg(long, global = true, env = "LAB_AIRFLOW_URL", help_heading = "Endpoints")]
    pub airflow_url: Option<String>,
    /// Airflow user name.
    #[arg(long, global = true, env = "LAB_AIRFLOW_USER", help_heading = "Endpoints")]
    pub airflow_user: Option<String>,
    /// File holding the Airflow password.
    #[arg(long, global = true, env = "LAB_AIRFLOW_PASSWORD_FILE", help_heading = "Endpoints")]
    pub airflow_password_file: Option<PathBuf>,
}

/// The resolved configuration every command works from.
#[derive(Debug, Clone)]
pub struct LabConfig {
    pub state_dir: PathBuf,
    pub brokers: String,
    pub topic_prefix: String,
    /// A tokio-postgres connection string (`host=… user=…` or `postgresql://…`), if configured.
    pub pg_url: Option<String>,
    pub raw_zone: PathBuf,
    pub hdfs: HdfsEndpoint,
    pub spark: SparkEndpoint,
    pub airflow: AirflowEndpoint,
    pub alerts: LagAlerts,
    /// `[tui]` as written in `lab.toml`.
    pub tui: TuiSection,
}

/// Lag thresholds from `[alerts]`: a group is in alert when more records than its threshold wait.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LagAlerts {
    /// For every group without its own.
    pub lag: Option<u64>,
    pub groups: BTreeMap<String, u64>,
}

impl LagAlerts {
    /// The threshold of `group`: its own, else the general one.
    #[must_use]
    pub fn threshold(&self, group: &str) -> Option<u64> {
        self.groups.get(group).copied().or(self.lag)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HdfsEndpoint {
    pub url: String,
    pub http: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SparkEndpoint {
    pub master: String,
    pub ui: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AirflowEndpoint {
    pub url: String,
    pub username: String,
    pub password_file: Option<PathBuf>,
}

impl LabConfig {
    /// Resolves flags/env over `lab.toml` over defaults. `lab.toml` is looked up in the
    /// working directory, then in the state directory.
    pub fn resolve(overrides: Overrides) -> Result<Self, ConfigError> {
        let user = load_file_config(overrides.state_dir.as_deref())?;
        let state_dir = overrides
            .state_dir
            .clone()
            .or(user.state_dir.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
        let file = user.layered_over(load_endpoints_file(&state_dir)?);
        let kafka = file.kafka.unwrap_or_default();
        let topic_prefix = overrides
            .topic_prefix
            .or(kafka.topic_prefix)
            .unwrap_or_else(|| DEFAULT_TOPIC_PREFIX.to_string());
        validate_topic_prefix(&topic_prefix)?;
        let raw_zone = overrides
            .raw_zone
            .or(file.raw_zone.and_then(|r| r.path))
            .unwrap_or_else(|| state_dir.join("raw"));
        let hdfs = file.hdfs.unwrap_or_default();
        let spark = file.spark.unwrap_or_default();
        let airflow = file.airflow.unwrap_or_default();
        let alerts = file.alerts.unwrap_or_default();
        Ok(Self {
            tui: file.tui.unwrap_or_default(),
            alerts: LagAlerts {
                lag: alerts.lag,
                groups: alerts.groups.unwrap_or_default(),
            },
            hdfs: HdfsEndpoint {
                url: pick(overrides.hdfs_url, hdfs.url, DEFAULT_HDFS_URL),
                http: pick(overrides.hdfs_http, hdfs.http, DEFAULT_HDFS_HTTP),
            },
            spark: SparkEndpoint {
                master: pick(overrides.spark_master, spark.master, DEFAULT_SPARK_MASTER),
                ui: pick(overrides.spark_ui, spark.ui, DEFAULT_SPARK_UI),
            },
            airflow: AirflowEndpoint {
                url: pick(overrides.airflow_url, airflow.url, DEFAULT_AIRFLOW_URL),
                username: pick(overrides.airflow_user, airflow.username, DEFAULT_AIRFLOW_USER),
                password_file: overrides.airflow_password_file.or(airflow.password_file),
            },
            brokers: overrides
                .brokers
                .or(kafka.brokers)
                .unwrap_or_else(|| DEFAULT_BROKERS.to_string()),
            pg_url: overrides.pg_url.or(file.postgres.and_then(|p| p.url)),
            topic_prefix,
            raw_zone,
            state_dir,
        })
    }

    #[must_use]
    pub fn log_dir(&self) -> PathBuf {
        self.state_dir.join("logs")
    }
}

fn pick(flag: Option<String>, file: Option<String>, default: &str) -> String {
    flag.or(file).unwrap_or_else(|| default.to_string())
}

impl FileConfig {
    /// Section by section and key by key, `self` wins over `lower`.
    fn layered_over(self, lower: FileConfig) -> FileConfig {
        FileConfig {
            state_dir: self.state_dir.or(lower.state_dir),
            kafka: merge(self.kafka, lower.kafka, |a, b| KafkaSection {
                brokers: a.brokers.or(b.brokers),
                topic_prefix: a.topic_prefix.or(b.topic_prefix),
            }),
            postgres: merge(self.postgres, lower.postgres, |a, b| PostgresSection {
                url: a.url.or(b.url),
            }),
            raw_zone: merge(self.raw_zone, lower.raw_zone, |a, b| RawZoneSection {
                path: a.path.or(b.path),
            }),
            hdfs: merge(self.hdfs, lower.hdfs, |a, b| HdfsSection {
                url: a.url.or(b.url),
                http: a.http.or(b.http),
            }),
            spark: merge(self.spark, lower.spark, |a, b| SparkSection {
                master: a.master.or(b.master),
                ui: a.ui.or(b.ui),
            }),
            airflow: merge(self.airflow, lower.airflow, |a, b| AirflowSection {
                url: a.url.or(b.url),
                username: a.username.or(b.username),
                password_file: a.password_file.or(b.password_file),
            }),
            alerts: merge(self.alerts, lower.alerts, |a, b| AlertsSection {
                lag: a.lag.or(b.lag),
                groups: a.groups.or(b.groups),
            }),
            // Only lab.toml has it (endpoints.toml never does).
            tui: self.tui.or(lower.tui),
        }
    }
}

fn merge<T>(high: Option<T>, low: Option<T>, both: impl FnOnce(T, T) -> T) -> Option<T> {
    match (high, low) {
        (Some(a), Some(b)) => Some(both(a, b)),
        (a, b) => a.or(b),
    }
}

/// The endpoints `lab up` wrote for the running stack, if any.
fn load_endpoints_file(state_dir: &Path) -> Result<FileConfig, ConfigError> {
    let path = state_dir.join(ENDPOINTS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => parse_file_config(&path, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FileConfig::default()),
        Err(source) => Err(ConfigError::Read { path, source }),
    }
}

fn load_file_config(state_dir: Option<&Path>) -> Result<FileConfig, ConfigError> {
    let candidates = [
        Some(PathBuf::from("lab.toml")),
        Some(state_dir.unwrap_or(Path::new(DEFAULT_STATE_DIR)).join("lab.toml")),
    ];
    for path in candidates.into_iter().flatten() {
        match std::fs::read_to_string(&path) {
            Ok(text) => return parse_file_config(&path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(ConfigError::Read { path, source }),
        }
    }
    Ok(FileConfig::default())
}

fn parse_file_config(path: &Path, text: &str) -> Result<FileConfig, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        source: Box::new(e),
    })
}

fn validate_topic_prefix(prefix: &str) -> Result<(), ConfigError> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 200
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::TopicPrefix(prefix.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_alerts_have_a_general_threshold_and_per_group_ones() {
        let text = "[alerts]\nlag = 10000\n[alerts.groups]\n\"lab-consumer-yelp\" = 500\n";
        let cfg = parse_file_config(Path::new("lab.toml"), text).unwrap();
        let section = cfg.alerts.unwrap();
        let alerts = LagAlerts {
            lag: section.lag,
            groups: section.groups.unwrap_or_default(),
        };
        assert_eq!(alerts.threshold("lab-consumer-yelp"), Some(500));
        assert_eq!(alerts.threshold("lab-transform-yelp"), Some(10_000));
        assert_eq!(LagAlerts::default().threshold("any"), None);
        let err = parse_file_config(Path::new("lab.toml"), "[alerts]\nlag = -1\n").unwrap_err();
        assert!(err.to_string().contains("lab.toml"), "{err}");
        let err = parse_file_config(Path::new("lab.toml"), "[alerts]\nlags = 1\n").unwrap_err();
        assert!(err.to_string().contains("unknown field `lags`"), "{err}");
    }

    #[test]
    fn tui_keys_take_one_key_or_several_and_theme_roles_are_checked() {
        let text = "[tui.keys]\nquit = \"Q\"\nstop_selected = [\"x\", \"F5\"]\n[tui.theme]\nup = \"#00ff00\"\n";
        let cfg = parse_file_config(Path::new("lab.toml"), text).unwrap();
        let tui = cfg.tui.unwrap();
        let keys = tui.keys.unwrap();
        assert_eq!(keys["quit"].keys(), ["Q"]);
        assert_eq!(keys["stop_selected"].keys(), ["x", "F5"]);
        assert_eq!(tui.theme.unwrap().up.as_deref(), Some("#00ff00"));
        let err = parse_file_config(Path::new("lab.toml"), "[tui.theme]\ngood = \"red\"\n").unwrap_err();
        assert!(err.to_string().contains("unknown field `good`"), "{err}");
    }

    /// The README's `lab.toml` for an existing cluster is one `lab` reads, every section of it.
    #[test]
    fn the_readme_example_for_an_existing_cluster_parses() {
        let readme = include_str!("../README.md");
        let section = readme
            .split("### On an existing cluster")
            .nth(1)
            .expect("the README's section on an existing cluster");
        let example = section
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("a toml block in it");
        let cfg = parse_file_config(Path::new("README.md"), example).unwrap();
        assert_eq!(
            cfg.kafka.unwrap().brokers.as_deref(),
            Some("kafka-1:9092,kafka-2:9092,kafka-3:9092")
        );
        assert!(cfg.postgres.unwrap().url.unwrap().starts_with("postgres://lab:"));
        assert_eq!(cfg.hdfs.unwrap().http.as_deref(), Some("http://namenode:9870"));
        assert_eq!(cfg.spark.unwrap().master.as_deref(), Some("spark://spark-master:7077"));
        assert_eq!(cfg.airflow.unwrap().username.as_deref(), Some("lab"));
        assert!(cfg.raw_zone.unwrap().path.is_some());
    }

    #[test]
    fn file_config_parses_and_rejects_unknown_keys() {
        let cfg = parse_file_config(Path::new("lab.toml"), "[kafka]\nbrokers = \"10.0.0.1:9092\"\n").unwrap();
        assert_eq!(cfg.kafka.unwrap().brokers.as_deref(), Some("10.0.0.1:9092"));
        let err = parse_file_config(Path::new("lab.toml"), "[kafka]\nbroker = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("unknown field `broker`"), "{err}");
    }

    #[test]
    fn overrides_win_and_defaults_fill_in() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LabConfig::resolve(Overrides {
            state_dir: Some(dir.path().to_path_buf()),
            brokers: Some("127.0.0.1:29092".into()),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(cfg.brokers, "127.0.0.1:29092");
        assert_eq!(cfg.topic_prefix, "yelp");
        assert_eq!(cfg.raw_zone, dir.path().join("raw"));
    }

    #[test]
    fn endpoints_file_from_lab_up_is_overridden_by_lab_toml_and_flags() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(ENDPOINTS_FILE),
            "[kafka]\nbrokers = \"127.0.0.1:9092\"\n[spark]\nmaster = \"spark://127.0.0.1:17077\"\n\
             [airflow]\nurl = \"http://127.0.0.1:18080\"\nusername = \"lab\"\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("lab.toml"), "[airflow]\nusername = \"teacher\"\n").unwrap();
        let cfg = LabConfig::resolve(Overrides {
            state_dir: Some(dir.path().to_path_buf()),
            brokers: Some("127.0.0.1:29092".into()),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(cfg.brokers, "127.0.0.1:29092");
        assert_eq!(cfg.spark.master, "spark://127.0.0.1:17077");
        assert_eq!(cfg.spark.ui, DEFAULT_SPARK_UI);
        assert_eq!(cfg.airflow.url, "http://127.0.0.1:18080");
        assert_eq!(cfg.airflow.username, "teacher");
        assert_eq!(cfg.hdfs.url, DEFAULT_HDFS_URL);
    }

    #[test]
    fn topic_prefix_is_validated() {
        assert!(validate_topic_prefix("yelp-2").is_ok());
        for bad in ["", "a b", "x;rm", &"a".repeat(201)] {
            assert!(validate_topic_prefix(bad).is_err(), "{bad}");
        }
    }
}
