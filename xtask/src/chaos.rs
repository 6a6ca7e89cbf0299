//! `cargo xtask chaos`: evidence for SPEC section 9's fault figures, printed as tables.
//!
//! 1. Faults: `ee-model predict` runs against `ee-model serve` twice, once directly (clean)
//!    and once through `chaos_proxy` (the `ee-benches` binary), which fails a seeded 20% of the
//!    requests with 429 + Retry-After, 503, connection resets, stalls past the client's
//!    per-request deadline and truncated bodies. The two outputs are compared with GDAL's own
//!    tools: every band's pixel bytes and every mask band (`gdal_translate -of ENVI`, `-b
//!    mask,N`) and the georeferencing, CRS, nodata and band layout (`gdalinfo`).
//! 2. Kill and resume: the clean job is killed with SIGKILL at seeded points of its run and
//!    resumed with `--resume`; each resumed output is compared with the clean one the same way.
//!
//! Std only, like the rest of xtask: everything else is a process.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use crate::setup::{self, run, Env};

/// Options of `cargo xtask chaos`.
struct Options {
    /// Side of the square input raster, pixels.
    size: usize,
    /// Seed of the proxy's fault draws and of the kill points.
    seed: u64,
    /// Number of kill-and-resume rounds.
    kills: usize,
    /// Share of requests failing.
    rate: f64,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut o = Options {
            size: 1024,
            seed: 7,
            kills: 10,
            rate: 0.2,
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let value = it.next().ok_or(format!("{flag} needs a value"))?;
            let bad = || format!("bad value {value:?} for {flag}");
            match flag.as_str() {
                "--size" => o.size = value.parse().map_err(|_| bad())?,
                "--seed" => o.seed = value.parse().map_err(|_| bad())?,
                "--kills" => o.kills = value.parse().map_err(|_| bad())?,
                "--rate" => o.rate = value.parse().map_err(|_| bad())?,
                _ => {
                    return Err(format!(
                    "unknown option {flag:?} (chaos takes --size N, --seed S, --kills K, --rate R)"
                ))
                }
            }
        }
        Ok(o)
    }
}

/// A child process killed and reaped when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads `child`'s stdout until a line starts with `prefix`; returns the rest of that line
/// (first word) and keeps draining the rest on a thread, collecting lines starting with
/// `keep` into the returned receiver.
fn address_line(
    child: &mut Child,
    prefix: &str,
    keep: &'static str,
) -> Result<(String, std::sync::mpsc::Receiver<String>), String> {
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(rest) = line.strip_prefix(prefix) {
                    break rest.split_whitespace().next().unwrap_or("").to_string();
                }
            }
            _ => return Err(format!("the process ended before printing {prefix:?}")),
        }
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if line.starts_with(keep) {
                let _ = tx.send(line);
            }
        }
    });
    Ok((addr, rx))
}

/// A seeded generator of fractions (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Tools {
    ee_model: PathBuf,
    proxy: PathBuf,
}

fn build(env: &Env) -> Result<Tools, String> {
    println!("xtask chaos: building ee-model and chaos_proxy (release)");
    Ok(Tools {
        ee_model: env.build_release("ee-model", "ee-model")?,
        proxy: env.build_release("ee-benches", "chaos_proxy")?,
    })
}

/// Removes `output` and everything beside it named after it (journal, partial file).
fn clear_output(output: &Path) {
    let _ = std::fs::remove_file(output);
    if let (Some(dir), Some(name)) = (output.parent(), output.file_name()) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let n = e.file_name();
                if n.to_string_lossy()
                    .starts_with(&format!("{}.", name.to_string_lossy()))
                {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
}

fn predict_cmd(tools: &Tools, spec: &Path, input: &Path, output: &Path) -> Command {
    let mut cmd = Command::new(&tools.ee_model);
    cmd.arg("predict")
        .arg("--spec")
        .arg(spec)
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(output);
    cmd
}

/// What one finished `ee-model predict` said.
struct Finished {
    elapsed: Duration,
    tiles: usize,
    resumed: usize,
    requests_line: String,
}

fn finish(mut cmd: Command, what: &str) -> Result<Finished, String> {
    let start = Instant::now();
    let out = cmd
        .output()
        .map_err(|e| format!("{what}: cannot start ee-model: {e}"))?;
    let elapsed = start.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        return Err(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    // "wrote OUT (W x H, bands B) in S s: T tiles (R resumed), X Mpx/s"
    let wrote = stdout
        .lines()
        .find(|l| l.starts_with("wrote "))
        .ok_or_else(|| format!("{what}: no summary line in {stdout:?}"))?;
    let counts = wrote.rsplit(" s: ").next().unwrap_or("");
    let tiles = counts
        .split_whitespace()
        .next()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let resumed = counts
        .split('(')
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    let requests_line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("requests: "))
        .unwrap_or("")
        .to_string();
    Ok(Finished {
        elapsed,
        tiles,
        resumed,
        requests_line,
    })
}

fn gdal(cmd: &mut Command, what: &str) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("{what}: cannot start {:?}: {e}", cmd.get_program()))?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}

