//! `cargo xtask bench`: runs the benchmarks and writes `target/bench-report.md`.
//!
//! Each bench of `ee-benches` prints `bench-report| AREA | CASE | RESULT | BASELINE | RATIO |`
//! lines (measured in its own run, against a baseline of the same run); they become the rows
//! of one table. Below it: the serving node's load table (`serve_load`), the comparison of
//! `ee-model predict` with the Python pipeline a user would otherwise write
//! (`benches/python/pipeline.py`) against the same `ee-model serve` process, and the embedded
//! runtime against onnxruntime (`runtime` bench and `benches/python/onnxruntime_bench.py`,
//! lines `bench-runtime| NAME | SHAPE | MS | MEAN_ABS`).
//!
//! `--quick` skips the criterion sampling of `codec` and `assemble` (their report rows are
//! measured anyway), does one round of the Python comparison instead of three and fewer
//! runtime runs. `--pipeline` runs only the Python comparison and writes
//! `target/bench-pipeline.md`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use crate::setup::{self, run, Env};

/// The benches, in the order their rows appear.
const BENCHES: &[&str] = &[
    "codec",
    "assemble",
    "raster_io",
    "client",
    "end_to_end",
    "serve_load",
    "runtime",
];

/// Side of the square raster of the Python comparison.
const PIPELINE_SIZE: usize = 4096;

/// What the runs printed that the report is made of.
#[derive(Default)]
struct Collected {
    /// `bench-report|` rows, without the prefix.
    rows: Vec<String>,
    /// The markdown table `serve_load` prints.
    load_table: Vec<String>,
    /// `bench-runtime|` lines of the Rust side, split into fields.
    tract: Vec<Vec<String>>,
}

