//! The `ee-model` command: `ee-model predict` runs Earth Engine's predictImage on local
//! rasters with the model a spec file describes. Each subcommand lives in its own module
//! under `cmd/`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

#[derive(Parser)]
#[command(
    name = "ee-model",
    version,
    about = "Earth Engine's Model.predictImage on your own rasters and model servers"
)]
struct Cli {
    /// More detail: -v for the plan and retries, -vv for every request.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Predict an image: tile the inputs, send them to the model, write a GeoTIFF.
    Predict(cmd::predict::PredictArgs),
    /// Prepare a SavedModel for Earth Engine (base64 TensorProtos in and out), or list it.
    Prepare(cmd::prepare::PrepareArgs),
    /// Serve an ONNX model over TF Serving, AI Platform / Vertex and KServe v2 (REST and gRPC).
    #[cfg(feature = "serve")]
    Serve(cmd::serve::ServeArgs),
    /// Predict feature properties: one instance per feature of a vector file, outputs written
    /// as new fields of a copy in the same format.
    PredictProperties(cmd::predict_properties::PredictPropertiesArgs),
    /// Export rasters as Earth Engine's TFRecord patches (tf.train.Examples) with a mixer.
    ExportTfrecord(cmd::export_tfrecord::ExportTfrecordArgs),
    /// Import prediction records (the export's order) into a GeoTIFF with the export's mixer.
    ImportTfrecord(cmd::import_tfrecord::ImportTfrecordArgs),
    /// Export labelled training samples (pixels or K x K neighbourhoods) as TFRecords.
    ExportTraining(cmd::export_training::ExportTrainingArgs),
}

async fn dispatch(verbose: u8, command: Command) -> Result<(), String> {
    match command {
        Command::Predict(args) => cmd::predict::run(verbose, args).await,
        Command::Prepare(args) => cmd::prepare::run(verbose, args).await,
        #[cfg(feature = "serve")]
        Command::Serve(args) => cmd::serve::run(verbose, args).await,
        Command::PredictProperties(args) => cmd::predict_properties::run(verbose, args).await,
        Command::ExportTfrecord(args) => cmd::export_tfrecord::run(verbose, args).await,
        Command::ImportTfrecord(args) => cmd::import_tfrecord::run(verbose, args).await,
        Command::ExportTraining(args) => cmd::export_training::run(verbose, args).await,
    }
}

fn main() -> ExitCode {
    // Model runs reuse their scratch memory instead of faulting it back in every time.
    ee_runtime::tune_allocator();
    let cli = Cli::parse();
    // A serving node logs every request by default.
    #[cfg(feature = "serve")]
    let serving = matches!(cli.command, Command::Serve(_));
    #[cfg(not(feature = "serve"))]
    let serving = false;
    let level = match cli.verbose {
        0 if serving => tracing::Level::INFO,
        0 => tracing::Level::WARN,
        1 => tracing::Level::INFO,
        _ => tracing::Level::DEBUG,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ee-model: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli.verbose, cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ee-model: error: {e}");
            ExitCode::FAILURE
        }
    }
}
