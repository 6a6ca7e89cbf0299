//! `cargo xtask`: the project's chores, in Rust with no dependencies so it builds on a machine
//! that has nothing installed yet.
//!
//! - `cargo xtask demo`: installs what the demo needs, then runs the main job on the embedded
//!   default.
//! - `cargo xtask test`: installs what the suite needs (Debian packages, the Python virtual
//!   environment for interop checks under `target/py`), then runs every test.

mod bench;
mod chaos;
mod memory;
mod release;
mod setup;

use std::process::ExitCode;

use setup::{run, Env};

const USAGE: &str = "usage: cargo xtask <demo|test|bench|chaos|memory|codegen|release>

  demo   install what is needed, then run the main job on the embedded default
  test   install what is needed, then run the whole test suite (Rust and interop checks)
  bench  run the benchmarks and write target/bench-report.md (--quick: shorter;
         --pipeline: only the Python comparison, target/bench-pipeline.md)
  chaos  faults (20% failing requests) and kill-and-resume against ee-model serve: tables
  memory peak RSS of ee-model predict on 10000^2 and 40000^2 rasters (--quick: smaller)
  codegen regenerate the checked-in protobuf code (--check: fail if it differs)
  release [--dry-run] [--allow-dirty] [--no-verify] VERSION
         bump the workspace to VERSION, date CHANGELOG.md's Unreleased section, cargo package
         every crate in dependency order (the dry run stops there and restores), commit, tag";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo(),
        Some("test") => test(&args[1..]),
        Some("bench") => bench::bench(&args[1..]),
        Some("chaos") => chaos::chaos(&args[1..]),
        Some("memory") => memory::memory(&args[1..]),
        Some("codegen") => codegen(&args[1..]),
        Some("release") => release::release(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown task {:?}\n{USAGE}", other.unwrap_or(""))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn demo() -> Result<(), String> {
    let env = Env::discover()?;
    env.ensure_system_packages(setup::DEMO_PACKAGES)?;
    let out = env.root.join("target/demo");
    std::fs::create_dir_all(&out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    let demo = env.root.join("ee-model/demo");
    let (water, water_png, scene_png) = (
        out.join("water.tif"),
        out.join("water.png"),
        out.join("scene.png"),
    );
    println!("xtask: predicting water on the sample scene with the embedded ONNX runtime");
    run(
        env.cargo()
            .args([
                // The embedded runtime alone: no serving node, no gRPC (`ee-model`'s default
                // features), dependencies unoptimised but for tract's kernels (the
                // `first-run` profile), so a first run compiles only what the demo runs, fast.
                "run",
                "--quiet",
                "-p",
                "ee-model",
                "--no-default-features",
                "--profile",
                "first-run",
                "--",
                "predict",
                "--spec",
            ])
            .arg(demo.join("water-spec.json"))
            .arg("--input")
            .arg(demo.join("scene.tif"))
            .arg("--output")
            .arg(&water)
            .arg("--quicklook")
            .arg(&water_png)
            .current_dir(&env.root),
        "the demo prediction",
    )?;
    // A false-colour view of the input (NIR, red, green) to compare with.
    run(
        std::process::Command::new("gdal_translate")
            .args([
                "-q", "-of", "PNG", "-ot", "Byte", "-b", "4", "-b", "3", "-b", "2", "-scale", "0",
                "4500", "0", "255",
            ])
            .arg(demo.join("scene.tif"))
            .arg(&scene_png),
        "gdal_translate of the scene preview",
    )?;
    let _ = std::fs::remove_file(out.join("scene.png.aux.xml"));
    println!(
        "\nThe demo scene ({}) is a 512 x 512, 10 m, four-band (B2 blue, B3 green, B4 red, B8 NIR)\n\
         Sentinel-2-like image with lakes, a river, forest, fields and bare soil. The model\n\
         (ee-model/demo/water.onnx, trained by ee-model/demo/make_demo.py) predicts the\n\
         probability of open water for every pixel, tile by tile (128 x 128 with 8 pixels of overlap).\n\n\
         GeoTIFF: {}  (float32 water probability, EPSG:32633, same grid as the scene)\n\
         PNG:     {}  (white = water: the lakes and the meandering river)\n\
         Scene:   {}  (false colour: vegetation red, water black, soil brown)",
        demo.join("scene.tif").display(),
        water.display(),
        water_png.display(),
        scene_png.display()
    );
    Ok(())
}

/// `cargo xtask codegen [--check]`: runs the `ee-codegen` program (protox, prost-build and
/// tonic-prost-build live there, so xtask stays dependency-free).
fn codegen(args: &[String]) -> Result<(), String> {
    if let Some(other) = args.iter().find(|a| *a != "--check") {
        return Err(format!("codegen takes only --check, not {other:?}"));
    }
    let env = Env::discover()?;
    run(
        env.cargo()
            .args(["run", "--quiet", "-p", "ee-codegen", "--"])
            .args(args)
            .arg(&env.root)
            .current_dir(&env.root),
        "cargo xtask codegen",
    )
}

fn test(extra: &[String]) -> Result<(), String> {
    let mut phases = Phases::default();
    let result = test_phases(extra, &mut phases);
    phases.print();
    result
}

/// Wall time of each phase of `cargo xtask test`, and the CPU time of the processes it ran,
/// printed as a table at the end (also when a phase fails), so the slow parts of the suite are
/// known rather than guessed. CPU time (Linux only) is what the phase costs on a busy machine
/// too, where wall time also counts waiting for other people's work.
#[derive(Default)]
struct Phases {
    done: Vec<(String, std::time::Duration, Option<f64>)>,
    started: Option<std::time::Instant>,
}

impl Phases {
    /// Runs `f` as the phase `name`, recording its wall and CPU time whether it succeeds or not.
    fn time<T>(&mut self, name: &str, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
        let (start, cpu_start) = (std::time::Instant::now(), children_cpu_seconds());
        self.started.get_or_insert(start);
        let result = f();
        let cpu = children_cpu_seconds()
            .zip(cpu_start)
            .map(|(end, s)| end - s);
        let label = if result.is_ok() {
            name.to_string()
        } else {
            format!("{name} (failed)")
        };
        self.done.push((label, start.elapsed(), cpu));
        result
    }

    fn print(&self) {
        let Some(started) = self.started else { return };
        let width = self
            .done
            .iter()
            .map(|(n, _, _)| n.len())
            .max()
            .unwrap_or(0)
            .max(5);
        let cpu = |c: Option<f64>| c.map_or("-".to_string(), |c| format!("{c:.1}"));
        println!("\nxtask test: time by phase (seconds; cpu = user + system of the commands run)");
        println!("  {:<width$}  {:>7}  {:>7}", "phase", "wall", "cpu");
        let mut total_cpu = Some(0.0);
        for (name, took, c) in &self.done {
            println!(
                "  {name:<width$}  {:>7.1}  {:>7}",
                took.as_secs_f64(),
                cpu(*c)
            );
            total_cpu = total_cpu.zip(*c).map(|(t, c)| t + c);
        }
        println!(
            "  {:<width$}  {:>7.1}  {:>7}",
            "total",
            started.elapsed().as_secs_f64(),
            cpu(total_cpu)
        );
    }
}

/// User plus system CPU seconds of this process's finished (waited-for) children and their
/// descendants, from `/proc/self/stat` (`cutime` and `cstime`); `None` off Linux.
fn children_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // cutime and cstime are fields 16 and 17 of proc(5): indexes 13 and 14 from the state.
    let ticks: u64 = fields.get(13)?.parse::<u64>().ok()? + fields.get(14)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux architecture cargo targets.
    Some(ticks as f64 / 100.0)
}

