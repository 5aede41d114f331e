//! Topic names: `<prefix>.<entity>` (raw), `<prefix>.<entity>.clean`, `<prefix>.dlq`.

use crate::dataset::Entity;

#[derive(Debug, Clone)]
pub struct Topics {
    prefix: String,
}

impl Topics {
    #[must_use]
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
        }
    }

    #[must_use]
    pub fn raw(&self, entity: Entity) -> String {
        format!("{}.{}", self.prefix, entity.name())
    }

    #[must_use]
    pub fn clean(&self, entity: Entity) -> String {
        format!("{}.{}.clean", self.prefix, entity.name())
    }

    #[must_use]
    pub fn dlq(&self) -> String {
        format!("{}.dlq", self.prefix)
    }

    /// Which entity a raw topic carries.
    #[must_use]
    pub fn entity_of_raw(&self, topic: &str) -> Option<Entity> {
        // Read off the name rather than formatting each candidate: the transform asks this for
        // every record it reads.
        let name = topic.strip_prefix(self.prefix.as_str())?.strip_prefix('.')?;
        Entity::ALL.into_iter().find(|e| e.name() == name)
    }

    /// Which entity a clean topic carries.
    #[must_use]
    pub fn entity_of_clean(&self, topic: &str) -> Option<Entity> {
        self.entity_of_raw(topic.strip_suffix(".clean")?)
    }

    /// Every topic the pipeline uses.
    #[must_use]
    pub fn all(&self) -> Vec<String> {
        let mut all: Vec<String> = Entity::ALL.iter().map(|e| self.raw(*e)).collect();
        all.extend(Entity::ALL.iter().map(|e| self.clean(*e)));
        all.push(self.dlq());
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_reverse_lookup() {
        let t = Topics::new("yelp");
        assert_eq!(t.raw(Entity::Review), "yelp.review");
        assert_eq!(t.clean(Entity::Review), "yelp.review.clean");
        assert_eq!(t.dlq(), "yelp.dlq");
        assert_eq!(t.entity_of_raw("yelp.tip"), Some(Entity::Tip));
        assert_eq!(t.entity_of_raw("yelp.tip.clean"), None);
        assert_eq!(t.entity_of_clean("yelp.tip.clean"), Some(Entity::Tip));
        assert_eq!(t.all().len(), 11);
    }

    #[test]
    fn reverse_lookup_reads_only_this_prefix() {
        for prefix in ["yelp", "a.b", "lab-7"] {
            let t = Topics::new(prefix);
            for entity in Entity::ALL {
                assert_eq!(t.entity_of_raw(&t.raw(entity)), Some(entity));
                assert_eq!(t.entity_of_clean(&t.clean(entity)), Some(entity));
                assert_eq!(t.entity_of_clean(&t.raw(entity)), None);
            }
            assert_eq!(t.entity_of_raw(&t.dlq()), None);
            assert_eq!(t.entity_of_clean(&t.dlq()), None);
        }
        let t = Topics::new("yelp");
        for other in [
            "yelpx.tip",
            "yelp_tip",
            "x.yelp.tip",
            "yelp.tips",
            "yelp.",
            "yelp",
            "",
            "yelp.tip.clean.clean",
        ] {
            assert_eq!(t.entity_of_raw(other), None, "{other}");
            assert_eq!(t.entity_of_clean(&format!("{other}.clean")), None, "{other}");
        }
    }
}
