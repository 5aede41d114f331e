//! Which services one `lab up` starts: `--only` names (plus what they depend on), or every
//! service without a profile plus those in the requested `--profile`s.

use std::collections::BTreeSet;

use super::{Error, Service, Stack, order};

#[derive(Debug, Clone, Default)]
pub struct SelectionRequest {
    pub only: Vec<String>,
    pub profiles: Vec<String>,
}

/// The chosen services in dependency order.
#[derive(Debug, Clone)]
pub struct Selection<'a> {
    pub stack: &'a Stack,
    pub services: Vec<&'a Service>,
}

impl Selection<'_> {
    /// (service, source) of every bind mount whose source is not on disk, in start order.
    #[must_use]
    pub fn missing_bind_sources(&self) -> Vec<(String, String)> {
        let mut missing = Vec::new();
        for service in &self.services {
            for mount in &service.mounts {
                if let super::Mount::Bind { source, .. } = mount
                    && !std::path::Path::new(source).exists()
                {
                    missing.push((service.name.clone(), source.clone()));
                }
            }
        }
        missing
    }
}

impl Stack {
    pub fn select(&self, request: &SelectionRequest) -> Result<Selection<'_>, Error> {
        let known_profiles: BTreeSet<&str> = self
            .services
            .values()
            .flat_map(|s| s.profiles.iter().map(String::as_str))
            .collect();
        for profile in &request.profiles {
            if !known_profiles.contains(profile.as_str()) {
                return Err(Error::UnknownProfile {
                    profile: profile.clone(),
                    stack: self.name.clone(),
                    known: join_or_none(known_profiles.iter().copied()),
                });
            }
        }
        let mut wanted: BTreeSet<String> = BTreeSet::new();
        if request.only.is_empty() {
            for service in self.services.values() {
                if service.profiles.is_empty() || service.profiles.iter().any(|p| request.profiles.contains(p)) {
                    wanted.insert(service.name.clone());
                }
            }
        } else {
            for name in &request.only {
                if !self.services.contains_key(name) {
                    return Err(Error::UnknownService {
                        name: name.clone(),
                        stack: self.name.clone(),
                        known: join_or_none(self.services.keys().map(String::as_str)),
                    });
                }
                wanted.insert(name.clone());
            }
            // A scaled service asked for by name comes with its replicas.
            for service in self.services.values() {
                if service.replica.as_ref().is_some_and(|r| wanted.contains(&r.of)) {
                    wanted.insert(service.name.clone());
                }
            }
        }
        // A service cannot start without its dependencies, whatever their profile.
        let mut frontier: Vec<String> = wanted.iter().cloned().collect();
        while let Some(name) = frontier.pop() {
            for dep in self.services[&name].depends_on.keys() {
                if wanted.insert(dep.clone()) {
                    frontier.push(dep.clone());
                }
            }
        }
        let order = order::dependency_order(&self.services, wanted)?;
        Ok(Selection {
            stack: self,
            services: order.iter().map(|n| &self.services[n]).collect(),
        })
    }
}

impl Selection<'_> {
    /// Sum of the memory limits, and how many services have none (so the estimate is a floor).
    #[must_use]
    pub fn memory_estimate(&self) -> (u64, usize) {
        let total = self.services.iter().filter_map(|s| s.memory_bytes).sum();
        let unknown = self.services.iter().filter(|s| s.memory_bytes.is_none()).count();
        (total, unknown)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.services.iter().map(|s| s.name.as_str())
    }
}

fn join_or_none<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = items.collect();
    if v.is_empty() { "none".into() } else { v.join(", ") }
}
