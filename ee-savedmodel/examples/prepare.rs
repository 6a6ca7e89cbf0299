//! Lists a SavedModel, then prepares it for Earth Engine.
//!
//! ```sh
//! cargo run -p ee-savedmodel --example prepare -- SRC DEST '{"x": "B"}' '{"output_0": "out"}'
//! ```
//!
//! With only SRC it just lists the signatures. With no arguments it prepares the committed
//! Keras fixture (`tests/fixtures/keras`, input `x`, output `output_0`) into a folder in the
//! system temp directory, then lists the result.

use std::path::Path;

use ee_savedmodel::{list, prepare, PrepareOptions, TensorMap};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let demo = args.is_empty();
    if demo {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keras");
        let dest = std::env::temp_dir().join("ee-savedmodel-prepare-example");
        // prepare writes a new folder.
        if dest.exists() {
            std::fs::remove_dir_all(&dest)?;
        }
        args = vec![
            fixture.display().to_string(),
            dest.display().to_string(),
            r#"{"x": "B"}"#.into(),
            r#"{"output_0": "out"}"#.into(),
        ];
        println!("preparing {} into {}", args[0], args[1]);
    }
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
        println!("prepared; the result lists as:");
        print!("{}", list(Path::new(dest))?);
    }
    Ok(())
}
