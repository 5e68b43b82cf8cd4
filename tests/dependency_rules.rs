//! The layering in ARCHITECTURE.md, checked on the real dependency graph (`cargo
//! metadata`, every platform): the crates that decide or carry media never gain the async
//! runtime or WebRTC, the call core and the protocol never gain sockets, and nothing that
//! ships depends on the test-only simulated network.

// A test: it may panic (see [workspace.lints]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

use serde_json::Value;

/// The dependency graph: package id -> (name, ids of its normal and build dependencies).
struct Graph {
    packages: HashMap<String, (String, Vec<String>)>,
}

impl Graph {
    fn load() -> Graph {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let output = Command::new(cargo)
            .args(["metadata", "--format-version", "1", "--locked"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("cargo metadata runs");
        assert!(
            output.status.success(),
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let metadata: Value = serde_json::from_slice(&output.stdout).expect("metadata is JSON");
        let names: HashMap<&str, &str> = metadata["packages"]
            .as_array()
            .expect("packages")
            .iter()
            .map(|p| {
                (
                    p["id"].as_str().expect("id"),
                    p["name"].as_str().expect("name"),
                )
            })
            .collect();
        let packages = metadata["resolve"]["nodes"]
            .as_array()
            .expect("resolve nodes")
            .iter()
            .map(|node| {
                let id = node["id"].as_str().expect("node id");
                let deps = node["deps"]
                    .as_array()
                    .expect("deps")
                    .iter()
                    .filter(|dep| {
                        // Normal (null) and build dependencies: what the crate is built
                        // with, not what its tests use.
                        dep["dep_kinds"]
                            .as_array()
                            .expect("dep_kinds")
                            .iter()
                            .any(|kind| kind["kind"].is_null() || kind["kind"] == "build")
                    })
                    .map(|dep| dep["pkg"].as_str().expect("dep pkg").to_owned())
                    .collect();
                (id.to_owned(), (names[id].to_owned(), deps))
            })
            .collect();
        Graph { packages }
    }

    /// The names of every crate `name` is built with, directly or not.
    fn tree(&self, name: &str) -> BTreeSet<String> {
        let root = self
            .packages
            .iter()
            .find(|(_, (n, _))| n == name)
            .map(|(id, _)| id.clone())
            .unwrap_or_else(|| panic!("{name} is not in the workspace"));
        let mut seen = BTreeSet::new();
        let mut names = BTreeSet::new();
        let mut todo = vec![root];
        while let Some(id) = todo.pop() {
            for dep in &self.packages[&id].1 {
                if seen.insert(dep.clone()) {
                    names.insert(self.packages[dep].0.clone());
                    todo.push(dep.clone());
                }
            }
        }
        names
    }
}

fn offenders(tree: &BTreeSet<String>, forbidden: &[&str]) -> Vec<String> {
    tree.iter()
        .filter(|name| {
            forbidden
                .iter()
                .any(|f| *name == f || (f.ends_with('*') && name.starts_with(&f[..f.len() - 1])))
        })
        .cloned()
        .collect()
}

const RUNTIME_AND_WEBRTC: &[&str] = &["tokio", "async-std", "smol", "webrtc", "rtc*"];
const SOCKETS: &[&str] = &["mio", "socket2"];

#[test]
fn the_call_core_and_the_protocol_have_no_runtime_webrtc_or_sockets() {
    let graph = Graph::load();
    for name in ["confab-call-core", "confab-protocol"] {
        let tree = graph.tree(name);
        let found = offenders(&tree, &[RUNTIME_AND_WEBRTC, SOCKETS].concat());
        assert!(found.is_empty(), "{name} depends on {found:?}");
    }
}

#[test]
fn the_media_crate_has_no_runtime_or_webrtc() {
    let graph = Graph::load();
    let tree = graph.tree("confab-media");
    let found = offenders(&tree, RUNTIME_AND_WEBRTC);
    assert!(found.is_empty(), "confab-media depends on {found:?}");
}

#[test]
fn nothing_that_ships_depends_on_the_simulated_network() {
    let graph = Graph::load();
    for name in ["confab", "confab-call", "confab-signaling"] {
        let tree = graph.tree(name);
        assert!(
            !tree.contains("confab-netsim"),
            "{name} ships confab-netsim"
        );
    }
}

/// The rules above read a real graph: where the runtime and WebRTC are, they are found.
#[test]
fn the_driver_is_where_the_runtime_and_webrtc_are() {
    let graph = Graph::load();
    let found = offenders(&graph.tree("confab-call"), RUNTIME_AND_WEBRTC);
    for name in ["tokio", "webrtc", "rtc"] {
        assert!(found.iter().any(|f| f == name), "{name} not in {found:?}");
    }
}
