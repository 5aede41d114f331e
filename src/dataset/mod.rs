//! The Yelp Open Dataset: typed records, the format's quirks, a streaming reader, a deterministic generator.

pub mod generate;
pub mod inspect;
pub mod quirks;
pub mod reader;
pub mod types;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// One of the five files of the Yelp Open Dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Entity {
    Business,
    User,
    Review,
    Tip,
    Checkin,
}

impl Entity {
    /// Every entity, dimensions first so a producer that follows this order
    /// publishes businesses and users before the facts that reference them.
    pub const ALL: [Entity; 5] = [
        Entity::Business,
        Entity::User,
        Entity::Review,
        Entity::Tip,
        Entity::Checkin,
    ];

    /// Short lowercase name, used in topic names, raw-zone directories and table names.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Entity::Business => "business",
            Entity::User => "user",
            Entity::Review => "review",
            Entity::Tip => "tip",
            Entity::Checkin => "checkin",
        }
    }

    /// The file name used by the official dataset, e.g. `yelp_academic_dataset_review.json`.
    #[must_use]
    pub fn file_name(self) -> &'static str {
        match self {
            Entity::Business => "yelp_academic_dataset_business.json",
            Entity::User => "yelp_academic_dataset_user.json",
            Entity::Review => "yelp_academic_dataset_review.json",
            Entity::Tip => "yelp_academic_dataset_tip.json",
            Entity::Checkin => "yelp_academic_dataset_checkin.json",
        }
    }

    /// Recognises an entity from a path's file name (`…/yelp_academic_dataset_tip.json`).
    #[must_use]
    pub fn from_file_name(path: &str) -> Option<Entity> {
        let base = path.rsplit('/').next().unwrap_or(path);
        Entity::ALL.into_iter().find(|e| base == e.file_name())
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Entity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Entity::ALL
            .into_iter()
            .find(|e| e.name() == s)
            .ok_or_else(|| format!("unknown entity {s:?} (expected one of business, user, review, tip, checkin)"))
    }
}

/// The sample dataset: the working directory's `datasets/sample` (a checkout, where it may have
/// been regenerated), else the copy this binary carries, written out once under `state_dir` (see
/// [`crate::bundle`]). Not the build tree's: a binary outlives the tree it was built in.
pub fn sample(state_dir: &Path) -> Result<PathBuf, crate::bundle::Error> {
    let local = PathBuf::from(crate::bundle::SAMPLE_DIR);
    if local.is_dir() {
        return Ok(local);
    }
    crate::bundle::write_sample(state_dir)
}

/// [`sample`] off the async workers (it may write 1.2 MB).
pub async fn sample_async(state_dir: &Path) -> Result<PathBuf, crate::bundle::Error> {
    let dir = state_dir.to_path_buf();
    tokio::task::spawn_blocking(move || sample(&dir))
        .await
        .unwrap_or_else(|e| {
            Err(crate::bundle::Error::Io {
                action: "write out the sample under",
                path: state_dir.join("bundle"),
                cause: std::io::Error::other(e),
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_names_round_trip() {
        for e in Entity::ALL {
            assert_eq!(e.name().parse::<Entity>().unwrap(), e);
            assert_eq!(Entity::from_file_name(&format!("x/y/{}", e.file_name())), Some(e));
        }
        assert!("reviews".parse::<Entity>().is_err());
        assert_eq!(Entity::from_file_name("yelp_academic_dataset_photo.json"), None);
    }
}
