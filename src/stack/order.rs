//! Dependency order: every service after the services it depends on; ties broken by name so the
//! order is the same on every run.

use std::collections::{BTreeMap, BTreeSet};

use super::{Error, Service};

/// `wanted` in an order where dependencies come first. Every dependency of a wanted service must
/// itself be wanted (the selection adds them).
pub(crate) fn dependency_order(
    services: &BTreeMap<String, Service>,
    wanted: BTreeSet<String>,
) -> Result<Vec<String>, Error> {
    let mut placed: BTreeSet<String> = BTreeSet::new();
    let mut order = Vec::with_capacity(wanted.len());
    while order.len() < wanted.len() {
        let ready: Vec<&String> = wanted
            .iter()
            .filter(|name| !placed.contains(*name))
            .filter(|name| {
                services[*name]
                    .depends_on
                    .keys()
                    .all(|dep| placed.contains(dep) || !wanted.contains(dep))
            })
            .collect();
        if ready.is_empty() {
            let left: BTreeSet<&String> = wanted.iter().filter(|n| !placed.contains(*n)).collect();
            return Err(Error::Cycle(describe_cycle(services, &left)));
        }
        for name in ready {
            placed.insert(name.clone());
            order.push(name.clone());
        }
    }
    Ok(order)
}

/// Walks dependencies among the unplaced services until one repeats: `a → b → a`.
fn describe_cycle(services: &BTreeMap<String, Service>, left: &BTreeSet<&String>) -> String {
    let Some(start) = left.iter().next() else {
        return String::new();
    };
    let mut path: Vec<&str> = vec![start.as_str()];
    let mut current = start.as_str();
    loop {
        let next = services[current]
            .depends_on
            .keys()
            .find(|d| left.contains(d))
            .map(String::as_str);
        let Some(next) = next else {
            return path.join(" → ");
        };
        if let Some(i) = path.iter().position(|p| *p == next) {
            let mut cycle: Vec<&str> = path[i..].to_vec();
            cycle.push(next);
            return cycle.join(" → ");
        }
        path.push(next);
        current = next;
    }
}
