//! `ee-model import-tfrecord`: prediction records in an export's order, put back on the map
//! with the export's mixer.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use ee_patches::{import_predictions, DepthLayout, ImportOptions, Mixer};
use ee_raster_io::{Compression, WriteOptions};

#[derive(Clone, Copy, ValueEnum)]
enum Layout {
    /// [depth, h, w]: plane after plane (what export-tfrecord writes).
    Chw,
    /// [h, w, depth]: each pixel's elements together.
    Hwc,
}

#[derive(Clone, Copy, ValueEnum)]
enum Compress {
    Deflate,
    Zstd,
    None,
}

/// `ee-model import-tfrecord`: prediction records + mixer -> GeoTIFF.
#[derive(Args)]
pub struct ImportTfrecordArgs {
    /// The export's DIR/NAME-mixer.json.
    #[arg(long)]
    mixer: PathBuf,
    /// Output GeoTIFF.
    #[arg(long)]
    output: PathBuf,
    /// Prediction record files, in the export's order (gzip or plain).
    #[arg(required = true)]
    records: Vec<PathBuf>,
    /// The export's kernel X,Y when predictions carry its margins (default: detect core
    /// patches and equal margins).
    #[arg(long, value_delimiter = ',')]
    kernel_size: Option<Vec<usize>>,
    /// Features to import, in band order (default: all, sorted by name).
    #[arg(long, value_delimiter = ',')]
    bands: Vec<String>,
    /// Order of the values of multi-element features.
    #[arg(long, value_enum, default_value = "chw")]
    depth_layout: Layout,
    /// Block compression of the output.
    #[arg(long, value_enum, default_value = "deflate")]
    compression: Compress,
}

/// Runs the import.
pub async fn run(verbose: u8, args: ImportTfrecordArgs) -> Result<(), String> {
    tokio::task::spawn_blocking(move || run_blocking(verbose, args))
        .await
        .map_err(|e| format!("the import stopped: {e}"))?
}

fn run_blocking(_verbose: u8, args: ImportTfrecordArgs) -> Result<(), String> {
    let mixer = Mixer::read(&args.mixer).map_err(|e| e.to_string())?;
    let options = ImportOptions {
        kernel_size: match args.kernel_size {
            Some(k) => Some(super::export_tfrecord::pair(&k, "--kernel-size")?),
            None => None,
        },
        features: args.bands,
        depth_layout: match args.depth_layout {
            Layout::Chw => DepthLayout::ChannelsFirst,
            Layout::Hwc => DepthLayout::ChannelsLast,
        },
        write: WriteOptions {
            compression: match args.compression {
                Compress::Deflate => Compression::Deflate,
                Compress::Zstd => Compression::Zstd,
                Compress::None => Compression::None,
            },
            ..Default::default()
        },
    };
    let started = std::time::Instant::now();
    let report = import_predictions(&mixer, &args.records, &args.output, &options)
        .map_err(|e| e.to_string())?;
    println!(
        "{} records -> {} ({} x {} pixels, bands {}) in {:.2} s",
        report.records,
        report.output.display(),
        report.size.width,
        report.size.height,
        report.bands.join(", "),
        started.elapsed().as_secs_f64()
    );
    for (name, depth, margins) in &report.features {
        if margins != &[0, 0] || *depth > 1 {
            println!(
                "  {name}: depth {depth}, margins {} x {} cropped",
                margins[0], margins[1]
            );
        }
    }
    Ok(())
}
