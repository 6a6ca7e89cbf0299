//! Installing what the tasks need, each step skipped when already done: Debian packages via
//! apt-get (as root, or through sudo), and the Python virtual environment for interop checks.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian packages the test suite needs.
pub const TEST_PACKAGES: &[&str] = &["libgdal-dev", "gdal-bin", "pkg-config"];

/// Debian packages the demo needs.
pub const DEMO_PACKAGES: &[&str] = &["libgdal-dev", "gdal-bin", "pkg-config"];

/// Crates checked with `--no-default-features` (plus the features named) in the test suite,
/// so their optional parts stay optional.
pub const FEATURE_CHECKS: &[(&str, &str)] = &[
    ("ee-tensor-proto", ""),
    ("ee-predict-client", ""),
    ("ee-serve", ""),
    // The demo's build: the embedded runtime without the serving node and gRPC.
    ("ee-model", ""),
];

/// `cargo check --no-default-features` of every crate of [`FEATURE_CHECKS`] in one invocation
/// (`-p a -p b --features a/x`): one feature resolution, so the dependencies they share are
/// checked once instead of once per crate. With resolver 2, `--no-default-features` applies to
/// every selected package, so `grpc` stays off in all three, also where one of them would turn
/// it on in another (`ee-predict-client`'s `grpc` turns on `ee-tensor-proto/grpc`): an
/// unconditional `use tonic` in any one of them fails the check. Features named in
/// [`FEATURE_CHECKS`], and those of third-party dependencies, are unified across the crates as
/// in any one build.
pub fn feature_check(mut cargo: Command) -> Command {
    cargo.args(["check", "--quiet", "--no-default-features"]);
    for (krate, features) in FEATURE_CHECKS {
        cargo.args(["-p", krate]);
        for feature in features.split([' ', ',']).filter(|f| !f.is_empty()) {
            cargo.arg("--features").arg(format!("{krate}/{feature}"));
        }
    }
    cargo
}

/// Whether `git status` shows no changes under `root`.
pub fn tree_is_clean(root: &Path) -> bool {
    Command::new("git")
        .args(["status", "--porcelain"])
        .current_dir(root)
        .output()
        .map(|o| o.status.success() && o.stdout.is_empty())
        .unwrap_or(false)
}

/// Every `(package, example)` of the workspace: the `examples/*.rs` files of each member.
pub fn examples(root: &Path) -> Result<Vec<(String, String)>, String> {
    let mut found = Vec::new();
    let entries =
        std::fs::read_dir(root).map_err(|e| format!("reading {}: {e}", root.display()))?;
    let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    dirs.sort();
    for dir in dirs {
        let (manifest, examples) = (dir.join("Cargo.toml"), dir.join("examples"));
        let (Ok(text), Ok(files)) = (
            std::fs::read_to_string(&manifest),
            std::fs::read_dir(&examples),
        ) else {
            continue;
        };
        let package = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("name = "))
            .map(|n| n.trim_matches('"').to_string())
            .ok_or_else(|| format!("{} has no package name", manifest.display()))?;
        let mut names: Vec<String> = files
            .flatten()
            .filter_map(|f| {
                let p = f.path();
                (p.extension()? == "rs").then(|| p.file_stem()?.to_str().map(str::to_string))?
            })
            .collect();
        names.sort();
        found.extend(names.into_iter().map(|n| (package.clone(), n)));
    }
    Ok(found)
}

/// Where things are.
pub struct Env {
    /// The workspace root.
    pub root: PathBuf,
}

