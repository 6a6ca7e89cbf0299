//! `ee-model prepare`: Earth Engine's `earthengine model prepare` without TensorFlow. Rewrites
//! a SavedModel so each named input takes a batch of URL-safe base64 serialized TensorProtos
//! and each named output gives the same; `--list` shows the names to use.

use std::path::{Path, PathBuf};

use clap::Args;
use ee_savedmodel::{list, prepare, Listing, PrepareOptions, TensorMap};

/// `ee-model prepare`: make a SavedModel servable for Earth Engine (base64 TensorProtos in
/// and out), or list its signatures.
#[derive(Args)]
pub struct PrepareArgs {
    /// Print the signatures (keys, graph tensors, dtypes, shapes) and placeholders of this
    /// SavedModel directory, and a prepare command for its serving signature; nothing is
    /// written.
    #[arg(long, value_name = "SRC", conflicts_with_all = ["source_dir", "dest_dir", "input", "output"])]
    list: Option<PathBuf>,
    /// The SavedModel directory to prepare.
    #[arg(long, alias = "source_dir", required_unless_present = "list")]
    source_dir: Option<PathBuf>,
    /// Where to write the prepared SavedModel (must not exist or be empty).
    #[arg(long, alias = "dest_dir", required_unless_present = "list")]
    dest_dir: Option<PathBuf>,
    /// The inputs: a comma list of graph tensors, signature keys or node names, or a JSON map
    /// from those to band names, e.g. '{"serving_default_x:0": "B"}' or '{"x": "B"}'.
    #[arg(long, required_unless_present = "list")]
    input: Option<String>,
    /// The outputs, as for --input, e.g. '{"output_0": "water"}'.
    #[arg(long, required_unless_present = "list")]
    output: Option<String>,
    /// The tag of the meta graph to prepare (the result is tagged `serve`).
    #[arg(long, default_value = "serve")]
    tag: String,
    /// The variables checkpoint prefix, relative to the source directory.
    #[arg(long, default_value = "/variables/variables")]
    variables: String,
}

/// Shell-quotes `s` in single quotes.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A ready-to-edit prepare command for the serving signature of the `serve` meta graph (or the
/// first signature there is).
fn suggestion(listing: &Listing, source: &Path) -> Option<String> {
    let mg = listing
        .meta_graphs
        .iter()
        .find(|m| m.tags.iter().any(|t| t == "serve"))
        .or_else(|| listing.meta_graphs.first())?;
    let sig = mg
        .signatures
        .iter()
        .find(|s| s.key == "serving_default")
        .or_else(|| mg.signatures.first())?;
    let map = |entries: &[ee_savedmodel::TensorEntry]| {
        let object: serde_json::Map<String, serde_json::Value> = entries
            .iter()
            .map(|e| (e.tensor.clone(), e.key.clone().into()))
            .collect();
        serde_json::Value::Object(object).to_string()
    };
    let tag = mg
        .tags
        .iter()
        .any(|t| t == "serve")
        .then(String::new)
        .or_else(|| mg.tags.first().map(|t| format!(" --tag {}", quote(t))))
        .unwrap_or_default();
    Some(format!(
        "ee-model prepare --source-dir {} --dest-dir DEST --input {} --output {}{tag}",
        quote(&source.display().to_string()),
        quote(&map(&sig.inputs)),
        quote(&map(&sig.outputs)),
    ))
}

/// Runs `ee-model prepare`.
pub async fn run(_verbose: u8, args: PrepareArgs) -> Result<(), String> {
    if let Some(source) = args.list {
        let listing = list(&source).map_err(|e| e.to_string())?;
        print!("{listing}");
        if let Some(command) = suggestion(&listing, &source) {
            println!("prepare its serving signature (band names = signature keys) with:");
            println!("  {command}");
        }
        return Ok(());
    }
    // clap enforces these when --list is absent.
    let missing = |flag: &str| format!("{flag} is required (or use --list SRC)");
    let source = args.source_dir.ok_or_else(|| missing("--source-dir"))?;
    let dest = args.dest_dir.ok_or_else(|| missing("--dest-dir"))?;
    let input = args.input.ok_or_else(|| missing("--input"))?;
    let output = args.output.ok_or_else(|| missing("--output"))?;
    let inputs = TensorMap::parse("--input", &input).map_err(|e| e.to_string())?;
    let outputs = TensorMap::parse("--output", &output).map_err(|e| e.to_string())?;
    let options = PrepareOptions {
        tag: args.tag,
        variables: args.variables,
    };
    let prepared = tokio::task::spawn_blocking(move || {
        prepare(&source, &dest, &inputs, &outputs, &options)
            .map(|p| (p, dest))
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| format!("prepare stopped: {e}"))??;
    let (prepared, dest) = prepared;
    println!(
        "prepared {}: signature \"serving_default\" (tag serve)",
        dest.display()
    );
    for i in &prepared.inputs {
        println!(
            "  input  {:<16} {:<22} base64 {} TensorProtos -> {}",
            i.name, i.placeholder, i.dtype, i.feeds
        );
    }
    for o in &prepared.outputs {
        println!(
            "  output {:<16} {:<22} base64 {} TensorProtos <- {}",
            o.name, o.tensor, o.dtype, o.source
        );
    }
    Ok(())
}
