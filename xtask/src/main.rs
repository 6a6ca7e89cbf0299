//! `cargo xtask`: the project's chores, in Rust with no dependencies so it builds on a machine
//! that has nothing installed yet.
//!
//! - `cargo xtask demo`: installs what the demo needs, then runs the main job on the embedded
//!   default.
//! - `cargo xtask test`: installs what the suite needs (Debian packages, the Python virtual
//!   environment for interop checks under `target/py`), then runs every test.

mod setup;

use std::process::ExitCode;

use setup::{run, Env};

const USAGE: &str = "usage: cargo xtask <demo|test>

  demo   install what is needed, then run the main job on the embedded default
  test   install what is needed, then run the whole test suite (Rust and interop checks)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo(),
        Some("test") => test(&args[1..]),
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
    run(
        env.cargo()
            .args([
                "run",
                "--release",
                "--quiet",
                "-p",
                "ee-tensor-proto",
                "--example",
                "payload_tour",
            ])
            .current_dir(&env.root),
        "the demo",
    )
}

fn test(extra: &[String]) -> Result<(), String> {
    let env = Env::discover()?;
    env.ensure_system_packages(setup::TEST_PACKAGES)?;
    let python = env.ensure_venv()?;
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
            .args(["test", "--workspace", "--doc"])
            .current_dir(&env.root),
        "doctests",
    )?;
    println!(
        "xtask test: {} passed, {} failed",
        tally.passed, tally.failed
    );
    Ok(())
}
