//! Replicas: names, ports, volumes, placeholders and their errors, on small stacks and on
//! `stacks/lambda.toml` itself.

use std::path::{Path, PathBuf};

use super::super::{Error, Mount, SelectionRequest, Stack, StackFile};
use super::Scale;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn scale(pairs: &[(&str, u32)]) -> Scale {
    Scale::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), *v)))
}

fn parse(text: &str, pairs: &[(&str, u32)]) -> Result<Stack, Error> {
    let file: StackFile = toml::from_str(text).unwrap();
    Stack::from_file_scaled(file, PathBuf::from("/repo/stacks"), &scale(pairs))
}

/// A NameNode-like owner, a DataNode-like scalable sharer and a scalable service with its own network.
const CLUSTER: &str = r#"
name = "t"
[services.head]
image = "x/head:1"
hostname = "head"
ports = ["127.0.0.1:9000:9000", "127.0.0.1:9866:9866", "127.0.0.1:9966:9966", "127.0.0.1:10066:10066"]
env = { REPLICATION = "${scale:node:2}", SECRET = "${secret:head_password}", PRICE = "$$5" }
healthcheck = { test = ["CMD", "true"] }

[services.node]
image = "x/node:1"
command = ["serve", "--port", "${port:9866}", "--id", "${replica}", "--home", "${HOME}"]
share_network_with = "head"
depends_on = { head = "healthy" }
volumes = ["node-data:/data", "./conf:/conf:ro"]
env = { ADDRESS = "0.0.0.0:${port:9866}" }
healthcheck = { test = ["CMD-SHELL", "check 127.0.0.1:${port:9866} $${replica}"] }
scale = { max = 3, port_step = 100 }

[services.web]
image = "x/web:1"
hostname = "web"
ports = ["127.0.0.1:8080:80"]
volumes = ["web-cache:/cache"]
depends_on = { node = "healthy" }
scale = { max = 2, port_step = 10 }
"#;

#[test]
fn replicas_get_names_ports_volumes_and_hostnames_of_their_own() {
    let stack = parse(CLUSTER, &[("node", 3), ("web", 2)]).unwrap();
    let names: Vec<&str> = stack.services.keys().map(String::as_str).collect();
    assert_eq!(names, ["head", "node", "node-2", "node-3", "web", "web-2"]);
    assert_eq!(stack.scale.get("node"), Some(&3));
    assert_eq!(stack.scale.get("web"), Some(&2));

    let node3 = &stack.services["node-3"];
    let replica = node3.replica.as_ref().unwrap();
    assert_eq!((replica.of.as_str(), replica.index), ("node", 3));
    assert!(
        stack.services["node"].replica.is_none(),
        "replica 1 is the service itself"
    );
    assert_eq!(
        node3.command.as_deref().unwrap(),
        ["serve", "--port", "10066", "--id", "3", "--home", "${HOME}"],
        "${{port:..}} and ${{replica}} filled, a shell variable left alone"
    );
    assert_eq!(
        node3.env["ADDRESS"].resolve(&Default::default()).unwrap(),
        "0.0.0.0:10066"
    );
    assert_eq!(
        node3.healthcheck.as_ref().unwrap().test[1],
        "check 127.0.0.1:10066 $${replica}",
        "$$ escapes a placeholder"
    );
    assert_eq!(node3.share_network_with.as_deref(), Some("head"));
    assert_eq!(node3.depends_on.keys().collect::<Vec<_>>(), ["head"]);
    assert!(
        node3.mounts.contains(&Mount::Volume {
            name: "node-data-3".into(),
            target: "/data".into(),
            read_only: false
        }),
        "{:?}",
        node3.mounts
    );
    assert!(
        node3
            .mounts
            .iter()
            .any(|m| matches!(m, Mount::Bind { source, .. } if source == "/repo/stacks/conf")),
        "bind mounts are shared, not renamed: {:?}",
        node3.mounts
    );
    assert!(stack.services["node"].volume_names().eq(["node-data"]));

    let web2 = &stack.services["web-2"];
    assert_eq!(web2.ports[0].host_port, 8090);
    assert_eq!(web2.ports[0].container_port, 80, "only the host side moves");
    assert_eq!(web2.hostname.as_deref(), Some("web-2"));
    assert!(web2.volume_names().eq(["web-cache-2"]));
    assert_eq!(web2.depends_on.keys().collect::<Vec<_>>(), ["node"]);

    let head = &stack.services["head"];
    let env = |k: &str| {
        head.env[k]
            .resolve(&[("head_password".to_string(), "pw".to_string())].into())
            .unwrap()
    };
    assert_eq!(env("REPLICATION"), "2", "capped at 2");
    assert_eq!(env("SECRET"), "pw");
    assert_eq!(env("PRICE"), "$5");
    assert_eq!(
        parse(CLUSTER, &[]).unwrap().services["head"].env["REPLICATION"]
            .resolve(&Default::default())
            .unwrap(),
        "1"
    );
}

