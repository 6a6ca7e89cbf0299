//! `ee-model predict`: Earth Engine's predictImage on local rasters with the model a spec
//! file describes, with a progress bar (or progress lines when not on a terminal).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use ee_model::{Model, ModelSpec, PredictOptions, Progress};
use ee_raster_io::Resampling;
use ee_tiling::{MergeMode, Shard, Window};

#[derive(Clone, Copy, ValueEnum)]
enum Merge {
    /// Earth Engine's: margins thrown away, every pixel from one tile.
    Crop,
    /// Overlaps averaged with raised-cosine weights.
    Blend,
}

#[derive(Clone, Copy, ValueEnum)]
enum Compress {
    Deflate,
    Zstd,
    None,
}

#[derive(Clone, Copy, ValueEnum)]
enum Resample {
    Nearest,
    Bilinear,
    Cubic,
}

/// `ee-model predict`: tile the inputs, send them to the model, write a GeoTIFF.
#[derive(Args)]
pub struct PredictArgs {
    /// The model spec (JSON, Earth Engine's parameter names).
    #[arg(long)]
    spec: PathBuf,
    /// Input raster(s), bands stacked in order.
    #[arg(long = "input", required = true)]
    inputs: Vec<PathBuf>,
    /// Output GeoTIFF.
    #[arg(long)]
    output: PathBuf,
    /// How overlapping predictions merge.
    #[arg(long, value_enum, default_value = "crop")]
    merge: Merge,
    /// Write a Cloud-Optimized GeoTIFF.
    #[arg(long)]
    cog: bool,
    /// Block compression of the output.
    #[arg(long, value_enum, default_value = "deflate")]
    compression: Compress,
    /// Also write an 8-bit PNG quicklook.
    #[arg(long)]
    quicklook: Option<PathBuf>,
    /// Output bands (1-based) of the quicklook: one (grey) or three (RGB).
    #[arg(long, value_delimiter = ',', default_value = "1")]
    quicklook_bands: Vec<usize>,
    /// Continue an interrupted run from the journal beside the output.
    #[arg(long)]
    resume: bool,
    /// Refuse jobs needing more requests than this (zoom-out guard).
    #[arg(long, default_value_t = 100_000)]
    max_requests: usize,
    /// Resampling for inputs warped onto the sampling grid.
    #[arg(long, value_enum, default_value = "nearest")]
    resampling: Resample,
    /// Value sent for pixels outside the raster or masked.
    #[arg(long, default_value_t = 0.0)]
    fill: f64,
    /// Nodata of every output band (masked pixels are written as it), overriding the spec's
    /// `nodata`; it must fit every band's type. Default: the spec's, else NaN for float
    /// outputs and the type's maximum for integer outputs.
    #[arg(long, allow_negative_numbers = true)]
    nodata: Option<f64>,
    /// Predict only this pixel window of the input: X,Y,WIDTH,HEIGHT (tiles start at X,Y).
    #[arg(long, value_parser = parse_region)]
    region: Option<Window>,
    /// Predict only shard I of N (0-based, e.g. 0/4 .. 3/4): a band of whole tile rows.
    /// With crop merging, `gdalbuildvrt` of the shards' outputs gives the whole job's pixels.
    #[arg(long)]
    shard: Option<Shard>,
    /// Write tiles whose every valid value the model answered as NaN or infinite, instead of
    /// failing the job on the first one (such values are counted and reported either way).
    #[arg(long)]
    allow_non_finite: bool,
}

fn parse_region(s: &str) -> Result<Window, String> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    let bad = || format!("{s:?} is not X,Y,WIDTH,HEIGHT in pixels (e.g. 0,0,4096,4096)");
    let [x, y, w, h] = parts.as_slice() else {
        return Err(bad());
    };
    Ok(Window::new(
        x.parse().map_err(|_| bad())?,
        y.parse().map_err(|_| bad())?,
        w.parse().map_err(|_| bad())?,
        h.parse().map_err(|_| bad())?,
    ))
}

fn progress_reporter(
    total_hint: Arc<Mutex<Option<indicatif::ProgressBar>>>,
) -> ee_model::ProgressFn {
    let last_line = Mutex::new(Instant::now());
    let start = Instant::now();
    Arc::new(move |p: Progress| {
        let bar = total_hint.lock().unwrap_or_else(|e| e.into_inner());
        match bar.as_ref() {
            Some(b) => {
                b.set_length(p.total as u64);
                b.set_position(p.done as u64);
            }
            None => {
                let mut last = last_line.lock().unwrap_or_else(|e| e.into_inner());
                if last.elapsed() >= Duration::from_secs(5) || p.done == p.total {
                    *last = Instant::now();
                    eprintln!(
                        "{}/{} tiles ({} resumed), {:.0} s",
                        p.done,
                        p.total,
                        p.resumed,
                        start.elapsed().as_secs_f64()
                    );
                }
            }
        }
    })
}

