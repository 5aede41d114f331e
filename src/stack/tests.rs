//! Parsing, validation, selection, hashing and export of stack files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::*;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn parse(text: &str) -> Result<Stack, Error> {
    let file: StackFile = toml::from_str(text).map_err(|cause| Error::Parse {
        path: PathBuf::from("inline.toml"),
        cause: Box::new(cause),
    })?;
    Stack::from_file(file, PathBuf::from("/repo/stacks"))
}

/// A valid two-service stack with `extra` appended (TOML tables merge by key path).
fn with(extra: &str) -> Result<Stack, Error> {
    parse(&format!(
        r#"
name = "t"
[services.db]
image = "postgres:16.4"
ports = ["127.0.0.1:5432:5432"]
healthcheck = {{ test = ["CMD-SHELL", "pg_isready"] }}
[services.app]
image = "lab-test/busybox:1"
depends_on = {{ db = "healthy" }}
{extra}
"#
    ))
}

fn load_repo_stack(name: &str) -> Stack {
    Stack::load(&Path::new(REPO).join("stacks").join(format!("{name}.toml"))).unwrap()
}

#[test]
fn the_repository_stacks_are_valid() {
    let lambda = load_repo_stack("lambda");
    for service in [
        "postgres",
        "kafka",
        "namenode",
        "datanode",
        "spark-master",
        "spark-worker",
        "airflow-init",
    ] {
        assert!(lambda.services.contains_key(service), "lambda.toml lacks {service}");
    }
    assert!(lambda.services["airflow-init"].one_shot);
    let minimal = load_repo_stack("minimal");
    assert_eq!(minimal.services.keys().collect::<Vec<_>>(), ["kafka", "postgres"]);
    let test = Stack::load(&Path::new(REPO).join("tests/stacks/test.toml")).unwrap();
    assert_eq!(test.name, "labtest");
}

#[test]
fn lambda_publishes_the_config_defaults_on_loopback() {
    let lambda = load_repo_stack("lambda");
    let published: Vec<(u16, &str)> = lambda
        .services
        .values()
        .flat_map(|s| s.ports.iter().map(move |p| (p.host_port, s.name.as_str())))
        .collect();
    // The ports config.rs assumes by default.
    for (port, service) in [
        (9092, "kafka"),
        (5432, "postgres"),
        (9000, "namenode"),
        (9870, "namenode"),
        (7077, "spark-master"),
        (9090, "spark-master"),
        (8080, "airflow-apiserver"),
    ] {
        assert!(published.contains(&(port, service)), "{service} should publish {port}");
    }
    assert!(
        lambda
            .services
            .values()
            .flat_map(|s| &s.ports)
            .all(|p| p.host_ip == "127.0.0.1")
    );
}

#[test]
fn rejects_unknown_dependency() {
    let err = with("[services.extra]\nimage = \"a/b:1\"\ndepends_on = { nope = \"started\" }").unwrap_err();
    assert!(
        matches!(err, Error::UnknownDependency { ref dependency, .. } if dependency == "nope"),
        "{err}"
    );
}

#[test]
fn rejects_a_cycle_and_names_it() {
    let err = parse(
        r#"
name = "t"
[services.a]
image = "x/a:1"
depends_on = { b = "started" }
[services.b]
image = "x/b:1"
depends_on = { c = "started" }
[services.c]
image = "x/c:1"
depends_on = { a = "started" }
"#,
    )
    .unwrap_err();
    let Error::Cycle(path) = &err else {
        panic!("expected a cycle, got {err}")
    };
    assert_eq!(path, "a → b → c → a");
}

#[test]
fn rejects_port_clash() {
    let err = with("ports = [\"127.0.0.1:5432:80\"]").unwrap_err();
    assert!(matches!(err, Error::PortClash { port: 5432, .. }), "{err}");
}

#[test]
fn rejects_ports_beyond_loopback() {
    for port in ["0.0.0.0:8080:80", "192.168.1.2:8080:80", "8080:80", "[::]:8080:80"] {
        let err = with(&format!("ports = [\"{port}\"]")).unwrap_err();
        assert!(
            matches!(err, Error::NonLoopbackPort { .. } | Error::BadPort { .. }),
            "{port}: {err}"
        );
    }
    assert!(matches!(
        with("ports = [\"0.0.0.0:8080:80\"]").unwrap_err(),
        Error::NonLoopbackPort { .. }
    ));
}

