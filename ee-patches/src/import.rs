//! Prediction import: TFRecord files of `tf.train.Example`s, one per patch in the export's
//! order, put back on the map with the export's mixer, as Earth Engine's upload of
//! predictions does.
//!
//! Each feature is a band (`float_list` gives float32, `int64_list` int64; int64 values
//! beyond 2^53 lose precision on the way through the assembler's f64). A feature's length
//! tells its shape, from the first record: the core patch (`w * h`), the buffered patch (with
//! the margins of `kernel_size`, or any square margin when no kernel is given), or a whole
//! multiple of either (an array of depth K, written as bands `name_0 .. name_{K-1}`); where a
//! length fits several readings, depth 1 goes first, then the buffered reading when a kernel
//! is given, then the core one. Every later record must match exactly. Files may be gzip or plain (detected). Rows of patches are
//! written as they complete: memory holds one row of patches, never the raster.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use ee_raster_io::{partial_path, GeoTiffWriter, OutputBand, WriteOptions};
use ee_tensor_proto::proto::tensorflow::{feature, Example};
use ee_tensor_proto::tfrecord::open_reader;
use ee_tensor_proto::DataType;
use ee_tiling::{Block, RasterSize};
use ndarray::{Array2, Array3};
use prost::Message;

use crate::error::io_err;
use crate::{Error, Mixer, Result};

/// How the values of a multi-element feature are ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DepthLayout {
    /// `[depth, h, w]`: one plane after another (what `export_image` writes).
    #[default]
    ChannelsFirst,
    /// `[h, w, depth]`: the elements of each pixel together (a numpy `(h, w, k)` flattened).
    ChannelsLast,
}

/// How predictions are read and written.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ImportOptions {
    /// The export's `[x, y]` kernel, when predictions carry its margins; `None` detects core
    /// patches and buffered ones with equal margins on both axes.
    pub kernel_size: Option<[usize; 2]>,
    /// Features to import, in band order; empty takes every feature, sorted by name.
    pub features: Vec<String>,
    /// Order of the values of multi-element features.
    pub depth_layout: DepthLayout,
    /// The GeoTIFF's layout.
    pub write: WriteOptions,
}

/// What an import wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportReport {
    /// The GeoTIFF.
    pub output: PathBuf,
    /// Records read.
    pub records: u64,
    /// Its bands, in order.
    pub bands: Vec<String>,
    /// Its size.
    pub size: RasterSize,
    /// Per feature: name, depth and per-side margins `[x, y]` (0 for core-size patches).
    pub features: Vec<(String, usize, [usize; 2])>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Float,
    Int64,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Float => "float_list",
            Kind::Int64 => "int64_list",
        }
    }
}

/// A feature's shape, fixed by the first record.
#[derive(Clone, Debug)]
struct Shape {
    name: String,
    kind: Kind,
    depth: usize,
    margins: [usize; 2],
    len: usize,
}

fn values_of(f: &ee_tensor_proto::proto::tensorflow::Feature) -> Option<(Kind, usize)> {
    match f.kind.as_ref()? {
        feature::Kind::FloatList(l) => Some((Kind::Float, l.value.len())),
        feature::Kind::Int64List(l) => Some((Kind::Int64, l.value.len())),
        feature::Kind::BytesList(_) => None,
    }
}