/// Runs a command, turning a failure into a message naming `what`.
pub fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let status = cmd
        .status()
        .map_err(|e| format!("{what}: could not start {:?}: {e}", cmd.get_program()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

impl Env {
    /// Finds the workspace root from the xtask crate's location.
    pub fn discover() -> Result<Self, String> {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = manifest
            .parent()
            .ok_or("xtask has no parent folder")?
            .to_path_buf();
        Ok(Env { root })
    }

    /// The cargo that runs this task.
    pub fn cargo(&self) -> Command {
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
    }

    /// Builds binary `bin` of `package` in release and returns its path (under
    /// `CARGO_TARGET_DIR` when set).
    pub fn build_release(&self, package: &str, bin: &str) -> Result<PathBuf, String> {
        run(
            self.cargo()
                .args(["build", "--release", "--quiet", "-p", package, "--bin", bin])
                .current_dir(&self.root),
            &format!("cargo build --release -p {package} --bin {bin}"),
        )?;
        Ok(self.target_dir().join("release").join(bin))
    }

    /// Cargo's target directory: `CARGO_TARGET_DIR` when set, else `target/` at the root.
    pub fn target_dir(&self) -> PathBuf {
        std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| self.root.join("target"))
    }

    /// Installs the Debian packages not already installed.
    pub fn ensure_system_packages(&self, packages: &[&str]) -> Result<(), String> {
        let missing: Vec<&str> = packages
            .iter()
            .copied()
            .filter(|p| !is_installed(p))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        println!("xtask: installing Debian packages: {}", missing.join(" "));
        apt(&["update", "-qq"])?;
        let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
        args.extend(&missing);
        apt(&args)
    }

    /// Creates `target/py` with the pinned interop requirements, unless it is up to date.
    /// Returns the virtual environment's python.
    pub fn ensure_venv(&self) -> Result<PathBuf, String> {
        let venv = self.root.join("target/py");
        let python = venv.join("bin/python");
        let requirements = self.root.join("xtask/python-requirements.txt");
        let nodeps = self.root.join("xtask/python-requirements-nodeps.txt");
        let mut wanted = String::new();
        for file in [&requirements, &nodeps] {
            wanted += &std::fs::read_to_string(file)
                .map_err(|e| format!("reading {}: {e}", file.display()))?;
        }
        let stamp = venv.join(".requirements-installed");
        if python.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(&wanted) {
            return Ok(python);
        }
        if !python.exists() {
            if !succeeds(Command::new("python3").args(["-m", "venv", "--help"])) {
                self.ensure_system_packages(&["python3-venv"])?;
            }
            println!(
                "xtask: creating the interop virtual environment in {}",
                venv.display()
            );
            run(
                Command::new("python3").arg("-m").arg("venv").arg(&venv),
                "python3 -m venv",
            )?;
        }
        println!("xtask: installing Python packages for interop checks (first run only)");
        run(
            Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "-r",
                ])
                .arg(&requirements),
            "pip install",
        )?;
        run(
            Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--no-deps",
                    "-r",
                ])
                .arg(&nodeps),
            "pip install --no-deps",
        )?;
        std::fs::write(&stamp, wanted).map_err(|e| format!("writing {}: {e}", stamp.display()))?;
        Ok(python)
    }
}

fn is_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

fn apt(args: &[&str]) -> Result<(), String> {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let mut cmd = if root {
        Command::new("apt-get")
    } else {
        let mut c = Command::new("sudo");
        c.arg("apt-get");
        c
    };
    cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
    run(
        &mut cmd,
        &format!("apt-get {}", args.first().unwrap_or(&"")),
    )
}

/// Counts of tests run, summed over cargo's `test result:` lines.
#[derive(Default)]
pub struct Tally {
    /// Tests that passed.
    pub passed: u64,
    /// Tests that failed.
    pub failed: u64,
}

impl Tally {
    /// Runs a `cargo test` command, echoing its output and adding up its results.
    pub fn run(&mut self, cmd: &mut Command, what: &str) -> Result<(), String> {
        use std::io::{BufRead, BufReader};
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("{what}: could not start: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(|e| format!("{what}: reading output: {e}"))?;
            println!("{line}");
            if let Some(rest) = line.strip_prefix("test result: ") {
                self.passed += count(rest, " passed");
                self.failed += count(rest, " failed");
            }
        }
        let status = child.wait().map_err(|e| format!("{what}: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("{what} failed ({status})"))
        }
    }
}

/// The number before `label` in a `test result:` line (`ok. 39 passed; 0 failed; ...`).
fn count(line: &str, label: &str) -> u64 {
    line.split(';')
        .find_map(|part| {
            part.trim()
                .trim_start_matches("ok. ")
                .trim_start_matches("FAILED. ")
                .strip_suffix(label.trim())
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}
