//! Image export to TFRecord patches, as Earth Engine's `Export.image` with
//! `fileFormat: 'TFRecord'` writes them.
//!
//! The raster is cut into a row-major grid of `patch_dimensions` cores starting at its
//! top-left pixel; each patch is written buffered by `floor(kernel/2)` pixels on every side as
//! one `tf.train.Example` with one `float_list` feature per band (named by the band's
//! description), values row-major (north to south, west to east). Pixels outside the raster
//! or masked get `default_value`. Patches run across shards in order, and a mixer describes
//! the grid.
//!
//! Decisions where Earth Engine's documentation leaves room:
//! - Partial patches at the right and bottom edges are padded with `default_value` so every
//!   pixel is covered; `drop_partial` drops them instead (Earth Engine's own behaviour).
//! - Multi-element features are channel-first (Earth Engine's guide: exported data is ordered
//!   channels, height, width): an array band of depth N is N planes of `h x w`, one after the
//!   other; with `collapse_bands` the single feature holds every band's planes in band order.
//! - GeoTIFF has no array bands, so an "array band" `name` is the bands named `name_0`,
//!   `name_1`, ... (how `ee-model predict` flattens array outputs), or a single band named
//!   `name` (an array of length 1). `tensor_depths` truncates it or pads it with
//!   `default_value` planes to its depth.
//! - The masked fraction compared with `max_masked_ratio` counts every pixel of the buffered
//!   patch that is outside the raster or masked in any band.

use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;

use ee_raster_io::{crs_short_name, InputStack};
use ee_tensor_proto::tfrecord::Compression;
use ee_tiling::Window;

use crate::encode::{encode_example, FeatureData};
use crate::shards::{shard_path, RecordFiles};
use crate::{Error, Mixer, Result};

/// Earth Engine's `TFRecord` image export options (`formatOptions`), plus `drop_partial`.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportOptions {
    /// Core patch `[width, height]` in pixels (`patchDimensions`).
    pub patch_dimensions: [usize; 2],
    /// `[x, y]` kernel (`kernelSize`): each patch is buffered by `floor(k/2)` pixels on both
    /// sides of each axis. `[1, 1]` means no buffer.
    pub kernel_size: [usize; 2],
    /// gzip the records (`.tfrecord.gz`).
    pub compressed: bool,
    /// Largest shard in bytes of uncompressed records (`maxFileSize`); a new shard starts
    /// before a record would exceed it.
    pub max_file_size: u64,
    /// Value written for pixels outside the raster or masked, and for array padding.
    pub default_value: f64,
    /// Array bands and their depths (`tensorDepths`).
    pub tensor_depths: Vec<(String, usize)>,
    /// All bands in one feature named after the first band (`collapseBands`).
    pub collapse_bands: bool,
    /// Patches whose masked fraction exceeds this are not written (`maxMaskedRatio`); any
    /// value but 1 means no mixer.
    pub max_masked_ratio: f64,
    /// Drop the partial patches at the right and bottom edges instead of padding them.
    pub drop_partial: bool,
}

impl Default for ExportOptions {
    /// Earth Engine's defaults: 256 x 256 patches, no kernel, gzip, 1 GiB shards, 0 for
    /// masked pixels, every patch kept; partial edge patches padded.
    fn default() -> Self {
        ExportOptions {
            patch_dimensions: [256, 256],
            kernel_size: [1, 1],
            compressed: true,
            max_file_size: 1 << 30,
            default_value: 0.0,
            tensor_depths: Vec::new(),
            collapse_bands: false,
            max_masked_ratio: 1.0,
            drop_partial: false,
        }
    }
}

/// One feature of every exported Example.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeatureLayout {
    /// The feature's name.
    pub name: String,
    /// Planes of `height x width` it holds, in order: a stack band index, or `None` for a
    /// plane of `default_value` (array padding).
    pub planes: Vec<Option<usize>>,
}

/// What an export wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportReport {
    /// The record files, in order.
    pub files: Vec<PathBuf>,
    /// The mixer, when written.
    pub mixer: Option<PathBuf>,
    /// Patches per row and rows of patches of the grid.
    pub grid: [usize; 2],
    /// Patches written.
    pub patches: u64,
    /// Patches dropped for exceeding `max_masked_ratio`.
    pub dropped_masked: u64,
    /// The features of every Example.
    pub features: Vec<FeatureLayout>,
    /// Buffered patch `[width, height]`: each plane holds `width * height` values.
    pub buffered: [usize; 2],
    /// Uncompressed bytes of records written.
    pub bytes: u64,
}