/// What GDAL says about a raster: `gdalinfo` without the file names (size, CRS, geotransform,
/// band types, nodata, mask flags), every band's pixel bytes, every mask band's bytes.
struct GdalView {
    info: String,
    pixels: Vec<u8>,
    masks: Vec<Vec<u8>>,
}

fn gdal_view(path: &Path, scratch: &Path) -> Result<GdalView, String> {
    let text = gdal(
        Command::new("gdalinfo")
            .args(["-nomd", "-norat", "-noct"])
            .arg(path),
        "gdalinfo",
    )?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let info: String = text
        .lines()
        .filter(|l| !l.contains(name.as_ref()) && !l.starts_with("Files:"))
        .map(|l| format!("{l}\n"))
        .collect();
    let bands = info.lines().filter(|l| l.starts_with("Band ")).count();
    let dump = |band: Option<usize>| -> Result<Vec<u8>, String> {
        let raw = scratch.join("dump.bin");
        let _ = std::fs::remove_file(&raw);
        let mut cmd = Command::new("gdal_translate");
        cmd.args(["-q", "-of", "ENVI"]);
        if let Some(b) = band {
            cmd.arg("-b").arg(format!("mask,{b}"));
        }
        gdal(cmd.arg(path).arg(&raw), "gdal_translate")?;
        let bytes = std::fs::read(&raw).map_err(|e| format!("reading {}: {e}", raw.display()))?;
        for ext in ["bin", "hdr", "bin.aux.xml"] {
            let _ = std::fs::remove_file(scratch.join(format!("dump.{ext}")));
        }
        Ok(bytes)
    };
    let pixels = dump(None)?;
    let masks = (1..=bands)
        .map(|b| dump(Some(b)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(GdalView {
        info,
        pixels,
        masks,
    })
}

/// Compares two views; `Ok(())` when identical, else what differs.
fn compare(got: &GdalView, want: &GdalView) -> Result<(), String> {
    let mut problems = Vec::new();
    if got.info != want.info {
        problems.push("gdalinfo (size, CRS, geotransform, types, nodata) differs".to_string());
    }
    let differing = |a: &[u8], b: &[u8]| {
        a.iter().zip(b).filter(|(x, y)| x != y).count() + a.len().abs_diff(b.len())
    };
    let d = differing(&got.pixels, &want.pixels);
    if d > 0 {
        problems.push(format!("{d} pixel bytes differ"));
    }
    if got.masks.len() != want.masks.len() {
        problems.push("mask band count differs".into());
    }
    for (b, (g, w)) in got.masks.iter().zip(&want.masks).enumerate() {
        let d = differing(g, w);
        if d > 0 {
            problems.push(format!("mask of band {} differs at {d} pixels", b + 1));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

fn spec_text(base_url: &str) -> String {
    format!(
        r#"{{"predictor": {{"type": "aiPlatform", "projectId": "p", "modelName": "conv", "version": "v1", "baseUrl": "{base_url}"}},
 "payloadFormat": "SERIALIZED_TF_TENSORS",
 "inputBands": {{"input": ["B2", "B3", "B4"]}},
 "inputTileSize": [64, 64], "inputOverlapSize": [4, 4],
 "outputBands": {{"output": {{"type": "float", "dimensions": 1}}}},
 "maxPayloadBytes": 100000, "maxConcurrency": 8, "requestTimeoutSeconds": 1.0}}
"#
    )
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// Runs `cargo xtask chaos`.
pub fn chaos(args: &[String]) -> Result<(), String> {
    let opts = Options::parse(args)?;
    let env = Env::discover()?;
    env.ensure_system_packages(setup::TEST_PACKAGES)?;
    let tools = build(&env)?;
    let dir = env.root.join("target/chaos");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;

    // The input: the demo scene's blue, green and red bands resampled to SIZE x SIZE float32,
    // with 0 as nodata so some pixels are masked.
    let input = dir.join("input.tif");
    run(
        Command::new("gdal_translate")
            .args(["-q", "-ot", "Float32", "-r", "bilinear", "-a_nodata", "0"])
            .args(["-b", "1", "-b", "2", "-b", "3", "-co", "TILED=YES"])
            .arg("-outsize")
            .arg(opts.size.to_string())
            .arg(opts.size.to_string())
            .arg(env.root.join("ee-model/demo/scene.tif"))
            .arg(&input),
        "making the input raster",
    )?;

    let model = env.root.join("ee-model/tests/models/conv_r2.onnx");
    let mut serve = Command::new(&tools.ee_model);
    serve
        .arg("serve")
        .arg("--model")
        .arg(&model)
        .args(["--name", "conv", "--http", "0", "--grpc", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut serve = Guard(
        serve
            .spawn()
            .map_err(|e| format!("starting ee-model serve: {e}"))?,
    );
    let (serve_addr, _) = address_line(&mut serve.0, "http: http://", "\u{0}")?;

    let mut proxy = Command::new(&tools.proxy);
    proxy
        .arg("--upstream")
        .arg(&serve_addr)
        .arg("--rate")
        .arg(opts.rate.to_string())
        .arg("--seed")
        .arg(opts.seed.to_string())
        .args(["--stall-ms", "2500", "--retry-after", "1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut proxy = Guard(
        proxy
            .spawn()
            .map_err(|e| format!("starting chaos_proxy: {e}"))?,
    );
    let proxy_stdin: ChildStdin = proxy.0.stdin.take().ok_or("no proxy stdin")?;
    let (proxy_addr, proxy_stats) = address_line(&mut proxy.0, "proxy: ", "stats: ")?;

    let clean_spec = dir.join("clean-spec.json");
    let chaos_spec = dir.join("chaos-spec.json");
    write(&clean_spec, &spec_text(&format!("http://{serve_addr}")))?;
    write(&chaos_spec, &spec_text(&format!("http://{proxy_addr}")))?;

    // A first clean run warms the node (its per-shape plans), the second is timed.
    let clean = dir.join("clean.tif");
    println!(
        "xtask chaos: {0} x {0} x 3 float32 input, conv_r2.onnx served by `ee-model serve`, \
         AI Platform route, SERIALIZED_TF_TENSORS, 64 x 64 tiles (overlap 4)",
        opts.size
    );
    finish(
        predict_cmd(&tools, &clean_spec, &input, &clean),
        "warm-up run",
    )?;
    clear_output(&clean);
    let clean_run = finish(
        predict_cmd(&tools, &clean_spec, &input, &clean),
        "clean run",
    )?;
    let chaos_out = dir.join("chaos.tif");
    let chaos_run = finish(
        predict_cmd(&tools, &chaos_spec, &input, &chaos_out),
        "run through the chaos proxy",
    )?;
    drop(proxy_stdin);
    let stats = proxy_stats
        .recv_timeout(Duration::from_secs(10))
        .map_err(|_| "chaos_proxy printed no stats".to_string())?;
    let stat = |key: &str| -> u64 {
        stats
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let kinds = ["429+retry-after", "503", "reset", "stall", "truncated"];
    let faults: u64 = kinds.iter().map(|k| stat(k)).sum();
    let want = gdal_view(&clean, &dir)?;
    let verdict = compare(&gdal_view(&chaos_out, &dir)?, &want);

    println!();
    println!(
        "Faults (seed {}, {:.0}% of requests):",
        opts.seed,
        opts.rate * 100.0
    );
    println!(
        "{:<12} {:>6} {:>9} {:>7} {:>9} {:>9}",
        "run", "tiles", "requests", "faults", "time", "overhead"
    );
    println!(
        "{:<12} {:>6} {:>9} {:>7} {:>8.2}s {:>9}",
        "clean",
        clean_run.tiles,
        request_count(&clean_run.requests_line),
        0,
        clean_run.elapsed.as_secs_f64(),
        "-"
    );
    println!(
        "{:<12} {:>6} {:>9} {:>7} {:>8.2}s {:>+8.0}%",
        "chaos proxy",
        chaos_run.tiles,
        stat("requests"),
        faults,
        chaos_run.elapsed.as_secs_f64(),
        (chaos_run.elapsed.as_secs_f64() / clean_run.elapsed.as_secs_f64() - 1.0) * 100.0
    );
    println!(
        "injected by kind: {}",
        kinds
            .iter()
            .map(|k| format!("{k} {}", stat(k)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("client (chaos run): {}", chaos_run.requests_line);
    let added = chaos_run.elapsed.as_secs_f64() - clean_run.elapsed.as_secs_f64();
    println!(
        "added time: {added:.2} s, {:.0} ms per injected fault (a stall waits out the 1 s \
         request deadline, a 429 its 1 s Retry-After, and in-flight requests halve on each)",
        added * 1000.0 / faults.max(1) as f64
    );
    println!(
        "output vs clean run (gdal_translate pixel bytes of every band, every mask band; gdalinfo \
         size/CRS/geotransform/nodata): {}",
        match &verdict {
            Ok(()) => format!(
                "IDENTICAL ({} pixel bytes, {} mask bands)",
                want.pixels.len(),
                want.masks.len()
            ),
            Err(e) => format!("DIFFERENT: {e}"),
        }
    );

    // Kill and resume, on the clean route.
    println!();
    println!(
        "Kill and resume ({} SIGKILLs at seeded points of the {:.2} s clean run, seed {}):",
        opts.kills,
        clean_run.elapsed.as_secs_f64(),
        opts.seed
    );
    println!(
        "{:>4} {:>9} {:>14} {:>16} {:>14} {:>10}",
        "kill", "at", "OUT after kill", "journaled tiles", "redone tiles", "identical"
    );
    let mut rng = Rng(opts.seed ^ 0x6B69_6C6C);
    let mut all_identical = verdict.is_ok();
    let killed = dir.join("killed.tif");
    for k in 1..=opts.kills {
        clear_output(&killed);
        let at = clean_run.elapsed.mul_f64(0.05 + 0.9 * rng.next_f64());
        let mut child = predict_cmd(&tools, &clean_spec, &input, &killed)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting ee-model predict: {e}"))?;
        std::thread::sleep(at);
        // A run may finish before its kill point (start-up time varies): say so.
        let finished_first = matches!(child.try_wait(), Ok(Some(_)));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let left = match (finished_first, killed.exists()) {
            (true, _) => "finished first",
            (false, true) => "COMPLETE (!)",
            (false, false) => "none",
        };
        all_identical &= finished_first || !killed.exists();
        let mut again = predict_cmd(&tools, &clean_spec, &input, &killed);
        again.arg("--resume");
        let resumed = finish(again, "resumed run")?;
        let same = compare(&gdal_view(&killed, &dir)?, &want);
        all_identical &= same.is_ok();
        println!(
            "{:>4} {:>8.2}s {:>14} {:>16} {:>14} {:>10}",
            k,
            at.as_secs_f64(),
            left,
            resumed.resumed,
            resumed.tiles - resumed.resumed.min(resumed.tiles),
            match same {
                Ok(()) => "yes".to_string(),
                Err(e) => format!("NO: {e}"),
            }
        );
    }
    let _ = std::io::stdout().flush();
    drop(proxy);
    drop(serve);
    if all_identical {
        println!("\nxtask chaos: every output identical to the clean run");
        Ok(())
    } else {
        Err("some output differs from the clean run (see the tables)".into())
    }
}

/// The number of requests in a `requests:` line ("N requests ok, M failed; ...").
fn request_count(line: &str) -> String {
    line.split_whitespace().next().unwrap_or("?").to_string()
}