/// Depth and margins of a feature of `len` values on `patch`, or why none fits.
fn detect(
    len: usize,
    patch: [usize; 2],
    kernel: Option<[usize; 2]>,
) -> std::result::Result<(usize, [usize; 2]), String> {
    let [w, h] = patch;
    let core = w * h;
    let area = |m: [usize; 2]| (w + 2 * m[0]) * (h + 2 * m[1]);
    if len == core {
        return Ok((1, [0, 0]));
    }
    match kernel {
        Some([kx, ky]) => {
            let m = [kx / 2, ky / 2];
            if len == area(m) {
                return Ok((1, m));
            }
            // A kernel given says the records are buffered: that reading goes first.
            if len > 0 && len.is_multiple_of(area(m)) {
                return Ok((len / area(m), m));
            }
            if len > 0 && len.is_multiple_of(core) {
                return Ok((len / core, [0, 0]));
            }
            Err(format!(
                "{len} values is not a whole number of {w}x{h} core patches ({core} values) or of {}x{} buffered patches ({} values)",
                w + 2 * m[0],
                h + 2 * m[1],
                area(m)
            ))
        }
        None => {
            let mut m = 1;
            while area([m, m]) <= len {
                if area([m, m]) == len {
                    return Ok((1, [m, m]));
                }
                m += 1;
            }
            if len > 0 && len.is_multiple_of(core) {
                return Ok((len / core, [0, 0]));
            }
            Err(format!(
                "{len} values is neither a whole number of {w}x{h} core patches ({core} values) nor a buffered patch with equal margins (give the export's kernel size)"
            ))
        }
    }
}

/// Records of several files, in order, with their place.
struct Records<'a> {
    paths: &'a [PathBuf],
    file: usize,
    reader: Option<ee_tensor_proto::tfrecord::TfRecordReader<Box<dyn std::io::Read>>>,
    in_file: u64,
    total: u64,
}

impl<'a> Records<'a> {
    fn new(paths: &'a [PathBuf]) -> Self {
        Records {
            paths,
            file: 0,
            reader: None,
            in_file: 0,
            total: 0,
        }
    }

    /// The next record into `buf`; `Ok(None)` after the last file, else its place.
    fn next(&mut self, buf: &mut Vec<u8>) -> Result<Option<(u64, &'a Path, u64)>> {
        loop {
            if self.file >= self.paths.len() {
                return Ok(None);
            }
            let path = &self.paths[self.file];
            if self.reader.is_none() {
                let file = File::open(path).map_err(io_err(path))?;
                let (reader, _) =
                    open_reader(BufReader::with_capacity(1 << 20, file)).map_err(|e| {
                        Error::Record {
                            record: self.total,
                            path: path.clone(),
                            in_file: 0,
                            problem: e.to_string(),
                        }
                    })?;
                self.reader = Some(reader);
                self.in_file = 0;
            }
            let reader = self.reader.as_mut().expect("opened above");
            match reader.read_record(buf) {
                Ok(true) => {
                    let place = (self.total, path.as_path(), self.in_file);
                    self.total += 1;
                    self.in_file += 1;
                    return Ok(Some(place));
                }
                Ok(false) => {
                    self.reader = None;
                    self.file += 1;
                }
                Err(e) => {
                    return Err(Error::Record {
                        record: self.total,
                        path: path.clone(),
                        in_file: self.in_file,
                        problem: match e {
                            ee_tensor_proto::Error::TfRecord {
                                offset, problem, ..
                            } => {
                                format!("corrupt TFRecord at byte {offset} of the uncompressed stream: {problem}")
                            }
                            other => other.to_string(),
                        },
                    })
                }
            }
        }
    }
}

/// Imports prediction `records` (in the export's order) onto the grid `mixer` describes and
/// writes the GeoTIFF `output` (as `output.partial` until complete).
pub fn import_predictions(
    mixer: &Mixer,
    records: &[PathBuf],
    output: &Path,
    options: &ImportOptions,
) -> Result<ImportReport> {
    mixer.validate().map_err(|problem| Error::Mixer {
        path: output.to_path_buf(),
        problem,
    })?;
    if records.is_empty() {
        return Err(Error::Options("no record file given".into()));
    }
    let result = import_inner(mixer, records, output, options);
    if result.is_err() {
        let _ = std::fs::remove_file(partial_path(output));
    }
    result
}