impl ExportOptions {
    fn check(&self) -> Result<()> {
        let [w, h] = self.patch_dimensions;
        if w == 0 || h == 0 {
            return Err(Error::Options(format!(
                "patch dimensions [{w}, {h}] have a zero side"
            )));
        }
        let [kx, ky] = self.kernel_size;
        if kx == 0 || ky == 0 {
            return Err(Error::Options(format!(
                "kernel size [{kx}, {ky}] has a zero side (use [1, 1] for none)"
            )));
        }
        if !(0.0..=1.0).contains(&self.max_masked_ratio) {
            return Err(Error::Options(format!(
                "max masked ratio {} is not between 0 and 1",
                self.max_masked_ratio
            )));
        }
        if self.max_file_size == 0 {
            return Err(Error::Options("max file size is 0 bytes".into()));
        }
        if !self.default_value.is_finite() && !self.default_value.is_nan() {
            return Err(Error::Options(format!(
                "default value {} does not fit a float",
                self.default_value
            )));
        }
        Ok(())
    }

    /// Per-side margins `[x, y]`.
    pub fn margins(&self) -> [usize; 2] {
        [self.kernel_size[0] / 2, self.kernel_size[1] / 2]
    }

    /// The buffered patch `[width, height]`.
    pub fn buffered(&self) -> [usize; 2] {
        let [mx, my] = self.margins();
        [
            self.patch_dimensions[0] + 2 * mx,
            self.patch_dimensions[1] + 2 * my,
        ]
    }
}

/// The index `i` when `band` is `name_<i>`.
fn array_element(band: &str, name: &str) -> Option<usize> {
    let rest = band.strip_prefix(name)?.strip_prefix('_')?;
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.parse().ok()
}

/// The features of every Example, from the band names and the options.
pub fn plan_features(band_names: &[String], options: &ExportOptions) -> Result<Vec<FeatureLayout>> {
    // Each band goes to one feature; array features sit where their first band was.
    let mut owner: Vec<Option<usize>> = vec![None; band_names.len()];
    let mut arrays: Vec<FeatureLayout> = Vec::new();
    for (name, depth) in &options.tensor_depths {
        if *depth == 0 {
            return Err(Error::Options(format!("tensor depth of {name:?} is 0")));
        }
        let mut members: Vec<(usize, usize)> = band_names
            .iter()
            .enumerate()
            .filter_map(|(b, n)| array_element(n, name).map(|i| (i, b)))
            .collect();
        members.sort();
        if members.is_empty() {
            if let Some(b) = band_names.iter().position(|n| n == name) {
                members.push((0, b));
            }
        }
        if members.is_empty() {
            return Err(Error::Options(format!(
                "tensor depth given for {name:?} but no band is named {name:?} or {name}_0, {name}_1, ... (bands: {})",
                band_names.join(", ")
            )));
        }
        for (k, &(i, b)) in members.iter().enumerate() {
            if i != k {
                return Err(Error::Options(format!(
                    "array band {name:?}: element {k} is missing (found {name}_{i} after {} elements)",
                    k
                )));
            }
            if owner[b].is_some() {
                return Err(Error::Options(format!(
                    "band {:?} belongs to two array bands",
                    band_names[b]
                )));
            }
            owner[b] = Some(arrays.len());
        }
        let mut planes: Vec<Option<usize>> = members.iter().map(|&(_, b)| Some(b)).collect();
        planes.resize(*depth, None);
        arrays.push(FeatureLayout {
            name: name.clone(),
            planes,
        });
    }
    let mut features = Vec::new();
    let mut placed = vec![false; arrays.len()];
    for (b, name) in band_names.iter().enumerate() {
        match owner[b] {
            Some(a) if !placed[a] => {
                placed[a] = true;
                features.push(arrays[a].clone());
            }
            Some(_) => {}
            None => features.push(FeatureLayout {
                name: name.clone(),
                planes: vec![Some(b)],
            }),
        }
    }
    for (i, f) in features.iter().enumerate() {
        if features[..i].iter().any(|g| g.name == f.name) {
            return Err(Error::Options(format!(
                "two features would be named {:?}; give the bands distinct descriptions or select them with --bands",
                f.name
            )));
        }
    }
    if options.collapse_bands {
        // Earth Engine names it after the image's first band; here that is the first
        // feature (an array band when the first band belongs to one).
        let name = features.first().map(|f| f.name.clone()).unwrap_or_default();
        let planes = features.into_iter().flat_map(|f| f.planes).collect();
        return Ok(vec![FeatureLayout { name, planes }]);
    }
    Ok(features)
}

