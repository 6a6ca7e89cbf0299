//! `cargo xtask release [--dry-run] [--allow-dirty] VERSION`: checks the tree is clean, bumps
//! every crate of the workspace to VERSION, turns the `## Unreleased` section of `CHANGELOG.md`
//! (which the developer writes) into `## VERSION - DATE`, runs `cargo package` (with
//! verification) for every publishable crate in dependency order, then commits and tags
//! `vVERSION`. The dry run stops after packaging and puts every file it changed back as it was.
//! Publishing (`cargo publish`, in the printed order) stays a deliberate step of its own.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::setup::{run, Env};

const USAGE: &str = "usage: cargo xtask release [--dry-run] [--allow-dirty] [--no-verify] VERSION";

/// `release` as parsed from the command line.
struct Options {
    version: Version,
    dry_run: bool,
    allow_dirty: bool,
    /// Package without building each package from its `.crate` (dry runs only).
    no_verify: bool,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let (mut dry_run, mut allow_dirty, mut no_verify, mut version) = (false, false, false, None);
    for arg in args {
        match arg.as_str() {
            "--dry-run" => dry_run = true,
            "--allow-dirty" => allow_dirty = true,
            "--no-verify" => no_verify = true,
            a if a.starts_with('-') => return Err(format!("unknown flag {a:?}\n{USAGE}")),
            a if version.is_none() => version = Some(Version::parse(a)?),
            a => return Err(format!("unexpected argument {a:?}\n{USAGE}")),
        }
    }
    let version = version.ok_or_else(|| format!("no VERSION given\n{USAGE}"))?;
    Ok(Options {
        version,
        dry_run,
        allow_dirty,
        no_verify,
    })
}

/// A semantic version `MAJOR.MINOR.PATCH[-PRE]` (build metadata is not accepted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    core: [u64; 3],
    pre: Option<String>,
}

impl Version {
    /// Parses `1.2.3` or `1.2.3-rc.1`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a version like 1.2.3 or 1.2.3-rc.1");
        let (core, pre) = match s.split_once('-') {
            Some((c, p)) => (c, Some(p)),
            None => (s, None),
        };
        let parts: Vec<&str> = core.split('.').collect();
        if parts.len() != 3 {
            return Err(bad());
        }
        let mut nums = [0u64; 3];
        for (n, p) in nums.iter_mut().zip(&parts) {
            let leading_zero = p.len() > 1 && p.starts_with('0');
            if p.is_empty() || leading_zero || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            *n = p.parse().map_err(|_| bad())?;
        }
        if let Some(p) = pre {
            let ok = p.split('.').all(|id| {
                !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
            if !ok {
                return Err(bad());
            }
        }
        Ok(Version {
            core: nums,
            pre: pre.map(str::to_string),
        })
    }

    /// Whether `self` sorts before `other` (pre-releases before their release; pre-release
    /// identifiers compared as text, which is enough for rc.N with single digits).
    fn before(&self, other: &Version) -> bool {
        match self.core.cmp(&other.core) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Greater => false,
            std::cmp::Ordering::Equal => match (&self.pre, &other.pre) {
                (Some(_), None) => true,
                (Some(a), Some(b)) => a < b,
                _ => false,
            },
        }
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [a, b, c] = self.core;
        write!(f, "{a}.{b}.{c}")?;
        if let Some(p) = &self.pre {
            write!(f, "-{p}")?;
        }
        Ok(())
    }
}

/// Files the release rewrites, with their contents before; the dry run (or a failure before
/// the commit) writes them back when dropped.
struct Restore {
    files: Vec<(PathBuf, Vec<u8>)>,
    armed: bool,
}

impl Restore {
    fn save(&mut self, path: &Path) -> Result<(), String> {
        let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        self.files.push((path.to_path_buf(), bytes));
        Ok(())
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        for (path, bytes) in &self.files {
            if let Err(e) = std::fs::write(path, bytes) {
                eprintln!("xtask release: could not restore {}: {e}", path.display());
            }
        }
    }
}