/// Runs `cmd`, echoing its stdout line by line and returning the lines.
fn run_collect(cmd: &mut Command, what: &str) -> Result<Vec<String>, String> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{what}: could not start: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("{what}: reading output: {e}"))?;
        println!("{line}");
        lines.push(line);
    }
    let status = child.wait().map_err(|e| format!("{what}: {e}"))?;
    if status.success() {
        Ok(lines)
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

fn fields(line: &str) -> Vec<String> {
    line.trim()
        .trim_end_matches('|')
        .split('|')
        .map(|f| f.trim().to_string())
        .collect()
}

/// `cargo xtask bench [--quick]`.
pub fn bench(args: &[String]) -> Result<(), String> {
    let quick = args.iter().any(|a| a == "--quick");
    let pipeline_only = args.iter().any(|a| a == "--pipeline");
    if let Some(other) = args.iter().find(|a| *a != "--quick" && *a != "--pipeline") {
        return Err(format!(
            "bench takes only --quick and --pipeline, not {other:?}"
        ));
    }
    let env = Env::discover()?;
    env.ensure_system_packages(setup::TEST_PACKAGES)?;
    let python = env.ensure_venv()?;
    let started = Instant::now();
    println!("xtask bench: building ee-model (release)");
    let ee_model = env.build_release("ee-model", "ee-model")?;
    let rounds = if quick { 1 } else { 3 };
    if pipeline_only {
        let table = python_comparison(&env, &python, &ee_model, rounds, &mut Vec::new())?;
        let md = format!(
            "# ee-model predict vs the Python pipeline\n\n`cargo xtask bench --pipeline{}`, {:.0} s.\n\n{table}",
            if quick { " --quick" } else { "" },
            started.elapsed().as_secs_f64()
        );
        let path = env.root.join("target/bench-pipeline.md");
        std::fs::write(&path, &md).map_err(|e| format!("writing {}: {e}", path.display()))?;
        println!("\n{md}\nxtask bench: wrote {}", path.display());
        return Ok(());
    }

    let mut got = Collected::default();
    for name in BENCHES {
        println!("xtask bench: cargo bench --bench {name}");
        let mut cmd = env.cargo();
        cmd.args(["bench", "--quiet", "-p", "ee-benches", "--bench", name])
            .current_dir(&env.root);
        if quick {
            cmd.env("EE_BENCH_QUICK", "1")
                .env("EE_BENCH_RUNTIME_RUNS", "10");
        }
        let lines = run_collect(&mut cmd, &format!("bench {name}"))?;
        for line in &lines {
            if let Some(rest) = line.strip_prefix("bench-report|") {
                got.rows.push(rest.trim().to_string());
            } else if let Some(rest) = line.strip_prefix("bench-runtime|") {
                got.tract.push(fields(rest));
            } else if *name == "serve_load"
                && (line.starts_with('|') || line.starts_with("serving node under load"))
            {
                got.load_table.push(line.clone());
            }
        }
    }

    println!("xtask bench: onnxruntime on the same models");
    let mut ort_cmd = Command::new(&python);
    ort_cmd
        .arg(env.root.join("benches/python/onnxruntime_bench.py"))
        .args(["--runs", if quick { "10" } else { "30" }]);
    let ort: Vec<Vec<String>> = run_collect(&mut ort_cmd, "onnxruntime_bench.py")?
        .iter()
        .filter_map(|l| l.strip_prefix("bench-runtime|").map(fields))
        .collect();
    let runtime_table = runtime_table(&got.tract, &ort, &mut got.rows)?;

    println!("xtask bench: ee-model predict vs the Python pipeline, same ee-model serve");
    let pipeline_table = python_comparison(&env, &python, &ee_model, rounds, &mut got.rows)?;

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut md = format!(
        "# ee-predict benchmarks\n\n`cargo xtask bench{}` on a {cores}-core machine, {:.0} s in all. \
         Every ratio is against a baseline measured in the same run; the machine may be shared, \
         so figures are noisy (a few tens of percent between runs).\n\n\
         | benchmark | case | result | baseline (same run) | ratio |\n|---|---|---|---|---|\n",
        if quick { " --quick" } else { "" },
        started.elapsed().as_secs_f64()
    );
    for row in &got.rows {
        md += &format!("| {row}\n");
    }
    md += "\n## Serving node under load (`serve_load`)\n\n";
    for line in &got.load_table {
        md += &format!("{line}\n");
    }
    md += "\n## Client overhead: `ee-model predict` vs a Python pipeline\n\n";
    md += &pipeline_table;
    md += "\n## Embedded runtime (tract) vs onnxruntime, one thread\n\n";
    md += &runtime_table;
    let path = env.root.join("target/bench-report.md");
    std::fs::write(&path, &md).map_err(|e| format!("writing {}: {e}", path.display()))?;
    println!("\n{md}\nxtask bench: wrote {}", path.display());
    Ok(())
}

/// The tract vs onnxruntime table; adds one main-table row per model.
fn runtime_table(
    tract: &[Vec<String>],
    ort: &[Vec<String>],
    rows: &mut Vec<String>,
) -> Result<String, String> {
    let mut t = String::from(
        "| model | input (NHWC) | tract ms/run | onnxruntime ms/run | tract / onnxruntime (goal <= 1.5x) | mean abs output tract / onnxruntime |\n\
         |---|---|---|---|---|---|\n",
    );
    for r in tract {
        let o = ort
            .iter()
            .find(|o| o.first() == r.first())
            .ok_or_else(|| format!("onnxruntime printed no line for {:?}", r.first()))?;
        let num = |v: &[String], i: usize| -> Result<f64, String> {
            v.get(i)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("bad bench-runtime line {v:?}"))
        };
        let (tm, om) = (num(r, 2)?, num(o, 2)?);
        let (ta, oa) = (num(r, 3)?, num(o, 3)?);
        if (ta - oa).abs() > 1e-3 * oa.abs().max(1e-6) {
            return Err(format!(
                "{}: tract and onnxruntime disagree (mean |output| {ta} vs {oa})",
                r[0]
            ));
        }
        let ratio = tm / om;
        t += &format!(
            "| {} | {} | {tm:.2} | {om:.2} | {ratio:.2}x ({}) | {ta:.6} / {oa:.6} |\n",
            r[0],
            r[1],
            if ratio <= 1.5 { "met" } else { "NOT met" }
        );
        rows.push(format!(
            "embedded runtime, one thread | {} {} | {tm:.2} ms/run | onnxruntime {om:.2} ms/run | {ratio:.2}x its time (goal <= 1.5x) |",
            r[0], r[1]
        ));
    }
    Ok(t)
}

/// User + system CPU seconds and wall seconds of one client process.
struct Usage {
    cpu: f64,
    wall: f64,
    stdout: Vec<String>,
}