/// Runs `ee-model predict`.
pub async fn run(cli_verbose: u8, args: PredictArgs) -> Result<(), String> {
    let PredictArgs {
        spec,
        inputs,
        output,
        merge,
        cog,
        compression,
        quicklook,
        quicklook_bands,
        resume,
        max_requests,
        resampling,
        fill,
        nodata,
        region,
        shard,
        allow_non_finite,
    } = args;
    let mut spec = ModelSpec::from_file(&spec).map_err(|e| e.to_string())?;
    if let Some(v) = nodata {
        spec = spec.with_nodata(v).map_err(|e| e.to_string())?;
    }
    let model = Model::new(spec).map_err(|e| e.to_string())?;
    let bar = Arc::new(Mutex::new(None::<indicatif::ProgressBar>));
    let tty = std::io::stderr().is_terminal();
    let bar_for_plan = bar.clone();
    let options = PredictOptions {
        merge: match merge {
            Merge::Crop => MergeMode::Crop,
            Merge::Blend => MergeMode::Blend,
        },
        cog,
        compression: match compression {
            Compress::Deflate => ee_raster_io::Compression::Deflate,
            Compress::Zstd => ee_raster_io::Compression::Zstd,
            Compress::None => ee_raster_io::Compression::None,
        },
        resume,
        max_requests,
        fill_value: fill,
        resampling: match resampling {
            Resample::Nearest => Resampling::Nearest,
            Resample::Bilinear => Resampling::Bilinear,
            Resample::Cubic => Resampling::Cubic,
        },
        quicklook: quicklook.map(|p| (p, quicklook_bands)),
        region,
        shard,
        allow_non_finite,
        progress: Some(progress_reporter(bar.clone())),
        on_plan: Some(Arc::new(move |plan| {
            eprintln!("ee-model: {plan}");
            if tty {
                let b = indicatif::ProgressBar::new(plan.tiles as u64);
                if let Ok(style) = indicatif::ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} tiles {per_sec} eta {eta}",
                ) {
                    b.set_style(style);
                }
                *bar_for_plan.lock().unwrap_or_else(|e| e.into_inner()) = Some(b);
            }
        })),
    };
    if cli_verbose > 0 {
        eprintln!("ee-model: predicting with {}", model.describe());
    }
    let report = model
        .predict_image(&inputs, &output, &options)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(b) = bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
        b.finish_and_clear();
    }
    let px = report.plan.output_size.width * report.plan.output_size.height;
    println!(
        "wrote {} ({} x {}, bands {}) in {:.1} s: {} tiles ({} resumed), {:.2} Mpx/s",
        report.output.display(),
        report.plan.output_size.width,
        report.plan.output_size.height,
        report.bands.join(", "),
        report.elapsed.as_secs_f64(),
        report.plan.tiles,
        report.resumed,
        px as f64 / 1e6 / report.elapsed.as_secs_f64().max(1e-9)
    );
    if let Some(m) = &report.metrics {
        println!("requests: {m}");
    }
    if report.non_finite.values > 0 {
        println!(
            "non-finite: {} NaN or infinite values answered where the inputs were valid, in {} tiles",
            report.non_finite.values, report.non_finite.tiles
        );
    }
    if report.written.clamped > 0 || report.written.nodata_collisions > 0 {
        println!("output type: {}", report.written);
    }
    if cli_verbose > 0 {
        let st = report.stages;
        eprintln!(
            "busy time per stage: read {:.2} s, predict {:.2} s, crop {:.2} s, write {:.2} s{}",
            st.read.as_secs_f64(),
            st.predict.as_secs_f64(),
            st.crop.as_secs_f64(),
            st.write.as_secs_f64(),
            report
                .metrics
                .as_ref()
                .map(|m| format!(
                    " (of predict: encode {:.2} s, decode {:.2} s)",
                    m.encode_time.as_secs_f64(),
                    m.decode_time.as_secs_f64()
                ))
                .unwrap_or_default()
        );
    }
    if let Some(q) = &report.quicklook {
        println!("quicklook: {}", q.display());
    }
    Ok(())
}