#[test]
fn rejects_bad_image_references() {
    for image in ["busybox", "busybox:latest", "Busybox:1", "a b:1"] {
        let err = parse(&format!("name = \"t\"\n[services.a]\nimage = \"{image}\"")).unwrap_err();
        assert!(matches!(err, Error::BadImage { .. }), "{image}: {err}");
    }
}

#[test]
fn rejects_unknown_secret_syntax() {
    for value in ["${env:HOME}", "$HOME", "${secret:Upper}", "${secret:x"] {
        let err = with(&format!("env = {{ X = \"{}\" }}", value.replace('"', "\\\""))).unwrap_err();
        assert!(matches!(err, Error::BadEnv { .. }), "{value}: {err}");
    }
}

#[test]
fn rejects_conditions_the_dependency_cannot_meet() {
    let err = parse(
        r#"
name = "t"
[services.a]
image = "x/a:1"
[services.b]
image = "x/b:1"
depends_on = { a = "healthy" }
"#,
    )
    .unwrap_err();
    assert!(matches!(err, Error::BadCondition { .. }), "{err}");
    let err = with("[services.job]\nimage = \"x/j:1\"\ndepends_on = { db = \"completed\" }").unwrap_err();
    assert!(matches!(err, Error::BadCondition { .. }), "{err}");
}

#[test]
fn rejects_bad_fields() {
    for (extra, field) in [
        ("memory = \"lots\"", "memory"),
        ("start_timeout = \"soon\"", "start_timeout"),
        ("healthcheck = { test = [\"curl\", \"x\"] }", "healthcheck.test"),
        (
            "healthcheck = { test = [\"CMD\", \"x\"], interval = \"1x\" }",
            "healthcheck.interval",
        ),
        ("profiles = [\"Big Data\"]", "profiles"),
    ] {
        let err = with(extra).unwrap_err();
        assert!(
            matches!(&err, Error::BadField { field: f, .. } if *f == field),
            "{extra}: {err}"
        );
    }
    assert!(matches!(
        with("volumes = [\"data\"]").unwrap_err(),
        Error::BadVolume { .. }
    ));
    assert!(matches!(
        parse("name = \"Bad Name\"\n[services.a]\nimage = \"x/a:1\"").unwrap_err(),
        Error::BadStackName(_)
    ));
    assert!(matches!(
        parse("name = \"t\"\n[services.A]\nimage = \"x/a:1\"").unwrap_err(),
        Error::BadServiceName(_)
    ));
    assert!(matches!(
        parse("name = \"t\"\nservices = {}").unwrap_err(),
        Error::NoServices
    ));
    assert!(matches!(with("unknown_key = 1").unwrap_err(), Error::Parse { .. }));
}

#[test]
fn rejects_bad_network_sharing() {
    // Not in depends_on.
    let err = with("[services.side]\nimage = \"x/s:1\"\nshare_network_with = \"db\"").unwrap_err();
    assert!(
        matches!(
            err,
            Error::BadField {
                field: "share_network_with",
                ..
            }
        ),
        "{err}"
    );
    let err = with("share_network_with = \"db\"\nports = [\"127.0.0.1:1:1\"]").unwrap_err();
    assert!(
        matches!(
            err,
            Error::BadField {
                field: "share_network_with",
                ..
            }
        ),
        "{err}"
    );
    let err = with("share_network_with = \"ghost\"").unwrap_err();
    assert!(
        matches!(
            err,
            Error::BadField {
                field: "share_network_with",
                ..
            }
        ),
        "{err}"
    );
    assert!(with("share_network_with = \"db\"").is_ok());
}

#[test]
fn rejects_endpoints_on_unpublished_ports() {
    let err = with("[endpoints]\nkafka = { service = \"app\", port = 9092 }").unwrap_err();
    assert!(matches!(err, Error::BadEndpoint { endpoint: "kafka", .. }), "{err}");
    let err = with("[endpoints]\nkafka = { service = \"ghost\", port = 9092 }").unwrap_err();
    assert!(matches!(err, Error::BadEndpoint { .. }), "{err}");
}