/// Runs `argv` under `/usr/bin/time` (or, where it is missing, under `sh`'s `times`) and
/// returns the CPU the process and its children used, its wall time and its stdout.
fn measured(argv: &[&Path], what: &str, scratch: &Path) -> Result<Usage, String> {
    let time_file = scratch.join("time.txt");
    let _ = std::fs::remove_file(&time_file);
    let gnu_time = Path::new("/usr/bin/time").exists();
    let mut cmd = if gnu_time {
        let mut c = Command::new("/usr/bin/time");
        c.args(["-f", "%U %S", "-o"]).arg(&time_file).args(argv);
        c
    } else {
        // `times` prints the shell's, then its children's, user and system times.
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg("\"$@\"; s=$?; times > \"$T\"; exit $s")
            .arg("sh")
            .args(argv)
            .env("T", &time_file);
        c
    };
    let start = Instant::now();
    let stdout = run_collect(&mut cmd, what)?;
    let wall = start.elapsed().as_secs_f64();
    let text = std::fs::read_to_string(&time_file)
        .map_err(|e| format!("{what}: reading {}: {e}", time_file.display()))?;
    let secs = |s: &str| -> Option<f64> {
        // GNU time: "1.23"; sh times: "0m1.230s".
        let s = s.trim().trim_end_matches('s');
        match s.split_once('m') {
            Some((m, rest)) => Some(m.parse::<f64>().ok()? * 60.0 + rest.parse::<f64>().ok()?),
            None => s.parse().ok(),
        }
    };
    let line = if gnu_time {
        text.lines().last()
    } else {
        text.lines().nth(1)
    }
    .unwrap_or("");
    let cpu: Option<f64> = line.split_whitespace().map(secs).sum();
    let cpu = cpu.ok_or_else(|| format!("{what}: cannot read CPU times from {text:?}"))?;
    Ok(Usage { cpu, wall, stdout })
}