/// The name of the mixer of `prefix`: `PREFIX-mixer.json`.
pub fn mixer_path(prefix: &Path) -> PathBuf {
    let mut name = prefix
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push("-mixer.json");
    prefix.with_file_name(name)
}

/// Exports every band of `stack` as patches under `prefix` (`DIR/NAME` gives
/// `DIR/NAME-00000.tfrecord.gz`, ..., `DIR/NAME-mixer.json`). Shards of the same prefix left
/// by an earlier export beyond the ones written are removed.
pub fn export_image(
    stack: &InputStack,
    prefix: &Path,
    options: &ExportOptions,
) -> Result<ExportReport> {
    options.check()?;
    if prefix.file_name().is_none() {
        return Err(Error::Options(format!(
            "export prefix {} has no file name part (expected DIR/NAME)",
            prefix.display()
        )));
    }
    if let Some(dir) = prefix.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(crate::error::io_err(dir))?;
    }
    let names: Vec<String> = stack.bands().iter().map(|b| b.info.name.clone()).collect();
    let features = plan_features(&names, options)?;
    let size = stack.grid().size;
    let [pw, ph] = options.patch_dimensions;
    let [mx, my] = options.margins();
    let [bw, bh] = options.buffered();
    let (cols, rows) = if options.drop_partial {
        (size.width / pw, size.height / ph)
    } else {
        (size.width.div_ceil(pw), size.height.div_ceil(ph))
    };
    if cols == 0 || rows == 0 {
        return Err(Error::Options(format!(
            "a {}x{} raster holds no whole {pw}x{ph} patch (drop_partial drops partial ones)",
            size.width, size.height
        )));
    }
    let compression = if options.compressed {
        Compression::Gzip
    } else {
        Compression::None
    };
    let fill = options.default_value as f32;
    let padding = vec![fill; bw * bh];
    let threshold = options.max_masked_ratio;
    let mut dropped = 0u64;

    // This thread reads and encodes; a second compresses and writes.
    let (tx, rx) = sync_channel::<Vec<u8>>(16);
    let (ret_tx, ret_rx) = sync_channel::<Vec<u8>>(32);
    let mut files = RecordFiles::sharded(prefix.to_path_buf(), compression, options.max_file_size);
    let outcome = std::thread::scope(|scope| -> Result<(RecordFiles, u64)> {
        let writer = scope.spawn(move || -> Result<RecordFiles> {
            for record in rx {
                files.write(&record)?;
                let _ = ret_tx.try_send(record);
            }
            Ok(files)
        });
        let read = (|| -> Result<()> {
            for r in 0..rows {
                for c in 0..cols {
                    let window = Window::new(
                        (c * pw) as i64 - mx as i64,
                        (r * ph) as i64 - my as i64,
                        bw,
                        bh,
                    );
                    let data = stack.read_window::<f32>(window, fill)?;
                    let masked = data.valid.iter().filter(|v| !**v).count();
                    if threshold < 1.0 && masked as f64 > threshold * (bw * bh) as f64 {
                        dropped += 1;
                        continue;
                    }
                    let values = data.values.as_slice().ok_or_else(|| {
                        Error::Options("internal: window values not contiguous".into())
                    })?;
                    let plane = |p: Option<usize>| match p {
                        Some(b) => &values[b * bw * bh..(b + 1) * bw * bh],
                        None => &padding[..],
                    };
                    let chunks: Vec<Vec<&[f32]>> = features
                        .iter()
                        .map(|f| f.planes.iter().map(|&p| plane(p)).collect())
                        .collect();
                    let list: Vec<(&str, FeatureData<'_>)> = features
                        .iter()
                        .zip(&chunks)
                        .map(|(f, ch)| (f.name.as_str(), FeatureData::Float(ch)))
                        .collect();
                    let mut buf = ret_rx.try_recv().unwrap_or_default();
                    buf.clear();
                    encode_example(&mut buf, &list);
                    if tx.send(buf).is_err() {
                        // The writer stopped: its error is reported below.
                        return Ok(());
                    }
                }
            }
            Ok(())
        })();
        drop(tx);
        let files = writer
            .join()
            .map_err(|_| Error::Options("the record writer thread panicked".into()))??;
        read?;
        Ok((files, dropped))
    })?;
    let (files, dropped) = outcome;
    let patches = files.records();
    let bytes = files.bytes();
    let written = files.finish(false)?;
    // Shards of an earlier, longer export under the same prefix would be read as ours.
    for c in [Compression::None, Compression::Gzip] {
        let mut i = if c == compression { written.len() } else { 0 };
        loop {
            let stale = shard_path(prefix, i, c);
            if !stale.is_file() {
                break;
            }
            std::fs::remove_file(&stale).map_err(crate::error::io_err(&stale))?;
            i += 1;
        }
    }
    let mixer = if options.max_masked_ratio == 1.0 {
        let path = mixer_path(prefix);
        let grid = stack.grid();
        Mixer::new(
            crs_short_name(&grid.crs_wkt),
            grid.transform,
            options.patch_dimensions,
            cols,
            cols * rows,
        )
        .write(&path)?;
        Some(path)
    } else {
        let _ = std::fs::remove_file(mixer_path(prefix));
        None
    };
    Ok(ExportReport {
        files: written,
        mixer,
        grid: [cols, rows],
        patches,
        dropped_masked: dropped,
        features,
        buffered: [bw, bh],
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn one_feature_per_band_by_default() {
        let f = plan_features(&names(&["B1", "B2"]), &ExportOptions::default()).unwrap();
        assert_eq!(
            f,
            vec![
                FeatureLayout {
                    name: "B1".into(),
                    planes: vec![Some(0)]
                },
                FeatureLayout {
                    name: "B2".into(),
                    planes: vec![Some(1)]
                },
            ]
        );
    }

    #[test]
    fn tensor_depths_group_pad_and_truncate() {
        let bands = names(&["B1", "emb_1", "emb_0", "emb_2", "x"]);
        let opts = ExportOptions {
            tensor_depths: vec![("emb".into(), 5), ("x".into(), 2)],
            ..Default::default()
        };
        let f = plan_features(&bands, &opts).unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(
            f[1],
            FeatureLayout {
                name: "emb".into(),
                planes: vec![Some(2), Some(1), Some(3), None, None]
            }
        );
        assert_eq!(
            f[2],
            FeatureLayout {
                name: "x".into(),
                planes: vec![Some(4), None]
            }
        );
        let opts = ExportOptions {
            tensor_depths: vec![("emb".into(), 2)],
            ..Default::default()
        };
        let f = plan_features(&bands, &opts).unwrap();
        assert_eq!(f[1].planes, vec![Some(2), Some(1)]);
        assert_eq!(f.len(), 3); // emb_2 truncated away, not a feature of its own
        let opts = ExportOptions {
            tensor_depths: vec![("nope".into(), 2)],
            ..Default::default()
        };
        let err = plan_features(&bands, &opts).unwrap_err().to_string();
        assert!(err.contains("no band is named \"nope\""), "{err}");
    }

    #[test]
    fn collapse_takes_the_first_bands_name() {
        let opts = ExportOptions {
            collapse_bands: true,
            tensor_depths: vec![("a".into(), 3)],
            ..Default::default()
        };
        let f = plan_features(&names(&["B1", "a_0", "a_1", "B2"]), &opts).unwrap();
        let g = plan_features(&names(&["a_0", "B1", "a_1"]), &opts).unwrap();
        assert_eq!(g[0].name, "a");
        assert_eq!(g[0].planes, vec![Some(0), Some(2), None, Some(1)]);
        assert_eq!(
            f,
            vec![FeatureLayout {
                name: "B1".into(),
                planes: vec![Some(0), Some(1), Some(2), None, Some(3)]
            }]
        );
    }

    #[test]
    fn duplicate_names_and_bad_options_are_refused() {
        let err = plan_features(&names(&["b1", "b1"]), &ExportOptions::default()).unwrap_err();
        assert!(err
            .to_string()
            .contains("two features would be named \"b1\""));
        for bad in [
            ExportOptions {
                patch_dimensions: [0, 4],
                ..Default::default()
            },
            ExportOptions {
                kernel_size: [0, 1],
                ..Default::default()
            },
            ExportOptions {
                max_masked_ratio: 1.5,
                ..Default::default()
            },
            ExportOptions {
                max_file_size: 0,
                ..Default::default()
            },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
        assert_eq!(
            ExportOptions {
                kernel_size: [5, 4],
                ..Default::default()
            }
            .margins(),
            [2, 2]
        );
    }
}