fn import_inner(
    mixer: &Mixer,
    records: &[PathBuf],
    output: &Path,
    options: &ImportOptions,
) -> Result<ImportReport> {
    let [pw, ph] = mixer.patch_dimensions;
    let per_row = mixer.patches_per_row;
    let total = mixer.total_patches as u64;
    let size = mixer.raster_size();
    let mut reader = Records::new(records);
    let mut buf = Vec::new();
    let mut shapes: Vec<Shape> = Vec::new();
    let mut writer: Option<GeoTiffWriter> = None;
    let mut bands: Vec<String> = Vec::new();
    let mut block: Option<Block> = None;
    let mut count = 0u64;
    let fail = |record: u64, path: &Path, in_file: u64, problem: String| Error::Record {
        record,
        path: path.to_path_buf(),
        in_file,
        problem,
    };
    while let Some((index, path, in_file)) = reader.next(&mut buf)? {
        if index >= total {
            // Count the rest, so the error says how many there are.
            let mut found = index + 1;
            while reader.next(&mut buf)?.is_some() {
                found += 1;
            }
            return Err(Error::RecordCount {
                expected: total,
                found,
                files: files_list(records),
            });
        }
        let example = Example::decode(&buf[..])
            .map_err(|e| fail(index, path, in_file, format!("not a tf.train.Example: {e}")))?;
        let features = example.features.as_ref().map(|f| &f.feature);
        let get = |name: &str| features.and_then(|f| f.get(name));
        if shapes.is_empty() {
            let mut names: Vec<String> = if options.features.is_empty() {
                let mut all: Vec<String> = features
                    .map(|f| f.keys().cloned().collect())
                    .unwrap_or_default();
                all.sort();
                all
            } else {
                options.features.clone()
            };
            if names.is_empty() {
                return Err(fail(
                    index,
                    path,
                    in_file,
                    "the Example has no feature".into(),
                ));
            }
            names.dedup();
            for name in names {
                let f = get(&name).ok_or_else(|| {
                    fail(
                        index,
                        path,
                        in_file,
                        format!("no feature {name:?} (found {})", feature_names(features)),
                    )
                })?;
                let (kind, len) = values_of(f).ok_or_else(|| {
                    fail(
                        index,
                        path,
                        in_file,
                        format!(
                            "feature {name:?} is a bytes_list (expected float_list or int64_list)"
                        ),
                    )
                })?;
                let (depth, margins) = detect(len, [pw, ph], options.kernel_size)
                    .map_err(|p| fail(index, path, in_file, format!("feature {name:?}: {p}")))?;
                for k in 0..depth {
                    bands.push(if depth == 1 {
                        name.clone()
                    } else {
                        format!("{name}_{k}")
                    });
                }
                shapes.push(Shape {
                    name,
                    kind,
                    depth,
                    margins,
                    len,
                });
            }
            let out_bands: Vec<OutputBand> = shapes
                .iter()
                .flat_map(|s| {
                    let dtype = match s.kind {
                        Kind::Float => DataType::Float32,
                        Kind::Int64 => DataType::Int64,
                    };
                    (0..s.depth).map(move |_| dtype)
                })
                .zip(&bands)
                .map(|(dtype, name)| OutputBand {
                    name: name.clone(),
                    dtype,
                })
                .collect();
            writer = Some(GeoTiffWriter::create(
                output,
                size,
                mixer.transform(),
                &mixer.projection.crs,
                &out_bands,
                &options.write,
            )?);
        }
        let row = (index as usize) / per_row;
        let col = (index as usize) % per_row;
        let current = block.get_or_insert_with(|| Block {
            y0: row * ph,
            values: Array3::zeros((ph, size.width, bands.len())),
            valid: Array2::from_elem((ph, size.width), true),
        });
        let mut band0 = 0;
        for s in &shapes {
            let f = get(&s.name).ok_or_else(|| {
                fail(
                    index,
                    path,
                    in_file,
                    format!(
                        "no feature {:?} (found {})",
                        s.name,
                        feature_names(features)
                    ),
                )
            })?;
            let (kind, len) = values_of(f).ok_or_else(|| {
                fail(
                    index,
                    path,
                    in_file,
                    format!(
                        "feature {:?} is a bytes_list (expected {})",
                        s.name,
                        s.kind.name()
                    ),
                )
            })?;
            if kind != s.kind {
                return Err(fail(
                    index,
                    path,
                    in_file,
                    format!(
                        "feature {:?} is a {} but earlier records have a {}",
                        s.name,
                        kind.name(),
                        s.kind.name()
                    ),
                ));
            }
            if len != s.len {
                return Err(fail(index, path, in_file, format!(
                    "feature {:?} has {len} values, expected {} (depth {} x {}x{} as in the first record)",
                    s.name, s.len, s.depth, pw + 2 * s.margins[0], ph + 2 * s.margins[1]
                )));
            }
            let bw = pw + 2 * s.margins[0];
            let bh = ph + 2 * s.margins[1];
            let at = |k: usize, y: usize, x: usize| -> usize {
                let (yy, xx) = (y + s.margins[1], x + s.margins[0]);
                match options.depth_layout {
                    DepthLayout::ChannelsFirst => (k * bh + yy) * bw + xx,
                    DepthLayout::ChannelsLast => (yy * bw + xx) * s.depth + k,
                }
            };
            let x0 = col * pw;
            match f.kind.as_ref() {
                Some(feature::Kind::FloatList(l)) => {
                    for k in 0..s.depth {
                        for y in 0..ph {
                            for x in 0..pw {
                                current.values[[y, x0 + x, band0 + k]] =
                                    l.value[at(k, y, x)] as f64;
                            }
                        }
                    }
                }
                Some(feature::Kind::Int64List(l)) => {
                    for k in 0..s.depth {
                        for y in 0..ph {
                            for x in 0..pw {
                                current.values[[y, x0 + x, band0 + k]] =
                                    l.value[at(k, y, x)] as f64;
                            }
                        }
                    }
                }
                _ => {}
            }
            band0 += s.depth;
        }
        count += 1;
        if col + 1 == per_row {
            if let (Some(w), Some(mut b)) = (writer.as_mut(), block.take()) {
                w.write_block(&mut b)?;
            }
        }
    }
    if count != total {
        return Err(Error::RecordCount {
            expected: total,
            found: count,
            files: files_list(records),
        });
    }
    let writer = writer.ok_or_else(|| Error::Options("no record was read".into()))?;
    let output = writer.finish()?;
    Ok(ImportReport {
        output,
        records: count,
        bands,
        size,
        features: shapes
            .into_iter()
            .map(|s| (s.name, s.depth, s.margins))
            .collect(),
    })
}