#[test]
fn resolves_bind_mounts_against_the_stack_directory() {
    let stack = with("volumes = [\"../dags:/opt/dags:ro\", \"./init:/init\", \"data:/data\"]").unwrap();
    assert_eq!(
        stack.services["app"].mounts,
        vec![
            Mount::Bind {
                source: "/repo/dags".into(),
                target: "/opt/dags".into(),
                read_only: true
            },
            Mount::Bind {
                source: "/repo/stacks/init".into(),
                target: "/init".into(),
                read_only: false
            },
            Mount::Volume {
                name: "data".into(),
                target: "/data".into(),
                read_only: false
            },
        ]
    );
}

#[test]
fn build_contexts_resolve_against_the_stack_directory() {
    let stack = with("build = { context = \"./images/app\" }").unwrap();
    assert_eq!(
        stack.services["app"].build,
        Some(Build {
            context: "/repo/stacks/images/app".into(),
            dockerfile: "Dockerfile".into(),
            lab_source: None,
        })
    );
    let stack = with("build = { context = \"../docker\", dockerfile = \"app/Dockerfile.lab\" }").unwrap();
    let build = stack.services["app"].build.clone().unwrap();
    assert_eq!(
        (build.context.as_str(), build.dockerfile.as_str()),
        ("/repo/docker", "app/Dockerfile.lab")
    );
}

#[test]
fn rejects_bad_builds() {
    for (build, field) in [
        ("{ context = \"images/app\" }", "build.context"),
        ("{ context = \"\" }", "build.context"),
        (
            "{ context = \"./x\", dockerfile = \"../Dockerfile\" }",
            "build.dockerfile",
        ),
        (
            "{ context = \"./x\", dockerfile = \"/etc/Dockerfile\" }",
            "build.dockerfile",
        ),
        ("{ context = \"./x\", dockerfile = \"\" }", "build.dockerfile"),
        ("{ context = \"./x\", lab_source = \"../up\" }", "build.lab_source"),
        ("{ context = \"./x\", lab_source = \"a/b\" }", "build.lab_source"),
        ("{ context = \"./x\", lab_source = \"\" }", "build.lab_source"),
    ] {
        let err = with(&format!("build = {build}")).unwrap_err();
        assert!(
            matches!(err, Error::BadField { field: f, .. } if f == field),
            "{build}: {err}"
        );
    }
    let err = with("build = { context = \"./x\", file = \"D\" }").unwrap_err();
    assert!(err.to_string().contains("unknown field"), "{err}");
}

#[test]
fn an_image_is_built_one_way_only() {
    // Two services running one built image: fine when they build it the same way.
    let same = "[services.other]\nimage = \"lab-test/busybox:1\"\nbuild = { context = \"./b\" }\n";
    assert!(with(&format!("build = {{ context = \"./b\" }}\n{same}")).is_ok());
    let err = with(&format!("build = {{ context = \"./a\" }}\n{same}")).unwrap_err();
    assert!(
        matches!(err, Error::ConflictingBuilds { ref image, .. } if image == "lab-test/busybox:1"),
        "{err}"
    );
}

#[test]
fn lambdas_scheduler_image_is_built_from_the_repository() {
    let lambda = load_repo_stack("lambda");
    let scheduler = &lambda.services["airflow-scheduler"];
    let build = scheduler.build.as_ref().expect("the scheduler's image is built");
    let dockerfile = Path::new(&build.context).join(&build.dockerfile);
    let text = std::fs::read_to_string(&dockerfile).unwrap();
    // Spark and its Java come from the image the cluster runs: one Spark version on both sides.
    let spark_image = lambda.services["spark-worker"].image.to_string();
    assert!(text.contains(&format!("FROM {spark_image} AS spark")), "{text}");
    assert!(
        text.contains(&format!("FROM {}", lambda.services["airflow-apiserver"].image)),
        "{text}"
    );
    assert_eq!(
        scheduler.env["LAB_SPARK_SUBMIT"].to_compose(),
        "/opt/spark/bin/spark-submit",
        "the DAG runs the spark-submit the image carries"
    );
}

