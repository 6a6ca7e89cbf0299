//! `ee-model export-tfrecord`: Earth Engine's image export to TFRecord patches, with the
//! mixer that georeferences them.

use std::path::PathBuf;

use clap::Args;
use ee_patches::{export_image, ExportOptions};
use ee_raster_io::{BandSelector, InputStack, Resampling};

/// `ee-model export-tfrecord`: cut rasters into patches of tf.train.Examples.
#[derive(Args)]
pub struct ExportTfrecordArgs {
    /// Input raster(s), bands stacked in order (later inputs warped onto the first's grid).
    #[arg(long = "input", required = true)]
    inputs: Vec<PathBuf>,
    /// Output prefix DIR/NAME: DIR/NAME-00000.tfrecord[.gz], ..., DIR/NAME-mixer.json.
    #[arg(long)]
    prefix: PathBuf,
    /// Core patch size W,H in pixels.
    #[arg(long, value_delimiter = ',', required = true)]
    patch_dimensions: Vec<usize>,
    /// Kernel X,Y: each patch is buffered by floor(X/2), floor(Y/2) pixels on every side.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 1])]
    kernel_size: Vec<usize>,
    /// gzip the records (.tfrecord.gz).
    #[arg(long)]
    compressed: bool,
    /// Largest shard, in bytes of uncompressed records.
    #[arg(long, default_value_t = 1 << 30)]
    max_file_size: u64,
    /// Value for pixels outside the raster or masked, and for array padding.
    #[arg(long, default_value_t = 0.0)]
    default_value: f64,
    /// Bands to export, by name or 1-based number over all inputs (default: all).
    #[arg(long, value_delimiter = ',')]
    bands: Vec<String>,
    /// Array bands and their depths: name=N,... (bands name_0, name_1, ... or name).
    #[arg(long, value_delimiter = ',')]
    tensor_depths: Vec<String>,
    /// All bands in one feature, named after the first.
    #[arg(long)]
    collapse_bands: bool,
    /// Drop patches whose masked fraction exceeds this (no mixer unless 1).
    #[arg(long, default_value_t = 1.0)]
    max_masked_ratio: f64,
    /// Drop partial patches at the right and bottom edges (Earth Engine's behaviour) instead
    /// of padding them.
    #[arg(long)]
    drop_partial: bool,
}

/// Parses `name=N,...` pairs.
pub(crate) fn pairs<T: std::str::FromStr>(
    items: &[String],
    what: &str,
) -> Result<Vec<(String, T)>, String> {
    items
        .iter()
        .map(|item| {
            let (name, v) = item
                .split_once('=')
                .ok_or_else(|| format!("{what} {item:?} is not name=value"))?;
            let v = v
                .trim()
                .parse()
                .map_err(|_| format!("{what} {item:?}: {v:?} is not a valid number"))?;
            Ok((name.trim().to_string(), v))
        })
        .collect()
}

/// Runs the export.
pub async fn run(verbose: u8, args: ExportTfrecordArgs) -> Result<(), String> {
    tokio::task::spawn_blocking(move || run_blocking(verbose, args))
        .await
        .map_err(|e| format!("the export stopped: {e}"))?
}

/// Two comma-separated sizes.
pub(crate) fn pair(v: &[usize], what: &str) -> Result<[usize; 2], String> {
    match v {
        [x, y] => Ok([*x, *y]),
        _ => Err(format!("{what} takes two numbers X,Y (found {})", v.len())),
    }
}

fn run_blocking(verbose: u8, args: ExportTfrecordArgs) -> Result<(), String> {
    let options = ExportOptions {
        patch_dimensions: pair(&args.patch_dimensions, "--patch-dimensions")?,
        kernel_size: pair(&args.kernel_size, "--kernel-size")?,
        compressed: args.compressed,
        max_file_size: args.max_file_size,
        default_value: args.default_value,
        tensor_depths: pairs(&args.tensor_depths, "tensor depth")?,
        collapse_bands: args.collapse_bands,
        max_masked_ratio: args.max_masked_ratio,
        drop_partial: args.drop_partial,
    };
    let all = InputStack::open(&args.inputs, &[], None, Resampling::Nearest)
        .map_err(|e| e.to_string())?;
    let stack = if args.bands.is_empty() {
        all
    } else {
        let selection = args
            .bands
            .iter()
            .map(|b| {
                let found = match b.parse::<usize>() {
                    Ok(i) => all.bands().get(i.wrapping_sub(1)),
                    Err(_) => all.bands().iter().find(|s| &s.info.name == b),
                };
                found
                    .map(|s| (s.source, BandSelector::Index(s.info.index)))
                    .ok_or_else(|| {
                        format!(
                            "no band {b:?} in the inputs (bands: {})",
                            all.bands()
                                .iter()
                                .map(|s| s.info.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    })
            })
            .collect::<Result<Vec<_>, String>>()?;
        InputStack::open(&args.inputs, &selection, None, Resampling::Nearest)
            .map_err(|e| e.to_string())?
    };
    let started = std::time::Instant::now();
    let report = export_image(&stack, &args.prefix, &options).map_err(|e| e.to_string())?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{} patches ({} x {} grid, {} x {} pixels each with the kernel's margins) in {} file(s), {:.1} MB of records in {:.2} s ({:.0} MB/s)",
        report.patches,
        report.grid[0],
        report.grid[1],
        report.buffered[0],
        report.buffered[1],
        report.files.len(),
        report.bytes as f64 / 1e6,
        secs,
        report.bytes as f64 / 1e6 / secs.max(1e-9)
    );
    if report.dropped_masked > 0 {
        println!(
            "{} patches dropped: masked fraction above {}",
            report.dropped_masked, options.max_masked_ratio
        );
    }
    println!(
        "features: {}",
        report
            .features
            .iter()
            .map(|f| if f.planes.len() == 1 {
                f.name.clone()
            } else {
                format!("{} (depth {})", f.name, f.planes.len())
            })
            .collect::<Vec<_>>()
            .join(", ")
    );
    if verbose > 0 {
        for f in &report.files {
            println!("  {}", f.display());
        }
    }
    match &report.mixer {
        Some(m) => println!("mixer: {}", m.display()),
        None => println!("no mixer (max masked ratio is not 1)"),
    }
    Ok(())
}
