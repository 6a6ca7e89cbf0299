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
  bench  run the benchmarks and write target/bench-report.md (--quick: shorter)
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
                "run", "--quiet", "-p", "ee-model", "--", "predict", "--spec",
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
    let env = Env::discover()?;
    env.ensure_system_packages(setup::TEST_PACKAGES)?;
    let python = env.ensure_venv()?;
    // Whether the tree was clean before the suite ran: then the release dry run at the end
    // insists on a clean tree too, so a test that leaves files behind is caught.
    let clean_at_start = setup::tree_is_clean(&env.root);
    println!("xtask test: checking the generated code is up to date");
    codegen(&["--check".to_string()])?;
    let interop_out = env.root.join("target/interop");
    let _ = std::fs::remove_dir_all(&interop_out);
    let mut tally = setup::Tally::default();
    tally.run(
        env.cargo()
            .args(["test", "--workspace", "--all-targets", "--all-features"])
            .args(extra)
            .env("EE_INTEROP_PYTHON", &python)
            .env("EE_INTEROP_OUT", &interop_out)
            .env("EE_REQUIRE_INTEROP", "1")
            .current_dir(&env.root),
        "cargo test",
    )?;
    tally.run(
        env.cargo()
            .args(["test", "--workspace", "--doc", "--all-features"])
            .current_dir(&env.root),
        "doctests",
    )?;
    println!("xtask test: crates with optional features off");
    for (krate, features) in setup::FEATURE_CHECKS {
        run(
            env.cargo()
                .args(["check", "--quiet", "-p", krate, "--no-default-features"])
                .args(if features.is_empty() {
                    vec![]
                } else {
                    vec!["--features", features]
                })
                .current_dir(&env.root),
            &format!("cargo check -p {krate} --no-default-features {features}"),
        )?;
    }
    println!("xtask test: API documentation without warnings");
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
    )?;
    // The examples were built by `cargo test --all-targets` with the workspace's features;
    // `cargo run -p CRATE --example` would resolve each crate's features alone and rebuild
    // much of the dependency tree per example, so the built programs are run directly.
    run(
        env.cargo()
            .args([
                "build",
                "--quiet",
                "--workspace",
                "--examples",
                "--all-features",
            ])
            .current_dir(&env.root),
        "cargo build --examples",
    )?;
    let examples = setup::examples(&env.root)?;
    let example_dir = env.target_dir().join("debug/examples");
    for (krate, example) in &examples {
        println!("xtask test: example {krate}/{example}");
        run(
            std::process::Command::new(example_dir.join(example)).current_dir(&env.root),
            &format!("example {example} of {krate}"),
        )?;
    }
    // Verification builds every package alone, with its own feature set: in a fresh target
    // directory most of the dependency tree again (13 minutes here), so the suite packages
    // without it; the --no-default-features checks above cover features, a real release
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
    release::release(&dry_run)?;
    println!(
        "xtask test: {} passed, {} failed; {} examples ran; release dry run passed",
        tally.passed,
        tally.failed,
        examples.len()
    );
    Ok(())
}