/// `cargo xtask release ...`.
pub fn release(args: &[String]) -> Result<(), String> {
    let opts = parse_args(args)?;
    let env = Env::discover()?;
    let root = env.root.clone();
    let version = opts.version.to_string();
    let tag = format!("v{version}");

    // 1. A clean tree, and a version not released yet.
    if opts.allow_dirty && !opts.dry_run {
        return Err(
            "--allow-dirty is only for --dry-run: a release is made from a clean tree".into(),
        );
    }
    if opts.no_verify && !opts.dry_run {
        return Err("--no-verify is only for --dry-run: a release verifies every package".into());
    }
    let dirty = git_output(&root, &["status", "--porcelain"])?;
    if !dirty.trim().is_empty() {
        if opts.allow_dirty {
            println!("xtask release: the tree has uncommitted changes (--allow-dirty)");
        } else {
            return Err(format!(
                "the working tree is not clean; commit or stash first (or --allow-dirty with --dry-run):\n{dirty}"
            ));
        }
    }
    if !git_output(&root, &["tag", "--list", &tag])?
        .trim()
        .is_empty()
    {
        return Err(format!("tag {tag} already exists"));
    }
    let manifest_path = root.join("Cargo.toml");
    let manifest = read(&manifest_path)?;
    let current = Version::parse(&workspace_version(&manifest)?)?;
    if opts.version.before(&current) {
        return Err(format!(
            "{version} is older than the workspace's version {current}"
        ));
    }

    // 2. The changelog section the developer wrote.
    let changelog_path = root.join("CHANGELOG.md");
    let changelog = read(&changelog_path)?;
    let date = today(&root)?;
    let new_changelog = release_changelog(&changelog, &version, &date)?;

    // 3. Bump, changelog, lockfile.
    let mut restore = Restore {
        files: Vec::new(),
        armed: true,
    };
    let lock_path = root.join("Cargo.lock");
    for path in [&manifest_path, &changelog_path, &lock_path] {
        restore.save(path)?;
    }
    let bumped = bump_manifest(&manifest, &version)?;
    write(&manifest_path, &bumped)?;
    write(&changelog_path, &new_changelog)?;
    println!(
        "xtask release: workspace {current} -> {version}; CHANGELOG.md section {version} - {date}"
    );
    run(
        env.cargo()
            .args(["update", "--workspace", "--quiet"])
            .current_dir(&root),
        "cargo update --workspace (the lockfile's own versions)",
    )?;

    // 4. Package every publishable crate, in dependency order.
    let order = publish_order(&root)?;
    println!("xtask release: packaging {}", order.join(" -> "));
    let mut package = env.cargo();
    package.arg("package").current_dir(&root);
    // The root manifest's dev profile, so verification reuses the workspace's build.
    for config in [
        "profile.dev.debug=\"line-tables-only\"",
        "profile.dev.package.\"*\".opt-level=2",
        "profile.dev.package.\"*\".debug=false",
    ] {
        package.args(["--config", config]);
    }
    for krate in &order {
        package.args(["-p", krate]);
    }
    // The tree was clean (or --allow-dirty was asked for): the bump and the changelog are the
    // changes cargo would otherwise refuse, and they are what is released.
    package.arg("--allow-dirty");
    if opts.no_verify {
        package.arg("--no-verify");
    }
    run(&mut package, "cargo package")?;
    let target = env.target_dir();
    for krate in &order {
        let crate_file = target
            .join("package")
            .join(format!("{krate}-{version}.crate"));
        if !crate_file.exists() {
            return Err(format!("cargo package wrote no {}", crate_file.display()));
        }
    }

    if opts.dry_run {
        println!(
            "xtask release --dry-run: {} crates packaged{} at {version}; the tree is put back as it was, nothing committed or tagged",
            order.len(),
            if opts.no_verify { " (not verified)" } else { " and verified" }
        );
        return Ok(());
    }

    // 5. Commit and tag.
    run(
        Command::new("git")
            .args(["commit", "--quiet", "-m", &format!("Release {version}")])
            .arg(&manifest_path)
            .arg(&changelog_path)
            .arg(&lock_path)
            .current_dir(&root),
        "git commit",
    )?;
    restore.armed = false;
    run(
        Command::new("git")
            .args(["tag", "-a", &tag, "-m", &format!("Release {version}")])
            .current_dir(&root),
        "git tag",
    )?;
    println!(
        "xtask release: committed and tagged {tag}. To publish, in this order:\n{}\nthen `git push --follow-tags`.",
        order
            .iter()
            .map(|c| format!("  cargo publish -p {c}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    Ok(())
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}

fn git_output(root: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(root)
        .output()
        .map_err(|e| format!("could not run git: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Today's date as YYYY-MM-DD (from `date`, so xtask stays free of dependencies).
fn today(root: &Path) -> Result<String, String> {
    let out = Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .current_dir(root)
        .output()
        .map_err(|e| format!("could not run date: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The `[workspace.package]` version of the root manifest.
fn workspace_version(manifest: &str) -> Result<String, String> {
    manifest_value(manifest, "[workspace.package]", "version")
        .ok_or_else(|| "the root Cargo.toml has no [workspace.package] version".into())
}

/// The string value of `key` in `section` of a manifest (`key = "value"` lines only).
fn manifest_value(manifest: &str, section: &str, key: &str) -> Option<String> {
    let mut current = "";
    for line in manifest.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            current = t;
        } else if current == section {
            let value = t
                .strip_prefix(key)
                .and_then(|r| r.trim_start().strip_prefix('='));
            if let Some(v) = value {
                return Some(v.trim().trim_matches('"').to_string());
            }
        }
    }
    None
}

/// The root manifest with `[workspace.package] version` and the `version` of every path
/// dependency in `[workspace.dependencies]` set to `version`.
fn bump_manifest(manifest: &str, version: &str) -> Result<String, String> {
    let mut section = String::new();
    let (mut package_done, mut deps) = (false, 0usize);
    let mut out = String::with_capacity(manifest.len());
    for line in manifest.lines() {
        let t = line.trim();
        let mut line = line.to_string();
        if t.starts_with('[') {
            section = t.to_string();
        } else if section == "[workspace.package]" && t.starts_with("version = ") {
            line = format!("version = \"{version}\"");
            package_done = true;
        } else if section == "[workspace.dependencies]" && t.contains("path = ") {
            if let Some(start) = line.find("version = \"") {
                let value = start + "version = \"".len();
                let end = line[value..]
                    .find('"')
                    .map(|e| value + e)
                    .ok_or_else(|| format!("unterminated version in {t:?}"))?;
                line.replace_range(value..end, version);
                deps += 1;
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    if !package_done {
        return Err("the root Cargo.toml has no [workspace.package] version".into());
    }
    if deps == 0 {
        return Err("no versioned path dependencies in [workspace.dependencies]".into());
    }
    Ok(out)
}

/// The changelog with its `## Unreleased` section renamed `## VERSION - DATE` under a new,
/// empty `## Unreleased`. The section must say something.
fn release_changelog(changelog: &str, version: &str, date: &str) -> Result<String, String> {
    let lines: Vec<&str> = changelog.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim() == "## Unreleased")
        .ok_or(
            "CHANGELOG.md has no `## Unreleased` section: write what this release brings there",
        )?;
    if lines.iter().any(|l| {
        l.trim_start().starts_with(&format!("## {version} ")) || l.trim() == format!("## {version}")
    }) {
        return Err(format!("CHANGELOG.md already has a section for {version}"));
    }
    let end = lines[start + 1..]
        .iter()
        .position(|l| l.starts_with("## "))
        .map(|i| start + 1 + i)
        .unwrap_or(lines.len());
    let body_has_text = lines[start + 1..end].iter().any(|l| !l.trim().is_empty());
    if !body_has_text {
        return Err(
            "the `## Unreleased` section of CHANGELOG.md is empty: write what this release brings"
                .into(),
        );
    }
    let mut out: Vec<String> = lines[..start].iter().map(|s| s.to_string()).collect();
    out.push("## Unreleased".into());
    out.push(String::new());
    out.push(format!("## {version} - {date}"));
    out.extend(lines[start + 1..].iter().map(|s| s.to_string()));
    Ok(out.join("\n") + "\n")
}

/// The workspace's publishable crates (members without `publish = false`), each after the
/// workspace crates it depends on.
fn publish_order(root: &Path) -> Result<Vec<String>, String> {
    let manifest = read(&root.join("Cargo.toml"))?;
    let members = workspace_members(&manifest);
    // name -> (publishable, workspace crates it depends on)
    let mut crates: BTreeMap<String, (bool, BTreeSet<String>)> = BTreeMap::new();
    let mut manifests = Vec::new();
    for member in &members {
        let text = read(&root.join(member).join("Cargo.toml"))?;
        manifests.push(text);
    }
    let names: BTreeSet<String> = manifests.iter().filter_map(|m| package_name(m)).collect();
    for text in &manifests {
        let name = package_name(text).ok_or("a member manifest without a package name")?;
        let publishable = !text.lines().any(|l| l.trim() == "publish = false");
        let mut deps = BTreeSet::new();
        let mut section = "";
        for line in text.lines() {
            let t = line.trim();
            if t.starts_with('[') {
                section = t;
            } else if section == "[dependencies]" || section == "[build-dependencies]" {
                let dep = t.split(['=', '.', ' ']).next().unwrap_or("");
                if names.contains(dep) {
                    deps.insert(dep.to_string());
                }
            }
        }
        crates.insert(name, (publishable, deps));
    }
    let mut order: Vec<String> = Vec::new();
    let mut placed = BTreeSet::new();
    while placed.len() < crates.len() {
        let ready: Vec<String> = crates
            .iter()
            .filter(|(n, (_, deps))| {
                !placed.contains(*n) && deps.iter().all(|d| placed.contains(d))
            })
            .map(|(n, _)| n.clone())
            .collect();
        if ready.is_empty() {
            return Err("the workspace's crates depend on each other in a cycle".into());
        }
        for n in ready {
            let (publishable, deps) = &crates[&n];
            if *publishable {
                if let Some(d) = deps.iter().find(|d| !crates[*d].0) {
                    return Err(format!(
                        "{n} is published but depends on the unpublished {d}"
                    ));
                }
                order.push(n.clone());
            }
            placed.insert(n);
        }
    }
    Ok(order)
}

/// The `members` of the root manifest's `[workspace]`.
fn workspace_members(manifest: &str) -> Vec<String> {
    let Some(start) = manifest.find("members = [") else {
        return Vec::new();
    };
    let rest = &manifest[start + "members = [".len()..];
    let list = &rest[..rest.find(']').unwrap_or(rest.len())];
    list.split(',')
        .map(|m| m.trim().trim_matches('"').to_string())
        .filter(|m| !m.is_empty())
        .collect()
}

/// The `[package] name` of a manifest.
fn package_name(manifest: &str) -> Option<String> {
    manifest_value(manifest, "[package]", "name")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_order() {
        let v = |s| Version::parse(s).unwrap();
        assert_eq!(v("1.2.3").to_string(), "1.2.3");
        assert_eq!(v("0.1.0-rc.1").to_string(), "0.1.0-rc.1");
        for bad in [
            "1.2",
            "1.2.3.4",
            "01.2.3",
            "a.b.c",
            "1.2.3-",
            "1.2.3-rc..1",
            "",
        ] {
            assert!(Version::parse(bad).is_err(), "{bad}");
        }
        assert!(v("0.1.0").before(&v("0.2.0")));
        assert!(v("0.1.0-rc.1").before(&v("0.1.0")));
        assert!(!v("0.1.0").before(&v("0.1.0")));
        assert!(!v("1.0.0").before(&v("0.9.9")));
    }

    #[test]
    fn bump_touches_package_and_path_dependency_versions_only() {
        let m = "[workspace.package]\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace.dependencies]\nee-a = { path = \"ee-a\", version = \"0.1.0\" }\nee-fuzz = { path = \"fuzz\" }\nserde = { version = \"1\" }\n";
        let b = bump_manifest(m, "0.2.0").unwrap();
        assert!(b.contains("[workspace.package]\nversion = \"0.2.0\"\n"));
        assert!(b.contains("ee-a = { path = \"ee-a\", version = \"0.2.0\" }"));
        assert!(b.contains("ee-fuzz = { path = \"fuzz\" }"));
        assert!(b.contains("serde = { version = \"1\" }"));
        assert_eq!(workspace_version(&b).unwrap(), "0.2.0");
    }

    #[test]
    fn changelog_section_is_renamed_under_a_new_unreleased() {
        let c = "# Changelog\n\n## Unreleased\n\n- Added x.\n\n## 0.0.1 - 2026-01-01\n\n- First.\n";
        let r = release_changelog(c, "0.1.0", "2026-11-21").unwrap();
        assert_eq!(
            r,
            "# Changelog\n\n## Unreleased\n\n## 0.1.0 - 2026-11-21\n\n- Added x.\n\n## 0.0.1 - 2026-01-01\n\n- First.\n"
        );
        assert!(
            release_changelog("# C\n\n## Unreleased\n\n## 0.0.1\n- a\n", "0.1.0", "d").is_err()
        );
        assert!(release_changelog("# C\n", "0.1.0", "d").is_err());
        assert!(release_changelog(c, "0.0.1", "d").is_err());
    }

    #[test]
    fn the_workspace_publishes_leaves_first() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let order = publish_order(root).unwrap();
        let at = |n: &str| {
            order
                .iter()
                .position(|c| c == n)
                .unwrap_or_else(|| panic!("{n} missing"))
        };
        assert!(at("ee-tensor-proto") < at("ee-tiling").max(at("ee-raster-io")));
        assert!(at("ee-raster-io") < at("ee-patches"));
        assert!(at("ee-runtime") < at("ee-serve"));
        assert_eq!(order.last().map(String::as_str), Some("ee-model"));
        for private in ["xtask", "ee-fuzzkit", "ee-benches", "ee-codegen"] {
            assert!(
                !order.iter().any(|c| c == private),
                "{private} is not published"
            );
        }
    }
}