#[test]
fn scaled_stacks_start_replicas_after_their_dependencies_and_label_them() {
    let stack = parse(CLUSTER, &[("node", 3), ("web", 2)]).unwrap();
    let selection = stack.select(&SelectionRequest::default()).unwrap();
    let order: Vec<&str> = selection.names().collect();
    let at = |name: &str| order.iter().position(|n| *n == name).unwrap();
    for replica in ["node", "node-2", "node-3"] {
        assert!(at("head") < at(replica), "{order:?}");
    }
    assert!(at("node") < at("web-2"), "{order:?}");
    // `--only node` brings every node, and what they need.
    let selection = stack
        .select(&SelectionRequest {
            only: vec!["node".into()],
            profiles: Vec::new(),
        })
        .unwrap();
    let only: Vec<&str> = selection.names().collect();
    assert_eq!(only, ["head", "node", "node-2", "node-3"]);
    let labels = stack.services["node-2"].labels("t", "h");
    assert_eq!(
        labels.get(super::super::LABEL_REPLICA_OF).map(String::as_str),
        Some("node")
    );
    assert!(
        !stack.services["node"]
            .labels("t", "h")
            .contains_key(super::super::LABEL_REPLICA_OF)
    );
}

#[test]
fn replica_one_is_the_unscaled_service() {
    let plain = parse(CLUSTER, &[]).unwrap();
    let scaled = parse(CLUSTER, &[("node", 3)]).unwrap();
    // A lab scaled up keeps its first container: same name, volume, ports, spec hash.
    assert_eq!(
        plain.services["node"].spec_hash("t"),
        scaled.services["node"].spec_hash("t")
    );
    assert_ne!(
        scaled.services["node-2"].spec_hash("t"),
        scaled.services["node"].spec_hash("t")
    );
    // What reads the count changes with it.
    assert_ne!(
        plain.services["head"].spec_hash("t"),
        parse(CLUSTER, &[("node", 2)]).unwrap().services["head"].spec_hash("t")
    );
}

#[test]
fn scale_requests_are_checked() {
    let message = |pairs: &[(&str, u32)]| parse(CLUSTER, pairs).unwrap_err().to_string();
    assert!(
        message(&[("node", 4)]).contains("at most 3"),
        "{}",
        message(&[("node", 4)])
    );
    let m = message(&[("head", 2)]);
    assert!(
        m.contains("runs as one container") && m.contains("[services.head.scale]"),
        "{m}"
    );
    let m = message(&[("ghost", 2)]);
    assert!(m.contains("no service named \"ghost\""), "{m}");
    assert_eq!(Scale::parse_item("datanode=3"), Ok(("datanode".into(), 3)));
    assert!(Scale::parse_item("datanode=0").is_err());
    assert!(Scale::parse_item("datanode").is_err());
    assert!(Scale::parse_item("datanode=x").is_err());
}

#[test]
fn placeholders_and_scale_tables_are_checked() {
    let bad = |text: &str| parse(text, &[]).unwrap_err().to_string();
    let base = "name = \"t\"\n[services.a]\nimage = \"x/a:1\"\n";
    let m = bad(&format!("{base}command = [\"run\", \"${{replica}}\"]"));
    assert!(
        m.contains("scalable service") && m.contains("[services.a.scale]"),
        "{m}"
    );
    let m = bad(&format!("{base}env = {{ N = \"${{scale:b}}\" }}"));
    assert!(m.contains("b is not a scalable service"), "{m}");
    let m = bad(&format!("{base}scale = {{ max = 0 }}"));
    assert!(m.contains("scale.max"), "{m}");
    let m = bad(&format!("{base}scale = {{ max = 2, port_step = 0 }}"));
    assert!(m.contains("port_step"), "{m}");
    let m = bad(&format!("{base}scale = {{ max = 2 }}\ncommand = [\"${{port:70000}}\"]"));
    assert!(m.contains("not a port"), "{m}");
    // Replica 2 would take an existing service's name.
    let clash = format!("{base}scale = {{ max = 2 }}\n[services.a-2]\nimage = \"x/a:1\"\n");
    let file: StackFile = toml::from_str(&clash).unwrap();
    let m = Stack::from_file_scaled(file, PathBuf::from("/r"), &scale(&[("a", 2)]))
        .unwrap_err()
        .to_string();
    assert!(m.contains("a-2 would take the name"), "{m}");
    // A published port pushed beyond 65535.
    let high = format!("{base}ports = [\"127.0.0.1:65530:80\"]\nscale = {{ max = 2, port_step = 10 }}\n");
    let file: StackFile = toml::from_str(&high).unwrap();
    let m = Stack::from_file_scaled(file, PathBuf::from("/r"), &scale(&[("a", 2)]))
        .unwrap_err()
        .to_string();
    assert!(m.contains("beyond port 65535"), "{m}");
}

