//! A writer that dies stops the job: the output goes to a small tmpfs that fills up mid-job;
//! the job must fail with the writer's error (the file and "No space left"), send at most about
//! one batch more once the writer has failed (not the rest of the job), leave no output that
//! looks complete, and keep a journal from which `--resume` finishes the job, once space is
//! freed, with the pixels of a clean run.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ee_model::{JobPlan, Model, ModelSpec, PredictOptions, Progress};

use common::{make_input, read_band, scratch, serve_stt};

/// A tmpfs of `bytes` mounted at `dir`, unmounted when dropped; `None` (with the reason
/// printed) where this process may not mount, unless `CI` says the test must run.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, bytes: usize) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}")])
            .arg("tmpfs")
            .arg(dir)
            .status();
        match status {
            Ok(s) if s.success() => Some(Tmpfs(dir.to_path_buf())),
            other => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "CI is set but a tmpfs cannot be mounted at {} ({other:?}): run as root",
                    dir.display()
                );
                eprintln!(
                    "skipping: cannot mount a tmpfs at {} ({other:?}; needs root)",
                    dir.display()
                );
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_the_job_and_resume_finishes_it() {
    let dir = scratch("full_disk");
    // Room for the whole job (output and journal) once the filler is gone.
    let Some(_mount) = Tmpfs::mount(&dir, 24 << 20) else {
        return;
    };
    let (addr, requests) = serve_stt("conv_r2.onnx").await;
    let input = scratch("full_disk_in.tif");
    make_input(&input, 384, 384, None);
    let spec = ModelSpec::from_json(&format!(
        r#"{{"predictor": {{"type": "aiPlatform", "projectId": "p", "modelName": "conv", "baseUrl": "http://{addr}"}},
            "inputBands": {{"input": ["B1", "B2", "B3"]}}, "inputTileSize": [16, 16], "inputOverlapSize": [4, 4],
            "outputBands": {{"output": {{"type": "float", "dimensions": 1}}}}, "maxPayloadBytes": 30000,
            "maxConcurrency": 2}}"#
    ))
    .unwrap();
    let model = Model::new(spec).unwrap();

    // Fill the disk but for about a quarter of what the journal needs (576 tiles of about
    // 2 KiB each).
    let filler = dir.join("filler");
    let free = fs_free(&dir);
    std::fs::write(&filler, vec![1u8; (free - 300_000) as usize]).unwrap();

    let output = dir.join("out.tif");
    let plan = Arc::new(Mutex::new(None::<JobPlan>));
    let done = Arc::new(AtomicUsize::new(0));
    let (p, d) = (plan.clone(), done.clone());
    let options = PredictOptions {
        on_plan: Some(Arc::new(move |plan: &JobPlan| {
            *p.lock().unwrap() = Some(plan.clone())
        })),
        progress: Some(Arc::new(move |progress: Progress| {
            d.store(progress.done, Ordering::SeqCst)
        })),
        ..Default::default()
    };
    let err = model
        .predict_image(std::slice::from_ref(&input), &output, &options)
        .await
        .expect_err("the disk is full")
        .to_string();
    assert!(
        err.contains(&dir.display().to_string()) && err.contains("No space left"),
        "the writer's error names the file and the cause: {err}"
    );
    let plan = plan.lock().unwrap().clone().unwrap();
    let per_request = plan.tiles.div_ceil(plan.requests);
    let (sent, written) = (requests.lock().unwrap().len(), done.load(Ordering::SeqCst));
    assert!(
        written < plan.tiles / 2,
        "the disk filled late ({written} of {} tiles written): the test proves nothing",
        plan.tiles
    );
    // What the writer took in, the requests in flight (maxConcurrency 2, plus the reader's
    // two batches ahead), and one batch racing the failure.
    let bound = written.div_ceil(per_request) + 2 + 2 + 1;
    assert!(
        sent <= bound,
        "{sent} requests sent for {written} tiles written ({per_request} a request, {} in the job): the job went on after the writer failed (at most {bound})",
        plan.requests
    );
    assert!(!output.exists(), "no output that looks complete");
    assert!(
        !ee_raster_io::partial_path(&output).exists(),
        "no partial output left"
    );
    let journal = ee_model::journal::journal_path(&output);
    assert!(journal.exists(), "the journal is kept for --resume");

    // The cause removed, --resume finishes the job with the pixels of a clean run.
    std::fs::remove_file(&filler).unwrap();
    let before = requests.lock().unwrap().len();
    let resumed = model
        .predict_image(
            std::slice::from_ref(&input),
            &output,
            &PredictOptions {
                resume: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(resumed.resumed > 0, "tiles were replayed from the journal");
    assert!(
        requests.lock().unwrap().len() - before < plan.requests,
        "resuming did not predict everything again"
    );
    let clean = scratch("full_disk_clean.tif");
    model
        .predict_image(
            std::slice::from_ref(&input),
            &clean,
            &PredictOptions::default(),
        )
        .await
        .unwrap();
    for band in 1..=2 {
        assert_eq!(
            read_band(&output, band).0,
            read_band(&clean, band).0,
            "band {band} after resuming"
        );
    }
    assert!(!journal.exists());
}

/// Free bytes on the filesystem of `dir`.
fn fs_free(dir: &Path) -> u64 {
    let out = std::process::Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap()
}