/// A running `ee-model serve`, stopped (SIGTERM, then waited for) on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// `ee-model predict` and `benches/python/pipeline.py` against one `ee-model serve`, same
/// raster, tiles and format; `rounds` alternating runs of each, medians reported.
fn python_comparison(
    env: &Env,
    python: &Path,
    ee_model: &Path,
    rounds: usize,
    rows: &mut Vec<String>,
) -> Result<String, String> {
    let data = env.root.join("target/bench-data");
    std::fs::create_dir_all(&data).map_err(|e| format!("creating {}: {e}", data.display()))?;
    let script = env.root.join("benches/python/pipeline.py");
    let input = data.join(format!("pipeline_{PIPELINE_SIZE}.tif"));
    if !input.exists() {
        run(
            Command::new(python)
                .arg(&script)
                .arg("make")
                .arg(&input)
                .arg(PIPELINE_SIZE.to_string()),
            "pipeline.py make",
        )?;
    }
    let mut child = Command::new(ee_model)
        .args(["serve", "--model"])
        .arg(env.root.join("ee-model/tests/models/identity.onnx"))
        .args(["--name", "ident", "--http", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting ee-model serve: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let server = Server(child);
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        match lines.next() {
            Some(Ok(line)) => {
                println!("ee-model serve: {line}");
                if let Some(rest) = line.strip_prefix("http: http://") {
                    break rest.split_whitespace().next().unwrap_or("").to_string();
                }
            }
            _ => return Err("ee-model serve stopped before printing its address".into()),
        }
    };
    // Keep draining the server's stdout so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});

    let spec = data.join("pipeline-spec.json");
    std::fs::write(
        &spec,
        format!(
            r#"{{"predictor": {{"type": "aiPlatform", "projectId": "p", "modelName": "ident", "baseUrl": "http://{addr}"}},
 "inputBands": {{"input": [1, 2, 3, 4]}}, "inputTileSize": [256, 256], "inputOverlapSize": [8, 8],
 "outputBands": {{"output": {{"type": "float", "dimensions": 1}}}},
 "payloadFormat": "SERIALIZED_TF_TENSORS", "maxPayloadBytes": 2000000}}"#
        ),
    )
    .map_err(|e| format!("writing {}: {e}", spec.display()))?;
    let (out_rust, out_py) = (
        data.join("pipeline_out_ee_model.tif"),
        data.join("pipeline_out_python.tif"),
    );
    let url = format!("http://{addr}");
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    let mut py_import = Vec::new();
    let mut py_inner_wall = Vec::new();
    for round in 0..rounds {
        println!("xtask bench: round {} of {rounds}", round + 1);
        let _ = std::fs::remove_file(&out_rust);
        let _ = std::fs::remove_file(&out_py);
        ours.push(measured(
            &[
                ee_model,
                Path::new("predict"),
                Path::new("--spec"),
                &spec,
                Path::new("--input"),
                &input,
                Path::new("--output"),
                &out_rust,
                Path::new("--compression"),
                Path::new("none"),
            ],
            "ee-model predict",
            &data,
        )?);
        let u = measured(
            &[
                python,
                &script,
                Path::new("predict"),
                Path::new("--url"),
                Path::new(&url),
                Path::new("--model"),
                Path::new("ident"),
                Path::new("--input"),
                &input,
                Path::new("--output"),
                &out_py,
            ],
            "pipeline.py predict",
            &data,
        )?;
        let line = u
            .stdout
            .iter()
            .find_map(|l| l.strip_prefix("pipeline: "))
            .ok_or("pipeline.py printed no summary line")?;
        let field = |k: &str| -> Option<f64> {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('=')?.parse().ok())
        };
        py_import.push(field("import_cpu_s").ok_or("no import_cpu_s")?);
        py_inner_wall.push(field("wall_s").ok_or("no wall_s")?);
        theirs.push(u);
    }
    drop(server);
    run(
        Command::new(python)
            .arg(&script)
            .arg("check")
            .arg(&input)
            .arg(&out_rust)
            .arg(&out_py),
        "both outputs equal the input (identity model)",
    )?;
    let m = |v: &[Usage], f: fn(&Usage) -> f64| median(v.iter().map(f).collect());
    let (rc, rw) = (m(&ours, |u| u.cpu), m(&ours, |u| u.wall));
    let (pc, pw) = (m(&theirs, |u| u.cpu), m(&theirs, |u| u.wall));
    let (pi, piw) = (median(py_import), median(py_inner_wall));
    let mpx = (PIPELINE_SIZE * PIPELINE_SIZE) as f64 / 1e6;
    let (cpu_ratio, wall_ratio) = (pc / rc, pw / rw);
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    let t = format!(
        "{PIPELINE_SIZE} x {PIPELINE_SIZE} x 4 float32 (tiled, uncompressed in and out), 256-pixel tiles with 8 \
         pixels of overlap, SERIALIZED_TF_TENSORS on the AI Platform route of one `ee-model serve` \
         (identity ONNX), one tile per request; median of {rounds} alternating round(s). CPU: user + \
         system of the client process (`/usr/bin/time`). Both outputs were checked equal to the input.\n\n\
         | client | CPU s | wall s | Mpx/s |\n|---|---|---|---|\n\
         | `ee-model predict` | {rc:.2} | {rw:.2} | {:.1} |\n\
         | Python pipeline (rasterio, numpy, tf.io.serialize_tensor, base64, requests x 8 threads) | {pc:.2} | {pw:.2} | {:.1} |\n\
         | the same, without interpreter start and imports | {:.2} | {piw:.2} | {:.1} |\n\n\
         Python / ee-model: CPU {cpu_ratio:.1}x (goal >= 10x: {}), wall {wall_ratio:.1}x (goal >= 3x: {}); \
         without Python's start-up: CPU {:.1}x, wall {:.1}x.\n",
        mpx / rw,
        mpx / pw,
        pc - pi,
        mpx / piw,
        verdict(cpu_ratio >= 10.0),
        verdict(wall_ratio >= 3.0),
        (pc - pi) / rc,
        piw / rw,
    );
    rows.push(format!(
        "client overhead, {PIPELINE_SIZE}x{PIPELINE_SIZE}x4 f32 vs ee-model serve | ee-model predict, CPU | {rc:.2} s | Python pipeline {pc:.2} s | Python {cpu_ratio:.1}x (goal >= 10x) |"
    ));
    rows.push(format!(
        "client overhead, {PIPELINE_SIZE}x{PIPELINE_SIZE}x4 f32 vs ee-model serve | ee-model predict, wall | {rw:.2} s ({:.1} Mpx/s) | Python pipeline {pw:.2} s | Python {wall_ratio:.1}x (goal >= 3x) |",
        mpx / rw
    ));
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_split_a_report_line() {
        assert_eq!(
            fields(" water | 4x128x128x4 | 1.451 | 0.902714"),
            ["water", "4x128x128x4", "1.451", "0.902714"]
        );
        assert_eq!(fields(" a | b |"), ["a", "b"]);
    }

    #[test]
    fn median_of_odd_and_single() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![5.0]), 5.0);
    }
}