/// `cargo xtask test`. Every target is built by one `cargo build --all-targets`, so the test
/// binaries, the examples and the programs (`ee-model`, `ee-codegen`) share one feature
/// resolution and one build of every dependency; the later steps run what it built. Steps that
/// need another feature set or build mode (doctests, docs, the `--no-default-features` check)
/// come after it.
fn test_phases(extra: &[String], phases: &mut Phases) -> Result<(), String> {
    let env = Env::discover()?;
    let python = phases.time("setup (packages, venv)", || {
        env.ensure_system_packages(setup::TEST_PACKAGES)?;
        env.ensure_venv()
    })?;
    // Whether the tree was clean before the suite ran: then the release dry run at the end
    // insists on a clean tree too, so a test that leaves files behind is caught.
    let clean_at_start = setup::tree_is_clean(&env.root);
    // `--all-targets` builds exactly what `cargo test --all-targets` runs (same profiles, same
    // features, dev-dependencies included), plus the plain binaries and examples, so the
    // `cargo test` below only runs. `cargo run -p ee-codegen` (or `-p CRATE --example`) would
    // resolve that package's features alone and rebuild much of the dependency tree for it.
    println!("xtask test: building every target");
    phases.time("build (tests, examples, binaries)", || {
        run(
            env.cargo()
                .args(["build", "--workspace", "--all-targets", "--all-features"])
                .current_dir(&env.root),
            "cargo build --all-targets",
        )
    })?;
    let debug = env.target_dir().join("debug");
    println!("xtask test: checking the generated code is up to date");
    phases.time("codegen --check", || {
        run(
            std::process::Command::new(debug.join("ee-codegen"))
                .arg("--check")
                .arg(&env.root)
                .current_dir(&env.root),
            "ee-codegen --check",
        )
    })?;
    let interop_out = env.root.join("target/interop");
    let _ = std::fs::remove_dir_all(&interop_out);
    let mut tally = setup::Tally::default();
    phases.time("run tests", || {
        tally.run(
            env.cargo()
                .args(["test", "--workspace", "--all-targets", "--all-features"])
                .args(extra)
                .env("EE_INTEROP_PYTHON", &python)
                .env("EE_INTEROP_OUT", &interop_out)
                .env("EE_REQUIRE_INTEROP", "1")
                .current_dir(&env.root),
            "cargo test",
        )
    })?;
    phases.time("doctests", || {
        tally.run(
            env.cargo()
                .args(["test", "--workspace", "--doc", "--all-features"])
                .current_dir(&env.root),
            "doctests",
        )
    })?;
    let examples = setup::examples(&env.root)?;
    phases.time("run examples", || {
        for (krate, example) in &examples {
            println!("xtask test: example {krate}/{example}");
            run(
                std::process::Command::new(debug.join("examples").join(example))
                    .current_dir(&env.root),
                &format!("example {example} of {krate}"),
            )?;
        }
        Ok(())
    })?;
    println!("xtask test: API documentation without warnings");
    phases.time("doc -D warnings", || {
        run(
            env.cargo()
                .args([
                    "doc",
                    "--quiet",
                    "--workspace",
                    "--no-deps",
                    "--all-features",
                ])
                .env("RUSTDOCFLAGS", "-D warnings")
                .current_dir(&env.root),
            "cargo doc --no-deps",
        )
    })?;
    println!("xtask test: crates with optional features off");
    phases.time("check --no-default-features", || {
        run(
            setup::feature_check(env.cargo()).current_dir(&env.root),
            "cargo check --no-default-features",
        )
    })?;
    // Verification builds every package alone, with its own feature set: in a fresh target
    // directory most of the dependency tree again (13 minutes here), so the suite packages
    // without it; the --no-default-features check above covers features, a real release
    // verifies.
    let mut dry_run = vec![
        "--dry-run".to_string(),
        "--no-verify".to_string(),
        "0.1.0".to_string(),
    ];
    if !clean_at_start {
        println!(
            "xtask test: the tree had uncommitted changes, so the release dry run allows them"
        );
        dry_run.insert(1, "--allow-dirty".to_string());
    }
    phases.time("release dry run", || release::release(&dry_run))?;
    println!(
        "xtask test: {} passed, {} failed; {} examples ran; release dry run passed",
        tally.passed,
        tally.failed,
        examples.len()
    );
    Ok(())
}
