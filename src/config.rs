//! Where the lab's services are and where it keeps its state.
//!
//! Precedence, highest first: command-line flags, environment (`LAB_*`), `lab.toml`
//! (in the working directory or the state directory), built-in defaults.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Default location of the lab's state (logs, raw zone, generated secrets), relative to the working dir.
pub const DEFAULT_STATE_DIR: &str = ".lab";
pub const DEFAULT_BROKERS: &str = "127.0.0.1:9092";
pub const DEFAULT_TOPIC_PREFIX: &str = "yelp";

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
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub state_dir: Option<PathBuf>,
    pub kafka: Option<KafkaSection>,
    pub postgres: Option<PostgresSection>,
    pub raw_zone: Option<RawZoneSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSection {
    pub brokers: Option<String>,
    pub topic_prefix: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSection {
    pub url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawZoneSection {
    pub path: Option<PathBuf>,
}

/// Values given on the command line or in the environment (clap fills both).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub state_dir: Option<PathBuf>,
    pub brokers: Option<String>,
    pub topic_prefix: Option<String>,
    pub pg_url: Option<String>,
    pub raw_zone: Option<PathBuf>,
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
}

impl LabConfig {
    /// Resolves flags/env over `lab.toml` over defaults. `lab.toml` is looked up in the
    /// working directory, then in the state directory.
    pub fn resolve(overrides: Overrides) -> Result<Self, ConfigError> {
        let file = load_file_config(overrides.state_dir.as_deref())?;
        let state_dir = overrides
            .state_dir
            .or(file.state_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
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
        Ok(Self {
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
    fn topic_prefix_is_validated() {
        assert!(validate_topic_prefix("yelp-2").is_ok());
        for bad in ["", "a b", "x;rm", &"a".repeat(201)] {
            assert!(validate_topic_prefix(bad).is_err(), "{bad}");
        }
    }
}
