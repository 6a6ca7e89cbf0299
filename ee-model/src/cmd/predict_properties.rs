//! `ee-model predict-properties`: Earth Engine's predictProperties over a vector file (any
//! format OGR reads) with the model a spec file describes; the outputs become new fields of
//! a copy of the file.

use std::path::PathBuf;

use clap::Args;
use ee_model::{Model, ModelSpec, PropertiesOptions};

/// `ee-model predict-properties`: one instance per feature, outputs as new fields.
#[derive(Args)]
pub struct PredictPropertiesArgs {
    /// The model spec (JSON, Earth Engine's parameter names, with outputProperties).
    #[arg(long)]
    spec: PathBuf,
    /// Input features: GeoJSON, GeoPackage, CSV, Shapefile... (anything OGR reads).
    #[arg(long)]
    input: PathBuf,
    /// Output file, written in the input's format unless --format says otherwise.
    #[arg(long)]
    output: PathBuf,
    /// Write features with a missing or non-numeric input with null outputs, and count them,
    /// instead of failing.
    #[arg(long)]
    skip_invalid: bool,
    /// OGR driver of the output (GeoJSON, GPKG, CSV, "ESRI Shapefile", FlatGeobuf...).
    #[arg(long)]
    format: Option<String>,
    /// The layer to read, when the input has several.
    #[arg(long)]
    layer: Option<String>,
}

/// Runs the command.
pub async fn run(verbose: u8, args: PredictPropertiesArgs) -> Result<(), String> {
    let spec = ModelSpec::from_file(&args.spec).map_err(|e| e.to_string())?;
    let model = Model::new(spec).map_err(|e| e.to_string())?;
    if verbose > 0 {
        eprintln!("ee-model: predicting with {}", model.describe());
    }
    let options = PropertiesOptions {
        skip_invalid: args.skip_invalid,
        format: args.format,
        layer: args.layer,
    };
    let report = model
        .predict_properties(&args.input, &args.output, &options)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "wrote {} ({}, layer {:?}) in {:.1} s: {} features, {} predicted, {} skipped; inputs {}; new fields {}{}",
        report.output.display(),
        report.driver,
        report.layer,
        report.elapsed.as_secs_f64(),
        report.features,
        report.predicted,
        report.skipped,
        report.inputs.join(", "),
        report.fields.join(", "),
        if report.lists { " (arrays as list fields)" } else { "" }
    );
    println!(
        "{} {}",
        report.requests,
        if report.local {
            "model runs"
        } else {
            "requests"
        }
    );
    if let Some(m) = &report.metrics {
        println!("requests: {m}");
    }
    if report.clamped > 0 {
        eprintln!(
            "ee-model: {} integer output values were outside their declared type (or NaN) and were clamped to it",
            report.clamped
        );
    }
    for reason in &report.skipped_reasons {
        eprintln!("ee-model: skipped {reason}");
    }
    if report.skipped > report.skipped_reasons.len() {
        eprintln!(
            "ee-model: ... and {} more skipped",
            report.skipped - report.skipped_reasons.len()
        );
    }
    Ok(())
}
