//! Manifests and the lockfile: which crates a package depends on, directly
//! and transitively, leaving out dev-dependencies (tests may use anything).

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::Path;

/// Reads and parses a TOML file.
pub fn read_toml(path: &Path) -> io::Result<toml::Table> {
    let text = std::fs::read_to_string(path)?;
    text.parse().map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })
}

/// The package name in a manifest (`[package] name`).
pub fn package_name(manifest: &toml::Table) -> Option<String> {
    manifest
        .get("package")?
        .get("name")?
        .as_str()
        .map(str::to_owned)
}

/// The crates a manifest depends on outside tests: `[dependencies]` and
/// `[build-dependencies]`, also under `[target.'cfg(…)']`. Renamed
/// dependencies (`package = "…"`) give the real crate name.
pub fn runtime_dependencies(manifest: &toml::Table) -> BTreeSet<String> {
    let mut tables: Vec<&toml::Table> = Vec::new();
    for key in ["dependencies", "build-dependencies"] {
        if let Some(t) = manifest.get(key).and_then(toml::Value::as_table) {
            tables.push(t);
        }
        if let Some(targets) = manifest.get("target").and_then(toml::Value::as_table) {
            tables.extend(
                targets
                    .values()
                    .filter_map(|t| t.get(key).and_then(toml::Value::as_table)),
            );
        }
    }
    let mut out = BTreeSet::new();
    for table in tables {
        for (key, value) in table {
            let real = value
                .get("package")
                .and_then(toml::Value::as_str)
                .unwrap_or(key);
            out.insert(real.to_owned());
        }
    }
    out
}

/// Every crate `root` pulls in outside tests, by name, per `Cargo.lock`.
/// For workspace members (`members`: name → manifest) only runtime
/// dependencies are followed, because the lockfile lists their
/// dev-dependencies too; registry crates never list theirs.
///
/// The lockfile resolves features for the whole workspace, so this is an
/// over-approximation: a crate that some other member enables through an
/// optional dependency is counted.
pub fn transitive_runtime_dependencies(
    lock: &toml::Table,
    members: &BTreeMap<String, toml::Table>,
    root: &str,
) -> BTreeSet<String> {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let packages = lock
        .get("package")
        .and_then(toml::Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for package in packages {
        let Some(name) = package.get("name").and_then(toml::Value::as_str) else {
            continue;
        };
        let deps = package
            .get("dependencies")
            .and_then(toml::Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(toml::Value::as_str)
            .filter_map(|d| d.split_whitespace().next())
            .map(str::to_owned);
        edges.entry(name.to_owned()).or_default().extend(deps);
    }
    let mut seen = BTreeSet::new();
    let mut stack = vec![root.to_owned()];
    while let Some(name) = stack.pop() {
        let Some(deps) = edges.get(&name) else {
            continue;
        };
        let allowed = members.get(&name).map(runtime_dependencies);
        for dep in deps {
            if allowed.as_ref().is_some_and(|a| !a.contains(dep)) {
                continue;
            }
            if seen.insert(dep.clone()) {
                stack.push(dep.clone());
            }
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_dependencies_of_members_are_not_followed() {
        let lock: toml::Table = r#"
            [[package]]
            name = "signer"
            dependencies = ["proto", "kit"]
            [[package]]
            name = "proto"
            dependencies = ["tokio 1.0.0"]
            [[package]]
            name = "kit"
            dependencies = ["hyper"]
            [[package]]
            name = "tokio"
            [[package]]
            name = "hyper"
        "#
        .parse()
        .expect("lock");
        let manifest: toml::Table = r#"
            [package]
            name = "signer"
            [dependencies]
            proto = { path = "../proto" }
            [dev-dependencies]
            kit = { path = "../kit" }
        "#
        .parse()
        .expect("manifest");
        let members = BTreeMap::from([("signer".to_owned(), manifest)]);
        let deps = transitive_runtime_dependencies(&lock, &members, "signer");
        assert_eq!(
            deps.into_iter().collect::<Vec<_>>(),
            vec!["proto".to_owned(), "tokio".to_owned()]
        );
    }

    #[test]
    fn renamed_and_target_dependencies() {
        let manifest: toml::Table = r#"
            [dependencies]
            web = { package = "reqwest", version = "0.12" }
            [target.'cfg(unix)'.build-dependencies]
            cc = "1"
        "#
        .parse()
        .expect("manifest");
        assert_eq!(
            runtime_dependencies(&manifest)
                .into_iter()
                .collect::<Vec<_>>(),
            vec!["cc".to_owned(), "reqwest".to_owned()]
        );
    }
}
