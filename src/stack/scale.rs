//! Replicas of a service (`lab up --scale datanode=3,spark-worker=2`): a service whose stack file
//! gives it a `[services.NAME.scale]` table may run as N containers, each a service of its own in
//! the expanded stack, so ordering, health waits, ports, volumes, labels and the compose export
//! treat a replica like any other service.
//!
//! Replica 1 keeps the service's own name, volumes and ports (a lab scaled back to one is the lab
//! it was). Replica N ≥ 2 is `NAME-N`, with its lab volumes suffixed `-N`, its hostname suffixed
//! `-N`, its published host ports shifted by `port_step × (N − 1)`, and the same dependencies.
//! In a scalable service's command, entrypoint, env values and healthcheck, `${replica}` is N and
//! `${port:BASE}` is `BASE + port_step × (N − 1)` (for ports inside a shared network namespace,
//! where replicas must not collide). In any service, `${scale:NAME}` is NAME's replica count and
//! `${scale:NAME:MAX}` the smaller of that count and MAX (a replication factor, say). Any other
//! `${...}` is left as written (shell variables in commands, `${secret:NAME}` in env).

use std::collections::BTreeMap;

use serde::Serialize;

use super::Error;
use super::model::{ServiceSpec, StackFile};

/// Replica counts asked for, by service name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scale(BTreeMap<String, u32>);

impl Scale {
    /// `NAME=N`, as `--scale` takes it (clap splits the comma-separated list).
    pub fn parse_item(text: &str) -> Result<(String, u32), String> {
        let (name, count) = text
            .split_once('=')
            .ok_or_else(|| format!("{text:?}: write SERVICE=N, e.g. datanode=3"))?;
        let count: u32 = count
            .trim()
            .parse()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| format!("{text:?}: the count must be a whole number from 1"))?;
        Ok((name.trim().to_string(), count))
    }

    #[must_use]
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, u32)>) -> Self {
        Self(pairs.into_iter().collect())
    }

    /// These counts, overridden by `newer`'s.
    #[must_use]
    pub fn merged(&self, newer: &Scale) -> Scale {
        let mut all = self.0.clone();
        all.extend(newer.0.iter().map(|(k, v)| (k.clone(), *v)));
        Scale(all)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, u32)> {
        self.0.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// Only the services `file` can scale: a remembered count outlives a stack file's edits.
    #[must_use]
    pub fn applicable_to(&self, file: &StackFile) -> Scale {
        Scale(
            self.0
                .iter()
                .filter(|(name, _)| file.services.get(*name).is_some_and(|s| s.scale.is_some()))
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
        )
    }
}

/// What a replica service is a copy of. Absent on replica 1, which is the service itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replica {
    pub of: String,
    pub index: u32,
}

/// The stack file with every replica written out as a service, and which services are replicas.
pub(crate) struct Expanded {
    pub file: StackFile,
    pub replicas: BTreeMap<String, Replica>,
    /// Replica count of every scalable service (1 unless asked otherwise).
    pub counts: BTreeMap<String, u32>,
}

pub(crate) fn expand(file: &StackFile, scale: &Scale) -> Result<Expanded, Error> {
    for (name, count) in scale.iter() {
        let Some(spec) = file.services.get(name) else {
            return Err(Error::UnknownService {
                name: name.to_string(),
                stack: file.name.clone(),
                known: file.services.keys().cloned().collect::<Vec<_>>().join(", "),
            });
        };
        let Some(limits) = &spec.scale else {
            return Err(Error::BadField {
                service: name.to_string(),
                field: "--scale",
                value: count.to_string(),
                reason: format!(
                    "{name} runs as one container: its stack file gives it no [services.{name}.scale] table"
                ),
            });
        };
        if count > limits.max {
            return Err(Error::BadField {
                service: name.to_string(),
                field: "--scale",
                value: count.to_string(),
                reason: format!("at most {} (the stack file's scale.max)", limits.max),
            });
        }
    }
    let counts: BTreeMap<String, u32> = file
        .services
        .iter()
        .filter(|(_, s)| s.scale.is_some())
        .map(|(name, _)| (name.clone(), scale.0.get(name).copied().unwrap_or(1)))
        .collect();
    let mut services = BTreeMap::new();
    let mut replicas = BTreeMap::new();
    for (name, spec) in &file.services {
        let count = counts.get(name).copied().unwrap_or(1);
        for index in 1..=count {
            let place = Place {
                service: name,
                spec,
                index,
                counts: &counts,
            };
            let replica = place.spec()?;
            let replica_name = if index == 1 {
                name.clone()
            } else {
                format!("{name}-{index}")
            };
            if index > 1 {
                if file.services.contains_key(&replica_name) {
                    return Err(Error::BadField {
                        service: name.clone(),
                        field: "scale",
                        value: count.to_string(),
                        reason: format!("its replica {replica_name} would take the name of another service"),
                    });
                }
                replicas.insert(
                    replica_name.clone(),
                    Replica {
                        of: name.clone(),
                        index,
                    },
                );
            }
            services.insert(replica_name, replica);
        }
    }
    Ok(Expanded {
        file: StackFile {
            services,
            ..file.clone()
        },
        replicas,
        counts,
    })
}

