//! The workspace's crates, as `cargo metadata` describes them: which to test, package and
//! build with which toolchain, so a new crate is checked as soon as it is a workspace member.

use serde_json::Value;

use crate::cargo;

/// One workspace member.
pub(crate) struct Package {
    pub(crate) name: String,
    /// Has a library target, so doctests.
    pub(crate) lib: bool,
    /// Not `publish = false`: `cargo package` must accept it.
    pub(crate) publish: bool,
    /// Declares features besides `default`: tested once more with all of them.
    pub(crate) features: bool,
    /// The `rust-version` it promises, if any.
    pub(crate) rust_version: Option<String>,
}

/// The workspace members, in `cargo metadata`'s order (sorted by name).
pub(crate) fn packages() -> Result<Vec<Package>, String> {
    let out = cargo(&["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .map_err(|e| format!("could not run cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let metadata: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("cargo metadata printed bad JSON: {e}"))?;
    parse(&metadata)
}

fn parse(metadata: &Value) -> Result<Vec<Package>, String> {
    let packages = metadata
        .get("packages")
        .and_then(Value::as_array)
        .ok_or("cargo metadata has no packages")?;
    let mut out = Vec::with_capacity(packages.len());
    for package in packages {
        let name = package
            .get("name")
            .and_then(Value::as_str)
            .ok_or("a package without a name")?
            .to_string();
        let lib = package
            .get("targets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|target| target.get("kind").and_then(Value::as_array))
            .flatten()
            .any(|kind| matches!(kind.as_str(), Some("lib" | "rlib" | "proc-macro")));
        // `null`: any registry; a list: those registries (`publish = false` is the empty list).
        let publish = match package.get("publish") {
            None | Some(Value::Null) => true,
            Some(Value::Array(registries)) => !registries.is_empty(),
            Some(other) => return Err(format!("{name}: unexpected publish {other}")),
        };
        let features = package
            .get("features")
            .and_then(Value::as_object)
            .is_some_and(|features| features.keys().any(|f| f != "default"));
        let rust_version = package
            .get("rust_version")
            .and_then(Value::as_str)
            .map(str::to_string);
        out.push(Package {
            name,
            lib,
            publish,
            features,
            rust_version,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_what_each_step_needs() {
        let metadata = json!({"packages": [
            {"name": "lib-a", "publish": null, "rust_version": "1.90",
             "features": {"default": [], "testkit": []},
             "targets": [{"kind": ["lib"]}, {"kind": ["test"]}]},
            {"name": "bench", "publish": [], "rust_version": null, "features": {},
             "targets": [{"kind": ["lib"]}]},
            {"name": "tool", "publish": [], "features": {"default": []},
             "targets": [{"kind": ["bin"]}]},
        ]});
        let packages = parse(&metadata).unwrap();
        let names: Vec<&str> = packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["bench", "lib-a", "tool"]);
        let [bench, lib_a, tool] = packages.as_slice() else {
            panic!("three packages")
        };
        assert!(lib_a.lib && lib_a.publish && lib_a.features);
        assert_eq!(lib_a.rust_version.as_deref(), Some("1.90"));
        assert!(bench.lib && !bench.publish && !bench.features && bench.rust_version.is_none());
        assert!(!tool.lib && !tool.publish && !tool.features);
    }
}
