//! Lists a SavedModel, then prepares it for Earth Engine.
//!
//! ```sh
//! cargo run -p ee-savedmodel --example prepare -- SRC DEST '{"x": "B"}' '{"output_0": "out"}'
//! ```
//!
//! With only SRC it just lists the signatures.

use std::path::Path;

use ee_savedmodel::{list, prepare, PrepareOptions, TensorMap};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(source) = args.first() else {
        return Err("usage: prepare SRC [DEST INPUTS OUTPUTS]".into());
    };
    print!("{}", list(Path::new(source))?);
    if let [_, dest, inputs, outputs] = args.as_slice() {
        let prepared = prepare(
            Path::new(source),
            Path::new(dest),
            &TensorMap::parse("--input", inputs)?,
            &TensorMap::parse("--output", outputs)?,
            &PrepareOptions::default(),
        )?;
        for i in &prepared.inputs {
            println!(
                "input  {} = {} ({}) -> {}",
                i.name, i.placeholder, i.dtype, i.feeds
            );
        }
        for o in &prepared.outputs {
            println!(
                "output {} = {} ({}) <- {}",
                o.name, o.tensor, o.dtype, o.source
            );
        }
    }
    Ok(())
}