#[test]
fn remembered_scales_outlive_edits_to_the_stack_file() {
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.toml");
    std::fs::write(&path, CLUSTER).unwrap();
    let current = super::super::current::load_stack;
    let stack = current(&path, state.path(), &scale(&[("node", 3)])).unwrap();
    super::super::current::remember_scale(state.path(), &stack).unwrap();
    // A later `lab up` without --scale keeps three nodes; --scale changes one count only.
    assert_eq!(
        current(&path, state.path(), &Scale::default()).unwrap().scale["node"],
        3
    );
    let more = current(&path, state.path(), &scale(&[("web", 2)])).unwrap();
    assert_eq!((more.scale["node"], more.scale["web"]), (3, 2));
    // The file stops scaling `node`: the remembered count is dropped, not an error.
    std::fs::write(
        &path,
        CLUSTER
            .replace("scale = { max = 3, port_step = 100 }", "")
            .replace("${port:9866}", "9866")
            .replace("${replica}", "1")
            .replace("${scale:node:2}", "1"),
    )
    .unwrap();
    let edited = current(&path, state.path(), &Scale::default()).unwrap();
    assert!(!edited.services.contains_key("node-2"));
    // Scaling back to one forgets the stack's entry.
    let one = current(&path, state.path(), &scale(&[("web", 1)])).unwrap();
    super::super::current::remember_scale(state.path(), &one).unwrap();
    assert!(
        !std::fs::read_to_string(state.path().join("scale.toml"))
            .unwrap()
            .contains("[t]")
    );
}

fn lambda(pairs: &[(&str, u32)]) -> Stack {
    Stack::load_scaled(&Path::new(REPO).join("stacks/lambda.toml"), &scale(pairs)).unwrap()
}

/// Every DataNode's ports come from its env; the NameNode, whose namespace they share, must
/// publish the data transfer and HTTP ports of each, or host clients cannot reach its blocks.
#[test]
fn lambdas_datanodes_and_spark_workers_scale_to_three_without_a_clash() {
    let stack = lambda(&[("datanode", 3), ("spark-worker", 3)]);
    let published: Vec<u16> = stack.services["namenode"]
        .ports
        .iter()
        .map(|p| p.container_port)
        .collect();
    let none = Default::default();
    for (name, xfer, http) in [
        ("datanode", 9866, 9864),
        ("datanode-2", 9966, 9964),
        ("datanode-3", 10066, 10064),
    ] {
        let dn = &stack.services[name];
        let env = |k: &str| dn.env[k].resolve(&none).unwrap();
        assert_eq!(env("HDFS-SITE.XML_dfs.datanode.address"), format!("0.0.0.0:{xfer}"));
        assert_eq!(
            env("HDFS-SITE.XML_dfs.datanode.http.address"),
            format!("0.0.0.0:{http}")
        );
        assert!(
            published.contains(&xfer) && published.contains(&http),
            "{name}: {published:?}"
        );
        let check = &dn.healthcheck.as_ref().unwrap().test[1];
        assert!(check.contains(&format!("'Name: 127.0.0.1:{xfer} '")), "{check}");
        assert_eq!(dn.share_network_with.as_deref(), Some("namenode"));
    }
    assert!(stack.services["datanode-3"].volume_names().eq(["hdfs-data-3"]));
    for (name, ui) in [
        ("spark-worker", 8081),
        ("spark-worker-2", 8181),
        ("spark-worker-3", 8281),
    ] {
        let w = &stack.services[name];
        assert!(w.command.as_ref().unwrap().contains(&ui.to_string()), "{name}");
        let check = w.healthcheck.as_ref().unwrap().test.join(" ");
        assert!(check.contains(&format!("/dev/tcp/127.0.0.1/{ui} ")), "{check}");
    }
    let replication = |s: &Stack| {
        s.services["namenode"].env["HDFS-SITE.XML_dfs.replication"]
            .resolve(&Default::default())
            .unwrap()
    };
    assert_eq!(replication(&lambda(&[])), "1");
    assert_eq!(replication(&lambda(&[("datanode", 2)])), "2");
    assert_eq!(replication(&stack), "2");
    // Scaling the Spark workers leaves HDFS alone.
    assert_eq!(
        lambda(&[]).services["namenode"].spec_hash("lambda"),
        lambda(&[("spark-worker", 3)]).services["namenode"].spec_hash("lambda")
    );
}
