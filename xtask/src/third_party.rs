//! `cargo xtask third-party`: writes `docs/THIRD_PARTY.md`, the list of every third-party
//! package in `Cargo.lock` with its version and licence, and the purpose of the direct ones.
//!
//! Everything comes from `cargo metadata --locked` (all platforms, so the file is the same on
//! every host). The output is deterministic: sorted, no timestamps, no paths. `--check`
//! (and the tidy test `third_party_md_is_current`) fail when the file on disk is stale.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::Result;

/// The generated file, relative to the workspace root.
pub(crate) const OUTPUT: &str = "docs/THIRD_PARTY.md";

/// Longest purpose text kept in the direct-dependency table, in characters.
const PURPOSE_MAX_CHARS: usize = 120;

/// `cargo xtask third-party [--check]`.
pub(crate) fn command(args: &[String]) -> Result<()> {
    let check = match args {
        [] => false,
        [flag] if flag == "--check" => true,
        _ => return Err(format!("usage: cargo xtask third-party [--check], got {args:?}")),
    };
    let root = crate::workspace_root();
    let rendered = render(&root)?;
    let path = root.join(OUTPUT);
    if check {
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        if on_disk != rendered {
            return Err(format!("{OUTPUT} is stale; run `cargo xtask third-party`"));
        }
        eprintln!("xtask: {OUTPUT} is current");
        return Ok(());
    }
    std::fs::write(&path, rendered)
        .map_err(|err| format!("cannot write {}: {err}", path.display()))?;
    eprintln!("xtask: wrote {OUTPUT}");
    Ok(())
}

/// Runs `cargo metadata` in the workspace `root` and renders `docs/THIRD_PARTY.md`.
pub(crate) fn render(root: &Path) -> Result<String> {
    render_metadata(&metadata(root)?)
}

fn metadata(root: &Path) -> Result<Value> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["metadata", "--format-version", "1", "--locked"]).current_dir(root);
    let output = cmd.output().map_err(|err| format!("cannot run {cmd:?}: {err}"))?;
    if !output.status.success() {
        return Err(format!(
            "{cmd:?} failed: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    serde_json::from_slice(&output.stdout)
        .map_err(|err| format!("cannot parse the output of cargo metadata: {err}"))
}

/// One package of the metadata, the fields the document shows.
struct Package<'a> {
    name: &'a str,
    version: &'a str,
    license: String,
    description: &'a str,
}

impl Package<'_> {
    /// Name, then version in semver order (0.9 before 0.10), for a stable listing.
    fn sort_key(&self) -> (&str, (u64, u64, u64, bool, &str), &str) {
        (self.name, version_key(self.version), self.version)
    }
}

fn str_field<'a>(value: &'a Value, key: &str) -> Result<&'a str> {
    value
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("cargo metadata: no string {key:?}"))
}

fn array_field<'a>(value: &'a Value, key: &str) -> Result<&'a Vec<Value>> {
    value
        .get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("cargo metadata: no array {key:?}"))
}

fn package(value: &Value) -> Result<Package<'_>> {
    let license = match value.get("license").and_then(Value::as_str) {
        Some(license) if !license.trim().is_empty() => license.trim().to_owned(),
        // A licence file only: its name (the path may be absolute, and would differ per host).
        _ => match value.get("license_file").and_then(Value::as_str) {
            Some(file) => format!(
                "see {}",
                Path::new(file).file_name().map_or(file.into(), |name| name.to_string_lossy())
            ),
            None => "unknown".to_owned(),
        },
    };
    Ok(Package {
        name: str_field(value, "name")?,
        version: str_field(value, "version")?,
        license,
        description: value.get("description").and_then(Value::as_str).unwrap_or(""),
    })
}

