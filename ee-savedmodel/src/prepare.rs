//! `prepare` on directories: read the source SavedModel, rewrite its graph, write the
//! destination with the variables checkpoint and the assets carried over unchanged.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::model::read_saved_model_pb;
use crate::rewrite::{rewrite, Prepared};
use crate::spec::TensorMap;

/// Options of [`prepare`], Earth Engine's `--tag` and `--variables`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrepareOptions {
    /// The tag of the meta graph to prepare (default `serve`). The result is tagged `serve`.
    pub tag: String,
    /// Where the variables checkpoint lies, as a prefix relative to the source directory
    /// (default `/variables/variables`, i.e. `variables/variables.index` and
    /// `variables/variables.data-*`). The files are copied to the standard place,
    /// `variables/variables.*`, of the destination.
    pub variables: String,
}

impl Default for PrepareOptions {
    fn default() -> Self {
        PrepareOptions {
            tag: "serve".to_string(),
            variables: "/variables/variables".to_string(),
        }
    }
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(|e| Error::io("create directory", to, e))?;
    let entries = std::fs::read_dir(from).map_err(|e| Error::io("read directory", from, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("read directory", from, e))?;
        let source = entry.path();
        let target = to.join(entry.file_name());
        let kind = entry
            .file_type()
            .map_err(|e| Error::io("inspect", &source, e))?;
        if kind.is_dir() {
            copy_dir(&source, &target)?;
        } else {
            std::fs::copy(&source, &target).map_err(|e| Error::io("copy", &source, e))?;
        }
    }
    Ok(())
}

/// The checkpoint files under `prefix`: `prefix.index` and `prefix.data-*`.
fn checkpoint_files(prefix: &Path) -> Result<Vec<PathBuf>> {
    let dir = prefix.parent().unwrap_or(Path::new("."));
    let stem = prefix
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut files = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(files),
        Err(e) => return Err(Error::io("read directory", dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("read directory", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(rest) = name.strip_prefix(&stem) {
            if rest == ".index" || rest.starts_with(".data-") {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Prepares the SavedModel in `source` for Earth Engine into `dest` (which must not exist or be
/// empty): each input named by `inputs` becomes a batch of URL-safe base64 strings of
/// serialized TensorProtos (`earthengine_in_i`), each output named by `outputs` gives the same
/// (`earthengine_out_j`), under one `serving_default` predict signature keyed by the names the
/// maps give. Variables and assets are copied unchanged.
pub fn prepare(
    source: &Path,
    dest: &Path,
    inputs: &TensorMap,
    outputs: &TensorMap,
    options: &PrepareOptions,
) -> Result<Prepared> {
    let (path, bytes) = read_saved_model_pb(source)?;
    let (out, prepared) = rewrite(&path, &bytes, inputs, outputs, &options.tag)?;

    let relative = options.variables.trim_start_matches('/');
    let prefix = source.join(relative);
    let variables = checkpoint_files(&prefix)?;
    let index = PathBuf::from(format!("{}.index", prefix.display()));
    if prepared.has_saver && !variables.iter().any(|f| f == &index) {
        return Err(Error::MissingVariables { path: index });
    }

    match std::fs::read_dir(dest) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(Error::DestinationExists {
                    path: dest.to_path_buf(),
                });
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("read directory", dest, e)),
    }
    let var_dir = dest.join("variables");
    std::fs::create_dir_all(&var_dir).map_err(|e| Error::io("create directory", &var_dir, e))?;
    let stem = prefix
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    for file in &variables {
        let name = file
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let target = var_dir.join(format!("variables{}", &name[stem.len()..]));
        std::fs::copy(file, &target).map_err(|e| Error::io("copy", file, e))?;
    }
    for extra in ["assets", "assets.extra"] {
        let dir = source.join(extra);
        if dir.is_dir() {
            copy_dir(&dir, &dest.join(extra))?;
        }
    }
    let pb = dest.join("saved_model.pb");
    std::fs::write(&pb, out).map_err(|e| Error::io("write", &pb, e))?;
    Ok(prepared)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ee-savedmodel-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn maps() -> (TensorMap, TensorMap) {
        (
            TensorMap::parse("--input", "x").unwrap(),
            TensorMap::parse("--output", "output_0").unwrap(),
        )
    }

    #[test]
    fn variables_and_assets_are_copied_unchanged_and_the_fingerprint_is_not() {
        let dest = scratch("copy");
        let (i, o) = maps();
        let source = fixture("keras");
        prepare(&source, &dest, &i, &o, &PrepareOptions::default()).unwrap();
        for f in ["variables.index", "variables.data-00000-of-00001"] {
            assert_eq!(
                std::fs::read(dest.join("variables").join(f)).unwrap(),
                std::fs::read(source.join("variables").join(f)).unwrap(),
                "{f}"
            );
        }
        assert!(dest.join("saved_model.pb").exists());
        assert!(
            !dest.join("fingerprint.pb").exists(),
            "the source's fingerprint would not match the new graph"
        );
        // A second run into the now full destination refuses.
        let e = prepare(&source, &dest, &i, &o, &PrepareOptions::default())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("already exists and is not empty"), "{e}");
        std::fs::remove_dir_all(&dest).unwrap();
    }

    #[test]
    fn a_checkpoint_elsewhere_is_found_through_variables_and_put_in_its_standard_place() {
        let source = scratch("moved-src");
        let dest = scratch("moved-dest");
        std::fs::create_dir_all(source.join("ckpt")).unwrap();
        std::fs::create_dir_all(source.join("assets/sub")).unwrap();
        std::fs::write(source.join("assets/sub/vocab.txt"), "a\nb\n").unwrap();
        std::fs::copy(
            fixture("keras").join("saved_model.pb"),
            source.join("saved_model.pb"),
        )
        .unwrap();
        for (from, to) in [
            ("variables.index", "model.index"),
            ("variables.data-00000-of-00001", "model.data-00000-of-00001"),
        ] {
            std::fs::copy(
                fixture("keras").join("variables").join(from),
                source.join("ckpt").join(to),
            )
            .unwrap();
        }
        let (i, o) = maps();
        let e = prepare(&source, &dest, &i, &o, &PrepareOptions::default())
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("variables/variables.index does not exist (check --variables)"),
            "{e}"
        );
        let options = PrepareOptions {
            variables: "/ckpt/model".into(),
            ..Default::default()
        };
        prepare(&source, &dest, &i, &o, &options).unwrap();
        assert!(dest.join("variables/variables.index").exists());
        assert!(dest
            .join("variables/variables.data-00000-of-00001")
            .exists());
        assert_eq!(
            std::fs::read_to_string(dest.join("assets/sub/vocab.txt")).unwrap(),
            "a\nb\n"
        );
        std::fs::remove_dir_all(&source).unwrap();
        std::fs::remove_dir_all(&dest).unwrap();
    }

    #[test]
    fn a_missing_source_is_named() {
        let (i, o) = maps();
        let e = prepare(
            Path::new("/nonexistent/model"),
            &scratch("never"),
            &i,
            &o,
            &PrepareOptions::default(),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            e.contains("/nonexistent/model is not a SavedModel directory"),
            "{e}"
        );
    }
}