fn feature_names(
    features: Option<
        &std::collections::HashMap<String, ee_tensor_proto::proto::tensorflow::Feature>,
    >,
) -> String {
    let mut names: Vec<&String> = features.map(|f| f.keys().collect()).unwrap_or_default();
    names.sort();
    if names.is_empty() {
        "no feature".into()
    } else {
        names
            .iter()
            .map(|n| format!("{n:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn files_list(paths: &[PathBuf]) -> String {
    match paths {
        [one] => one.display().to_string(),
        many => format!(
            "{} files ({} ... {})",
            many.len(),
            many[0].display(),
            many[many.len() - 1].display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_core_buffered_and_deep_features() {
        assert_eq!(detect(16, [4, 4], None), Ok((1, [0, 0])));
        assert_eq!(detect(64, [4, 4], None), Ok((1, [2, 2])));
        assert_eq!(detect(48, [4, 4], None), Ok((3, [0, 0])));
        // With the kernel known, a buffered array of depth 2.
        assert_eq!(detect(2 * 8 * 6, [4, 4], Some([5, 3])), Ok((2, [2, 1])));
        assert_eq!(detect(8 * 6, [4, 4], Some([5, 3])), Ok((1, [2, 1])));
        let err = detect(17, [4, 4], Some([3, 3])).unwrap_err();
        assert!(
            err.contains("17 values") && err.contains("(16 values)") && err.contains("(36 values)"),
            "{err}"
        );
        assert!(detect(0, [4, 4], None).is_err());
    }
}
