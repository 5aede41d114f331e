//! `lab compose`: the selected services as an equivalent docker-compose file, so a user can leave
//! the tool at any time. Secrets are never inlined: they are `${LAB_SECRET_NAME}` references
//! filled from an env file (`docker compose --env-file .lab/compose.env up`).

use std::collections::{BTreeMap, BTreeSet};

use super::env::compose_variable;
use super::{Condition, LABEL_STACK, Mount, Selection};

/// The compose YAML. Every scalar is a JSON-style double-quoted string, which YAML reads verbatim.
#[must_use]
pub fn export(selection: &Selection<'_>, env_file_hint: &str) -> String {
    let stack = selection.stack;
    let mut y = String::new();
    // Writing to a String cannot fail: one line at a time, without a Result to ignore.
    macro_rules! emit {
        ($($arg:tt)*) => {{
            y.push_str(&format!($($arg)*));
            y.push('\n');
        }};
    }
    emit!("# Exported by `lab compose` from stack {:?}.", stack.name);
    emit!("# Secrets are not inline: run `docker compose --env-file {env_file_hint} -f THIS_FILE up -d`.");
    emit!("name: {}", q(&format!("lab-{}", stack.name)));
    y.push_str("services:\n");
    let mut volumes: BTreeSet<&str> = BTreeSet::new();
    for s in &selection.services {
        emit!("  {}:", s.name);
        emit!("    image: {}", q(&s.image.to_string()));
        if let Some(build) = &s.build {
            y.push_str("    build:\n");
            emit!("      context: {}", q(&build.context));
            emit!("      dockerfile: {}", q(&build.dockerfile));
        }
        emit!("    container_name: {}", q(&stack.container_name(&s.name)));
        match &s.share_network_with {
            Some(owner) => {
                emit!("    network_mode: {}", q(&format!("service:{owner}")));
            }
            None => {
                emit!("    hostname: {}", q(s.hostname.as_deref().unwrap_or(&s.name)));
            }
        }
        if let Some(entrypoint) = &s.entrypoint {
            emit!("    entrypoint: {}", list(entrypoint));
        }
        if let Some(command) = &s.command {
            emit!("    command: {}", list(command));
        }
        if let Some(user) = &s.user {
            emit!("    user: {}", q(user));
        }
        if let Some(dir) = &s.working_dir {
            emit!("    working_dir: {}", q(dir));
        }
        if !s.env.is_empty() {
            y.push_str("    environment:\n");
            for (key, value) in &s.env {
                emit!("      {}: {}", q(key), json(&value.to_compose()));
            }
        }
        if !s.ports.is_empty() {
            y.push_str("    ports:\n");
            for p in &s.ports {
                emit!(
                    "      - {}",
                    q(&format!(
                        "{}:{}:{}/{}",
                        p.host_ip, p.host_port, p.container_port, p.protocol
                    ))
                );
            }
        }
        if !s.mounts.is_empty() {
            y.push_str("    volumes:\n");
            for m in &s.mounts {
                let (source, target, ro) = match m {
                    Mount::Volume {
                        name,
                        target,
                        read_only,
                    } => {
                        volumes.insert(name);
                        (name, target, read_only)
                    }
                    Mount::Bind {
                        source,
                        target,
                        read_only,
                    } => (source, target, read_only),
                };
                let mode = if *ro { ":ro" } else { "" };
                emit!("      - {}", q(&format!("{source}:{target}{mode}")));
            }
        }
        if let Some(h) = &s.healthcheck {
            y.push_str("    healthcheck:\n");
            emit!("      test: {}", list(&h.test));
            emit!("      interval: {}", q(&format!("{}ms", h.interval.as_millis())));
            emit!("      timeout: {}", q(&format!("{}ms", h.timeout.as_millis())));
            emit!("      retries: {}", h.retries);
            emit!(
                "      start_period: {}",
                q(&format!("{}ms", h.start_period.as_millis()))
            );
        }
        // Only dependencies that are part of the export (a `--only` selection always includes them).
        if !s.depends_on.is_empty() {
            y.push_str("    depends_on:\n");
            for (dep, condition) in &s.depends_on {
                let condition = match condition {
                    Condition::Started => "service_started",
                    Condition::Healthy => "service_healthy",
                    Condition::Completed => "service_completed_successfully",
                };
                emit!("      {dep}:\n        condition: {condition}");
            }
        }
        if let Some(bytes) = s.memory_bytes {
            emit!("    mem_limit: {bytes}");
        }
        if !s.profiles.is_empty() {
            emit!("    profiles: {}", list(&s.profiles));
        }
        // Like `lab up`: a crash shows as exited; bring it back with `up` again.
        y.push_str("    restart: \"no\"\n");
        y.push_str("    init: true\n");
        y.push_str("    labels:\n");
        for (k, v) in s.labels(&stack.name, &s.spec_hash(&stack.name)) {
            emit!("      {}: {}", q(k), q(&v));
        }
    }
    if !volumes.is_empty() {
        y.push_str("volumes:\n");
        for v in volumes {
            emit!("  {v}:\n    name: {}", q(&stack.volume_name(v)));
            emit!("    labels:\n      {}: {}", q(LABEL_STACK), q(&stack.name));
        }
    }
    y.push_str("networks:\n  default:\n");
    emit!("    name: {}", q(&stack.network_name()));
    emit!("    labels:\n      {}: {}", q(LABEL_STACK), q(&stack.name));
    y
}

/// `LAB_SECRET_NAME=value` lines for the secrets the selection uses.
#[must_use]
pub fn env_file(selection: &Selection<'_>, secrets: &BTreeMap<String, String>) -> String {
    let used: BTreeSet<&str> = selection
        .services
        .iter()
        .flat_map(|s| s.env.values().flat_map(|v| v.secrets()))
        .collect();
    let mut out = String::from("# Secrets for the exported compose file. Keep private (mode 0600).\n");
    for name in used {
        if let Some(value) = secrets.get(name) {
            out.push_str(&format!("{}={value}\n", compose_variable(name)));
        }
    }
    out
}

/// A literal string for compose: `$` escaped (compose interpolates every string), JSON-quoted.
fn q(s: &str) -> String {
    json(&s.replace('$', "$$"))
}

fn json(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| q(i)).collect();
    format!("[{}]", quoted.join(", "))
}
