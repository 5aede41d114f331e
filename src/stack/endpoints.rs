//! Where host clients reach a running stack, derived from its published ports and secrets, in
//! the `lab.toml` schema (`config::FileConfig`) so the config layer reads it as `endpoints.toml`.

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::{
    AirflowSection, FileConfig, HdfsSection, KafkaSection, PostgresSection, RawZoneSection, SparkSection,
};

/// Where the raw zone lives on the stack's HDFS (stacks/lambda.toml gives the DAG the same path).
pub const STACK_RAW_ZONE_DIR: &str = "/lab/raw";

use super::{Error, Selection, Stack, secrets};

/// Checks every endpoint names a service of the stack that publishes the given container port.
pub(crate) fn check(stack: &Stack) -> Result<(), Error> {
    let e = &stack.endpoints;
    let mut wanted: Vec<(&'static str, &str, u16)> = Vec::new();
    if let Some(k) = &e.kafka {
        wanted.push(("kafka", &k.service, k.port));
        for other in &k.others {
            wanted.push(("kafka", other, k.port));
        }
    }
    if let Some(p) = &e.postgres {
        wanted.push(("postgres", &p.service, p.port));
    }
    if let Some(h) = &e.hdfs {
        wanted.push(("hdfs", &h.service, h.rpc_port));
        wanted.push(("hdfs", &h.service, h.http_port));
    }
    if let Some(s) = &e.spark {
        wanted.push(("spark", &s.service, s.port));
        wanted.push(("spark", &s.service, s.ui_port));
    }
    if let Some(a) = &e.airflow {
        wanted.push(("airflow", &a.service, a.port));
    }
    for (endpoint, service, port) in wanted {
        let Some(s) = stack.services.get(service) else {
            return Err(Error::BadEndpoint {
                endpoint,
                reason: format!("service {service} is not in the stack"),
            });
        };
        if !s.ports.iter().any(|p| p.container_port == port) {
            return Err(Error::BadEndpoint {
                endpoint,
                reason: format!("service {service} does not publish container port {port}"),
            });
        }
    }
    Ok(())
}

/// The endpoints of the selected services (others are left to the config's defaults).
pub fn build(
    selection: &Selection<'_>,
    state_dir: &Path,
    secret_values: &BTreeMap<String, String>,
) -> Result<FileConfig, Error> {
    let stack = selection.stack;
    let host_port = |service: &str, port: u16| -> Option<String> {
        selection
            .services
            .iter()
            .find(|s| s.name == service)?
            .ports
            .iter()
            .find(|p| p.container_port == port)
            .map(|p| format!("{}:{}", p.host_ip, p.host_port))
    };
    let secret = |name: &str| {
        secret_values.get(name).cloned().ok_or_else(|| Error::Secret {
            name: name.to_string(),
            reason: "was not generated".into(),
        })
    };
    let e = &stack.endpoints;
    let mut config = FileConfig::default();
    if let Some(k) = &e.kafka {
        let brokers: Vec<String> = std::iter::once(&k.service)
            .chain(&k.others)
            .filter_map(|service| host_port(service, k.port))
            .collect();
        if !brokers.is_empty() {
            config.kafka = Some(KafkaSection {
                brokers: Some(brokers.join(",")),
                topic_prefix: None,
            });
        }
    }
    if let Some(p) = &e.postgres
        && let Some(addr) = host_port(&p.service, p.port)
    {
        let password = secret(&p.password_secret)?;
        config.postgres = Some(PostgresSection {
            url: Some(format!("postgresql://{}:{password}@{addr}/{}", p.user, p.database)),
        });
    }
    if let Some(h) = &e.hdfs
        && let (Some(rpc), Some(http)) = (host_port(&h.service, h.rpc_port), host_port(&h.service, h.http_port))
    {
        config.hdfs = Some(HdfsSection {
            url: Some(format!("hdfs://{rpc}")),
            http: Some(format!("http://{http}")),
        });
        // With HDFS in the stack the raw zone lives there (the DAG's tasks read the same path).
        config.raw_zone = Some(RawZoneSection {
            path: Some(format!("hdfs://{rpc}{STACK_RAW_ZONE_DIR}").into()),
        });
    }
    if let Some(s) = &e.spark
        && let (Some(master), Some(ui)) = (host_port(&s.service, s.port), host_port(&s.service, s.ui_port))
    {
        config.spark = Some(SparkSection {
            master: Some(format!("spark://{master}")),
            ui: Some(format!("http://{ui}")),
        });
    }
    if let Some(a) = &e.airflow
        && let Some(addr) = host_port(&a.service, a.port)
    {
        secret(&a.password_secret)?;
        let file =
            std::path::absolute(secrets::secret_path(state_dir, &a.password_secret)).map_err(|cause| Error::Io {
                action: "resolve",
                path: state_dir.to_path_buf(),
                cause,
            })?;
        config.airflow = Some(AirflowSection {
            url: Some(format!("http://{addr}")),
            username: Some(a.username.clone()),
            password_file: Some(file),
        });
    }
    Ok(config)
}

/// Writes `<state>/endpoints.toml` with mode 0600 (it holds the PostgreSQL password).
pub fn write(state_dir: &Path, config: &FileConfig) -> Result<(), Error> {
    let path = state_dir.join(crate::config::ENDPOINTS_FILE);
    let text = toml::to_string(config).map_err(|e| Error::Io {
        action: "serialise the endpoints for",
        path: path.clone(),
        cause: std::io::Error::other(e),
    })?;
    let header = "# Written by `lab up`: where the running stack's services listen. Regenerated on every up.\n";
    secrets::write_private(&path, format!("{header}{text}").as_bytes())
}