/// One replica of one service.
struct Place<'a> {
    service: &'a str,
    spec: &'a ServiceSpec,
    index: u32,
    counts: &'a BTreeMap<String, u32>,
}

impl Place<'_> {
    fn spec(&self) -> Result<ServiceSpec, Error> {
        let mut out = self.spec.clone();
        let text = |field: &'static str, value: &str| self.fill(field, value);
        if let Some(command) = &mut out.command {
            for arg in command.iter_mut() {
                *arg = text("command", arg)?;
            }
        }
        if let Some(entrypoint) = &mut out.entrypoint {
            for arg in entrypoint.iter_mut() {
                *arg = text("entrypoint", arg)?;
            }
        }
        for value in out.env.values_mut() {
            *value = text("env", value)?;
        }
        if let Some(check) = &mut out.healthcheck {
            for arg in check.test.iter_mut() {
                *arg = text("healthcheck.test", arg)?;
            }
        }
        if self.index == 1 {
            return Ok(out);
        }
        // Replica N ≥ 2: its own volumes, host ports and hostname; nothing else differs.
        let suffix = format!("-{}", self.index);
        for volume in &mut out.volumes {
            let mut parts: Vec<&str> = volume.split(':').collect();
            let is_lab_volume = parts
                .first()
                .is_some_and(|s| !(s.starts_with("./") || s.starts_with("../") || s.starts_with('/')));
            if is_lab_volume {
                let renamed = format!("{}{suffix}", parts[0]);
                parts[0] = &renamed;
                *volume = parts.join(":");
            }
        }
        for port in &mut out.ports {
            *port = self.shift_host_port(port)?;
        }
        if let Some(hostname) = &mut out.hostname {
            hostname.push_str(&suffix);
        }
        Ok(out)
    }

    fn step(&self) -> u32 {
        self.spec.scale.as_ref().map_or(0, |s| u32::from(s.port_step))
    }

    fn bad(&self, field: &'static str, value: &str, reason: String) -> Error {
        Error::BadField {
            service: self.service.to_string(),
            field,
            value: value.to_string(),
            reason,
        }
    }

    /// `127.0.0.1:HOST:CONTAINER[/proto]` with HOST moved by this replica's offset.
    fn shift_host_port(&self, text: &str) -> Result<String, Error> {
        let mut parts: Vec<String> = text.split(':').map(str::to_string).collect();
        // Malformed ports are left for the port parser, which says what is wrong with them.
        let Some(host) = parts.get(1).and_then(|h| h.parse::<u32>().ok()) else {
            return Ok(text.to_string());
        };
        let shifted = self.offset_port(host).ok_or_else(|| {
            self.bad(
                "ports",
                text,
                format!("replica {} would publish beyond port 65535", self.index),
            )
        })?;
        parts[1] = shifted.to_string();
        Ok(parts.join(":"))
    }

    fn offset_port(&self, base: u32) -> Option<u16> {
        u16::try_from(base + self.step() * (self.index - 1)).ok()
    }

    /// Fills `${replica}`, `${port:BASE}` and `${scale:NAME[:MAX]}`; `$$` and other `${...}` stay.
    fn fill(&self, field: &'static str, value: &str) -> Result<String, Error> {
        let scalable = self.spec.scale.is_some();
        let mut out = String::with_capacity(value.len());
        let mut rest = value;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let after = &rest[i..];
            if let Some(tail) = after.strip_prefix("$$") {
                out.push_str("$$");
                rest = tail;
                continue;
            }
            let Some(end) = after.strip_prefix("${").and_then(|b| b.find('}')) else {
                out.push('$');
                rest = &after[1..];
                continue;
            };
            let inner = &after[2..2 + end];
            let filled = match inner.split(':').collect::<Vec<_>>().as_slice() {
                ["replica"] | ["port", _] if !scalable => {
                    return Err(self.bad(
                        field,
                        value,
                        format!(
                            "${{{inner}}} is for a scalable service: add a [services.{}.scale] table",
                            self.service
                        ),
                    ));
                }
                ["replica"] => Some(self.index.to_string()),
                ["port", base] => {
                    let port = base
                        .parse::<u32>()
                        .ok()
                        .and_then(|b| self.offset_port(b))
                        .filter(|p| *p != 0)
                        .ok_or_else(|| {
                            self.bad(
                                field,
                                value,
                                format!("${{{inner}}}: not a port, or beyond 65535 for replica {}", self.index),
                            )
                        })?;
                    Some(port.to_string())
                }
                ["scale", name, cap @ ..] if cap.len() <= 1 => {
                    let count = self.counts.get(*name).copied().ok_or_else(|| {
                        self.bad(
                            field,
                            value,
                            format!("${{{inner}}}: {name} is not a scalable service of this stack"),
                        )
                    })?;
                    let cap = match cap.first() {
                        None => u32::MAX,
                        Some(c) => c.parse::<u32>().ok().filter(|c| *c >= 1).ok_or_else(|| {
                            self.bad(field, value, format!("${{{inner}}}: the cap must be a number from 1"))
                        })?,
                    };
                    Some(count.min(cap).to_string())
                }
                _ => None,
            };
            match filled {
                Some(text) => out.push_str(&text),
                None => out.push_str(&after[..end + 3]),
            }
            rest = &after[end + 3..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