#[test]
fn selection_orders_dependencies_first_and_honours_profiles() {
    let lambda = load_repo_stack("lambda");
    let all = lambda.select(&SelectionRequest::default()).unwrap();
    let names: Vec<&str> = all.names().collect();
    let pos = |n: &str| {
        names
            .iter()
            .position(|x| *x == n)
            .unwrap_or_else(|| panic!("{n} not selected"))
    };
    for (service, dep) in lambda
        .services
        .values()
        .filter(|s| names.contains(&s.name.as_str()))
        .flat_map(|s| s.depends_on.keys().map(move |d| (s.name.as_str(), d.as_str())))
    {
        assert!(pos(dep) < pos(service), "{dep} must start before {service}");
    }
    assert!(!names.contains(&"resourcemanager"), "yarn is a profile");
    let yarn = lambda
        .select(&SelectionRequest {
            only: vec![],
            profiles: vec!["yarn".into()],
        })
        .unwrap();
    assert!(yarn.names().any(|n| n == "resourcemanager"));
    let only = lambda
        .select(&SelectionRequest {
            only: vec!["airflow-scheduler".into()],
            profiles: vec![],
        })
        .unwrap();
    assert_eq!(
        only.names().collect::<Vec<_>>(),
        // The scheduler runs the DAG's tasks in the NameNode's namespace, next to HDFS.
        [
            "namenode",
            "postgres",
            "airflow-init",
            "datanode",
            "airflow-apiserver",
            "airflow-scheduler"
        ]
    );
    let (memory, unknown) = all.memory_estimate();
    assert!(memory > 4 << 30, "the full stack needs several GB");
    assert_eq!(unknown, 0, "every lambda service has a memory limit");
}

#[test]
fn selection_rejects_unknown_names_and_profiles() {
    let lambda = load_repo_stack("lambda");
    let err = lambda
        .select(&SelectionRequest {
            only: vec!["kafak".into()],
            profiles: vec![],
        })
        .unwrap_err();
    assert!(matches!(err, Error::UnknownService { .. }), "{err}");
    assert!(
        err.to_string().contains("kafka"),
        "the message lists the real names: {err}"
    );
    let err = lambda
        .select(&SelectionRequest {
            only: vec![],
            profiles: vec!["gpu".into()],
        })
        .unwrap_err();
    assert!(matches!(err, Error::UnknownProfile { .. }), "{err}");
}

#[test]
fn spec_hash_follows_the_spec_only() {
    let a = with("").unwrap();
    let b = with("").unwrap();
    assert_eq!(a.services["app"].spec_hash("t"), b.services["app"].spec_hash("t"));
    let changed = with("env = { X = \"1\" }").unwrap();
    assert_ne!(a.services["app"].spec_hash("t"), changed.services["app"].spec_hash("t"));
    assert_eq!(a.services["db"].spec_hash("t"), changed.services["db"].spec_hash("t"));
    assert_ne!(a.services["app"].spec_hash("t"), a.services["app"].spec_hash("other"));
}

#[test]
fn secret_names_cover_env_and_endpoints() {
    let lambda = load_repo_stack("lambda");
    let names = lambda.secret_names();
    for expected in ["postgres_password", "airflow_admin_password", "airflow_jwt_secret"] {
        assert!(names.contains(expected), "{expected} missing from {names:?}");
    }
}

#[test]
fn endpoints_come_from_published_ports_and_secrets() {
    let lambda = load_repo_stack("lambda");
    let selection = lambda.select(&SelectionRequest::default()).unwrap();
    let secrets = BTreeMap::from([
        ("postgres_password".to_string(), "pw1".to_string()),
        ("airflow_admin_password".to_string(), "pw2".to_string()),
    ]);
    let state = tempfile::tempdir().unwrap();
    let config = endpoints::build(&selection, state.path(), &secrets).unwrap();
    assert_eq!(config.kafka.unwrap().brokers.as_deref(), Some("127.0.0.1:9092"));
    assert_eq!(
        config.postgres.unwrap().url.as_deref(),
        Some("postgresql://postgres:pw1@127.0.0.1:5432/yelp")
    );
    let hdfs = config.hdfs.unwrap();
    assert_eq!(hdfs.url.as_deref(), Some(crate::config::DEFAULT_HDFS_URL));
    assert_eq!(hdfs.http.as_deref(), Some(crate::config::DEFAULT_HDFS_HTTP));
    let spark = config.spark.unwrap();
    assert_eq!(spark.master.as_deref(), Some(crate::config::DEFAULT_SPARK_MASTER));
    assert_eq!(spark.ui.as_deref(), Some(crate::config::DEFAULT_SPARK_UI));
    let airflow = config.airflow.unwrap();
    assert_eq!(airflow.url.as_deref(), Some(crate::config::DEFAULT_AIRFLOW_URL));
    assert!(
        airflow
            .password_file
            .unwrap()
            .ends_with("secrets/airflow_admin_password")
    );

    // Only what was selected: `--only kafka` writes no PostgreSQL URL.
    let only = lambda
        .select(&SelectionRequest {
            only: vec!["kafka".into()],
            profiles: vec![],
        })
        .unwrap();
    let config = endpoints::build(&only, state.path(), &secrets).unwrap();
    assert!(config.kafka.is_some() && config.postgres.is_none() && config.hdfs.is_none());
}

