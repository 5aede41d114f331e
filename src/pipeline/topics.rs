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
        Entity::ALL.into_iter().find(|e| self.raw(*e) == topic)
    }

    /// Which entity a clean topic carries.
    #[must_use]
    pub fn entity_of_clean(&self, topic: &str) -> Option<Entity> {
        Entity::ALL.into_iter().find(|e| self.clean(*e) == topic)
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
}
