//! `ee-model export-training`: labelled pixels (and their neighbourhoods) as tf.train.Examples
//! for training, sampled from a label raster or at labelled points.

use std::path::PathBuf;

use clap::Args;
use ee_patches::{export_training, LabelSource, TrainingOptions};

/// `ee-model export-training`: sample labelled pixels into TFRecord files.
#[derive(Args)]
pub struct ExportTrainingArgs {
    /// Input raster(s), bands stacked in order.
    #[arg(long = "input", required = true)]
    inputs: Vec<PathBuf>,
    /// Label raster (band 1; integer types give int64 labels, stratified sampling).
    #[arg(long, conflicts_with = "points", required_unless_present = "points")]
    labels: Option<PathBuf>,
    /// Labelled points (any vector format GDAL reads).
    #[arg(long)]
    points: Option<PathBuf>,
    /// The points' label property.
    #[arg(long, default_value = "label")]
    property: String,
    /// Output file (.tfrecord or .tfrecord.gz); with --split, one file per split beside it
    /// (OUT-train.tfrecord.gz, ...).
    #[arg(long)]
    output: PathBuf,
    /// Neighbourhood side K (odd): each band becomes K*K values, row-major.
    #[arg(long, default_value_t = 1)]
    kernel: usize,
    /// Samples per class (integer labels) or in all (real labels); default every one.
    #[arg(long)]
    samples: Option<usize>,
    /// Seed of the random sampling, splitting and shuffling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Splits and fractions, e.g. train=0.7,eval=0.3.
    #[arg(long, value_delimiter = ',')]
    split: Vec<String>,
    /// Value for neighbours outside the raster or masked.
    #[arg(long, default_value_t = 0.0)]
    default_value: f64,
    /// Name of the label feature (default: "label", or the property's name for points).
    #[arg(long)]
    label_name: Option<String>,
}

/// Runs the export.
pub async fn run(verbose: u8, args: ExportTrainingArgs) -> Result<(), String> {
    tokio::task::spawn_blocking(move || run_blocking(verbose, args))
        .await
        .map_err(|e| format!("the export stopped: {e}"))?
}

fn run_blocking(_verbose: u8, args: ExportTrainingArgs) -> Result<(), String> {
    let labels = match (args.labels, args.points) {
        (Some(path), None) => LabelSource::Raster(path),
        (None, Some(path)) => LabelSource::Points {
            path,
            property: args.property,
        },
        _ => return Err("give either --labels or --points".into()),
    };
    let options = TrainingOptions {
        kernel: args.kernel,
        samples: args.samples,
        seed: args.seed,
        splits: super::export_tfrecord::pairs(&args.split, "split")?,
        default_value: args.default_value,
        label_name: args.label_name,
    };
    let report = export_training(&args.inputs, &labels, &args.output, &options)
        .map_err(|e| e.to_string())?;
    println!(
        "{} candidate pixels; features {} ({} values each) and {:?} ({})",
        report.candidates,
        report.bands.join(", "),
        args.kernel * args.kernel,
        report.label,
        if report.integer_labels {
            "int64"
        } else {
            "float"
        }
    );
    if report.skipped_points > 0 {
        println!(
            "{} points outside the raster or on masked pixels skipped",
            report.skipped_points
        );
    }
    for s in &report.splits {
        let per: Vec<String> = if s.per_label.len() <= 20 {
            s.per_label
                .iter()
                .map(|(l, n)| format!("{l}: {n}"))
                .collect()
        } else {
            vec![format!("{} distinct labels", s.per_label.len())]
        };
        println!(
            "{}{} records -> {} ({})",
            if s.name.is_empty() {
                String::new()
            } else {
                format!("{}: ", s.name)
            },
            s.records,
            s.path.display(),
            per.join(", ")
        );
    }
    Ok(())
}