#[test]
fn endpoints_file_is_private_and_readable_by_the_config_layer() {
    let lambda = load_repo_stack("minimal");
    let selection = lambda.select(&SelectionRequest::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let secrets = secrets::ensure(state.path(), &lambda.secret_names()).unwrap();
    let config = endpoints::build(&selection, state.path(), &secrets).unwrap();
    endpoints::write(state.path(), &config).unwrap();
    let path = state.path().join(crate::config::ENDPOINTS_FILE);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let resolved = crate::config::LabConfig::resolve(crate::config::Overrides {
        state_dir: Some(state.path().to_path_buf()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(resolved.brokers, "127.0.0.1:9092");
    assert_eq!(
        resolved.pg_url,
        Some(format!(
            "postgresql://postgres:{}@127.0.0.1:5432/yelp",
            secrets["postgres_password"]
        ))
    );
}

/// The export of lambda.toml (with the yarn profile) against tests/golden/compose-lambda.yml.
/// Regenerate after an intended change with `UPDATE_GOLDEN=1 cargo test --lib compose_export`.
#[test]
fn compose_export_matches_golden() {
    let text = std::fs::read_to_string(Path::new(REPO).join("stacks/lambda.toml")).unwrap();
    let file: StackFile = toml::from_str(&text).unwrap();
    let stack = Stack::from_file(file, PathBuf::from("/repo/stacks")).unwrap();
    let selection = stack
        .select(&SelectionRequest {
            only: vec![],
            profiles: vec!["yarn".into()],
        })
        .unwrap();
    let yaml = compose::export(&selection, ".lab/compose.env");
    let golden = Path::new(REPO).join("tests/golden/compose-lambda.yml");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &yaml).unwrap();
    }
    let expected = std::fs::read_to_string(&golden).unwrap();
    assert_eq!(
        yaml, expected,
        "compose export changed; see the doc comment to regenerate"
    );
    // Secrets are references, never values.
    assert!(yaml.contains("${LAB_SECRET_POSTGRES_PASSWORD}"));
    assert!(!yaml.contains("${secret:"));
}

#[test]
fn compose_env_file_holds_the_used_secrets() {
    let stack = load_repo_stack("minimal");
    let selection = stack.select(&SelectionRequest::default()).unwrap();
    let secrets = BTreeMap::from([
        ("postgres_password".to_string(), "abc".to_string()),
        ("unused".to_string(), "zzz".to_string()),
    ]);
    let env = compose::env_file(&selection, &secrets);
    assert!(env.contains("LAB_SECRET_POSTGRES_PASSWORD=abc\n"));
    assert!(!env.contains("zzz"));
}

/// What a real laptop meets on the first `lab up` of lambda.toml (see the stack file's comments
/// for the image sources each setting was checked against).
#[test]
fn lambda_runs_on_any_host_and_fits_its_limits() {
    let lambda = load_repo_stack("lambda");
    let env = |service: &str, key: &str| lambda.services[service].env.get(key).map(EnvValue::to_compose);
    let mib = |text: &str| model::parse_memory(text).unwrap() >> 20;
    // Nothing of a host build is mounted: the scheduler compiles its `lab` from the source.
    for service in lambda.services.values() {
        for mount in &service.mounts {
            if let Mount::Bind { source, .. } = mount {
                assert!(
                    !source.contains("/target/"),
                    "{} mounts a build output: {source}",
                    service.name
                );
            }
        }
    }
    let scheduler = &lambda.services["airflow-scheduler"];
    assert_eq!(scheduler.build.as_ref().unwrap().lab_source.as_deref(), Some("lab-src"));
    // Driver (scheduler) and executors (Spark worker) on one Python minor version, which Spark
    // 3.5 supports: apache/spark's java17 variant is Ubuntu 22.04 with Python 3.10.
    for name in ["airflow-init", "airflow-apiserver", "airflow-dag-processor"] {
        assert!(
            lambda.services[name].image.to_string().ends_with("-python3.10"),
            "{name}"
        );
    }
    for name in ["spark-master", "spark-worker"] {
        assert_eq!(
            lambda.services[name].image.to_string(),
            "apache/spark:3.5.3-java17-python3"
        );
        let daemon = mib(&env(name, "SPARK_DAEMON_MEMORY").expect("the daemon's heap is set"));
        assert!(
            daemon * 2 <= lambda.services[name].memory_bytes.unwrap() >> 20,
            "{name}"
        );
    }
    // One Fernet key for every Airflow container.
    for (name, service) in &lambda.services {
        if name.starts_with("airflow-") {
            assert_eq!(
                env(name, "AIRFLOW__CORE__FERNET_KEY").as_deref(),
                Some("${LAB_SECRET_AIRFLOW_FERNET_KEY}"),
                "{name}"
            );
            assert!(service.image.to_string().contains("3.3.2"), "{name}");
        }
    }
    // The DAG's parse-time settings where Airflow 3 parses it.
    assert_eq!(
        env("airflow-dag-processor", "LAB_AIRFLOW_TEACHING").as_deref(),
        Some("1")
    );
    assert!(env("airflow-dag-processor", "LAB_TOPIC_PREFIX").is_some());
    // Healthchecks that start a JVM give it a small heap of its own.
    for (name, var) in [
        ("kafka", "KAFKA_HEAP_OPTS="),
        ("namenode", "HADOOP_HEAPSIZE_MAX="),
        ("datanode", "HADOOP_HEAPSIZE_MAX="),
    ] {
        let test = lambda.services[name].healthcheck.as_ref().unwrap().test.join(" ");
        assert!(test.contains(var), "{name}: {test}");
    }
    // YARN advertises what its container can hold.
    let nm_offer = mib(&format!(
        "{}m",
        env("nodemanager", "YARN-SITE.XML_yarn.nodemanager.resource.memory-mb").unwrap()
    ));
    let nm_heap = mib(&env("nodemanager", "HADOOP_HEAPSIZE_MAX").unwrap());
    assert!(nm_offer + nm_heap <= lambda.services["nodemanager"].memory_bytes.unwrap() >> 20);
}

#[test]
fn missing_bind_sources_are_listed_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("present.sql"), "select 1;").unwrap();
    let file: StackFile = toml::from_str(
        r#"
name = "t"
[services.db]
image = "postgres:16.4"
volumes = ["./present.sql:/init/a.sql:ro", "./absent:/init/b:ro", "data:/var/lib/data"]
[services.app]
image = "lab-test/busybox:1"
volumes = ["../elsewhere/missing.txt:/x:ro"]
"#,
    )
    .unwrap();
    let stack = Stack::from_file(file, dir.path().to_path_buf()).unwrap();
    let missing = stack
        .select(&SelectionRequest::default())
        .unwrap()
        .missing_bind_sources();
    let named: Vec<(&str, bool)> = missing
        .iter()
        .map(|(s, p)| {
            (
                s.as_str(),
                p.ends_with("/absent") || p.ends_with("/elsewhere/missing.txt"),
            )
        })
        .collect();
    assert_eq!(named.len(), 2, "{missing:?}");
    assert!(named.iter().all(|(_, expected)| *expected), "{missing:?}");
    assert!(
        load_repo_stack("lambda")
            .select(&SelectionRequest::default())
            .unwrap()
            .missing_bind_sources()
            .is_empty()
    );
}