fn render_metadata(metadata: &Value) -> Result<String> {
    let members: BTreeSet<&str> =
        array_field(metadata, "workspace_members")?.iter().filter_map(Value::as_str).collect();
    let mut packages: HashMap<&str, &Value> = HashMap::new();
    for value in array_field(metadata, "packages")? {
        packages.insert(str_field(value, "id")?, value);
    }
    let member_name = |id: &str| -> Result<&str> {
        packages.get(id).map_or_else(|| Err(format!("no package {id}")), |p| str_field(p, "name"))
    };

    // Direct dependencies, from the resolved graph: the exact package each edge resolved to.
    // Package id -> (kinds, workspace crates using it).
    let mut direct: BTreeMap<&str, (BTreeSet<&str>, BTreeSet<&str>)> = BTreeMap::new();
    let resolve = metadata
        .get("resolve")
        .filter(|resolve| !resolve.is_null())
        .ok_or("cargo metadata: no resolved dependency graph")?;
    for node in array_field(resolve, "nodes")? {
        let id = str_field(node, "id")?;
        if !members.contains(id) {
            continue;
        }
        let user = member_name(id)?;
        for dep in array_field(node, "deps")? {
            let pkg = str_field(dep, "pkg")?;
            if members.contains(pkg) {
                continue;
            }
            let entry = direct.entry(pkg).or_default();
            entry.1.insert(user);
            for kind in array_field(dep, "dep_kinds")? {
                entry.0.insert(kind.get("kind").and_then(Value::as_str).unwrap_or("normal"));
            }
        }
    }

    let mut direct_rows = Vec::new();
    for (id, (kinds, users)) in &direct {
        let value = packages.get(id).ok_or_else(|| format!("cargo metadata: no package {id}"))?;
        direct_rows.push((package(value)?, kinds, users));
    }
    direct_rows.sort_by(|a, b| a.0.sort_key().cmp(&b.0.sort_key()));

    let mut all = Vec::new();
    for (id, value) in &packages {
        if !members.contains(id) {
            all.push(package(value)?);
        }
    }
    all.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));

    let mut by_license: BTreeMap<&str, usize> = BTreeMap::new();
    for package in &all {
        *by_license.entry(package.license.as_str()).or_default() += 1;
    }
    let mut by_license: Vec<_> = by_license.into_iter().collect();
    by_license.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));

    let mut out = String::new();
    // Writing to a String cannot fail; the results are ignored.
    let _ = writeln!(
        out,
        "# Third-party dependencies

Generated by `cargo xtask third-party` from `cargo metadata --locked`; do not edit by hand.
`cargo xtask third-party --check` (run by the tidy test `third_party_md_is_current`, part of
`cargo xtask test`) fails when this file is stale. Licences are the packages' own `license`
fields, as published; the list covers every platform in `Cargo.lock`, not only Linux.

## Direct dependencies

{} packages that a workspace crate depends on directly. Purpose: the package's own description.

| Package | Version | Licence | Kind | Used by | Purpose |
|---|---|---|---|---|---|",
        direct_rows.len()
    );
    for (package, kinds, users) in &direct_rows {
        // Normal, dev, build: the order of a manifest's sections.
        const ORDER: [&str; 3] = ["normal", "dev", "build"];
        let kinds: Vec<&str> = ORDER
            .into_iter()
            .filter(|kind| kinds.contains(kind))
            .chain(kinds.iter().copied().filter(|kind| !ORDER.contains(kind)))
            .collect();
        let users: Vec<&str> = users.iter().copied().collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            cell(package.name),
            cell(package.version),
            cell(&package.license),
            kinds.join(", "),
            cell(&users.join(", ")),
            cell(&purpose(package.description)),
        );
    }
    let _ = writeln!(
        out,
        "
## All dependencies

{} third-party packages in `Cargo.lock`, direct and transitive.

| Licence | Packages |
|---|---|",
        all.len()
    );
    for (license, count) in &by_license {
        let _ = writeln!(out, "| {} | {count} |", cell(license));
    }
    let _ = writeln!(
        out,
        "
| Package | Version | Licence |
|---|---|---|"
    );
    for package in &all {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            cell(package.name),
            cell(package.version),
            cell(&package.license)
        );
    }
    Ok(out)
}

/// `major.minor.patch`, release after its pre-releases, for sorting (build metadata ignored).
fn version_key(version: &str) -> (u64, u64, u64, bool, &str) {
    let version = version.split_once('+').map_or(version, |(v, _)| v);
    let (core, pre) = version.split_once('-').unwrap_or((version, ""));
    let mut parts = core.split('.').map(|part| part.parse::<u64>().unwrap_or(0));
    let mut next = || parts.next().unwrap_or(0);
    (next(), next(), next(), pre.is_empty(), pre)
}

/// The first paragraph of a description on one line, cut at a word near the limit.
fn purpose(description: &str) -> String {
    let paragraph = description.trim().split("\n\n").next().unwrap_or("");
    let words: Vec<&str> = paragraph.split_whitespace().collect();
    let mut text = String::new();
    for word in &words {
        let len = text.chars().count() + usize::from(!text.is_empty()) + word.chars().count();
        if len > PURPOSE_MAX_CHARS {
            if text.is_empty() {
                text = word.chars().take(PURPOSE_MAX_CHARS).collect();
            }
            // A cut inside a code span would leave it open to the end of the table.
            if text.matches('`').count() % 2 == 1 {
                text.push('`');
            }
            text.push('…');
            return text;
        }
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(word);
    }
    text
}

/// Text for a table cell: `|` escaped (GitHub tables split on it, even in code spans), and
/// outside code spans `<`, `>` and `&` as entities so `Cell<T>` is not read as HTML.
fn cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_code = false;
    for ch in text.chars() {
        match ch {
            '`' => {
                in_code = !in_code;
                out.push(ch);
            }
            '|' => out.push_str("\\|"),
            '<' if !in_code => out.push_str("&lt;"),
            '>' if !in_code => out.push_str("&gt;"),
            '&' if !in_code => out.push_str("&amp;"),
            _ => out.push(ch),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{cell, purpose, version_key};

    #[test]
    fn purpose_is_one_short_line() {
        assert_eq!(purpose("  A crate\n  for   things.\n\nMore text."), "A crate for things.");
        let long = "word ".repeat(40);
        let cut = purpose(&long);
        assert!(cut.chars().count() <= 121 && cut.ends_with('…'), "{cut}");
        assert_eq!(purpose(&format!("{} `code span`", "x".repeat(110))).matches('`').count(), 2);
    }

    #[test]
    fn cells_escape_tables_and_html() {
        assert_eq!(cell("A Cell<Option<T>> | b"), "A Cell&lt;Option&lt;T&gt;&gt; \\| b");
        assert_eq!(cell("`NonNull<T>` & co"), "`NonNull<T>` &amp; co");
    }

    #[test]
    fn versions_sort_semantically() {
        assert!(version_key("0.9.0") < version_key("0.10.0"));
        assert!(version_key("1.0.0-rc.1") < version_key("1.0.0"));
        assert!(version_key("1.0.4+wasi-0.2.12") > version_key("1.0.3"));
    }
}