#[test]
fn platforms_are_checked_and_decide_what_runs_emulated() {
    let stack = with("platforms = [\"linux/amd64\"]").unwrap();
    let app = &stack.services["app"];
    assert_eq!(app.emulated_platform("aarch64"), Some("linux/amd64"));
    assert_eq!(app.emulated_platform("x86_64"), None);
    assert_eq!(
        app.emulated_platform("mips"),
        None,
        "an unknown CPU: let the engine pick"
    );
    assert_eq!(
        stack.services["db"].emulated_platform("aarch64"),
        None,
        "platforms unknown"
    );
    let multi = with("platforms = [\"linux/amd64\", \"linux/arm64\"]").unwrap();
    assert_eq!(multi.services["app"].emulated_platform("aarch64"), None);
    let err = with("platforms = [\"linux/arm64/v8x\"]").unwrap_err();
    assert!(matches!(err, Error::BadField { field: "platforms", .. }), "{err}");
    assert_eq!(platform_of_arch("arm64"), Some("linux/arm64"));
}

/// `stacks/cluster.toml`: three KRaft nodes of one quorum and one cluster id, each with its own
/// id, volume, host port (advertised as what it publishes) and health check; replication the
/// cluster's; clients bootstrap from all three.
#[test]
fn the_cluster_stack_is_three_brokers_of_one_quorum() {
    let stack = load_repo_stack("cluster");
    let none = BTreeMap::new();
    let env = |service: &str, key: &str| {
        stack.services[service].env[key]
            .resolve(&none)
            .unwrap_or_else(|e| panic!("{service} {key}: {e}"))
    };
    let brokers = ["kafka-1", "kafka-2", "kafka-3"];
    let voters = env("kafka-1", "KAFKA_CONTROLLER_QUORUM_VOTERS");
    let mut host_ports = Vec::new();
    for (i, broker) in brokers.iter().enumerate() {
        let id = (i + 1).to_string();
        let service = &stack.services[*broker];
        assert_eq!(env(broker, "KAFKA_NODE_ID"), id);
        assert_eq!(
            env(broker, "KAFKA_CONTROLLER_QUORUM_VOTERS"),
            voters,
            "{broker}: one quorum"
        );
        assert!(
            voters.split(',').any(|v| v == format!("{id}@{broker}:9093")),
            "{voters}"
        );
        assert_eq!(
            env(broker, "CLUSTER_ID"),
            env("kafka-1", "CLUSTER_ID"),
            "{broker}: one cluster id"
        );
        assert_eq!(service.hostname.as_deref(), Some(*broker));
        let [port] = service.ports.as_slice() else {
            panic!("{broker}: one published port")
        };
        assert_eq!(port.container_port, 9092);
        assert_eq!(
            env(broker, "KAFKA_ADVERTISED_LISTENERS"),
            format!("HOST://127.0.0.1:{},DOCKER://{broker}:19092", port.host_port),
            "{broker} advertises what it publishes"
        );
        host_ports.push(port.host_port);
        assert!(service.volume_names().eq([format!("{broker}-data").as_str()]));
        assert_eq!(env(broker, "KAFKA_LOG_DIRS"), "/var/lib/kafka/data");
        for (key, value) in [
            ("KAFKA_DEFAULT_REPLICATION_FACTOR", "3"),
            ("KAFKA_MIN_INSYNC_REPLICAS", "2"),
            ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "3"),
            ("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "3"),
            ("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "2"),
        ] {
            assert_eq!(env(broker, key), value, "{broker} {key}");
        }
        let check = &service.healthcheck.as_ref().unwrap().test[1];
        assert!(check.contains(&format!("--bootstrap-server {broker}:19092")), "{check}");
        assert!(service.depends_on.is_empty(), "{broker}: the nodes start together");
    }
    assert_eq!(voters.split(',').count(), 3);
    host_ports.sort_unstable();
    host_ports.dedup();
    assert_eq!(host_ports.len(), 3);

    let state = tempfile::tempdir().unwrap();
    let secrets = BTreeMap::from([("postgres_password".to_string(), "pw".to_string())]);
    let selection = stack.select(&SelectionRequest::default()).unwrap();
    let config = endpoints::build(&selection, state.path(), &secrets).unwrap();
    assert_eq!(
        config.kafka.unwrap().brokers.as_deref(),
        Some("127.0.0.1:9092,127.0.0.1:9192,127.0.0.1:9292")
    );
}

#[test]
fn kafka_endpoints_name_brokers_that_publish_the_port() {
    let err = with("[endpoints]\nkafka = { service = \"db\", port = 5432, others = [\"app\"] }").unwrap_err();
    assert!(
        err.to_string().contains("app does not publish container port 5432"),
        "{err}"
    );
}
