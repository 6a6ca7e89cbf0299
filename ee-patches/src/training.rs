//! Training samples: pixels of a raster stack, labelled by a label raster or by points with a
//! numeric property, written as `tf.train.Example`s (Earth Engine's `sampleRegions` /
//! `stratifiedSample` followed by a table export to TFRecord).
//!
//! Every Example holds one `float_list` feature per band (its value at the pixel, or the
//! `kernel x kernel` neighbourhood centred on it, row-major, with `default_value` outside the
//! raster and where masked) and the label: `int64_list` for integer labels (an integer label
//! band or an integer property), `float_list` otherwise.
//!
//! Decisions:
//! - A pixel is a candidate when its label is valid and every input band is valid at it.
//! - With integer labels, `samples` is per class (as `stratifiedSample`'s `numPoints`): every
//!   class keeps `samples` pixels chosen uniformly at random (all of them when it has fewer);
//!   with real labels, `samples` is the total. Without `samples` every candidate is kept.
//! - Splits are made within each class in the given proportions (rounded), so each split is
//!   stratified too; the records of each file are shuffled.
//! - Everything random comes from one `fastrand` generator seeded with `seed`: the same
//!   inputs and seed give the same files, byte for byte.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ee_raster_io::points::{read_points, PropertyKind};
use ee_raster_io::{BandSelector, InputStack, Resampling};
use ee_tensor_proto::DataType;
use ee_tiling::{GeoTransform, Window};

use crate::encode::{encode_example, FeatureData};
use crate::shards::{compression_of, RecordFiles};
use crate::{Error, Result};

/// Where labels come from.
#[derive(Clone, Debug, PartialEq)]
pub enum LabelSource {
    /// Band 1 of a raster (warped onto the inputs' grid with nearest neighbour when needed).
    Raster(PathBuf),
    /// Point features of a vector file and one numeric property of theirs.
    Points {
        /// The vector file (GeoJSON, GeoPackage, Shapefile...).
        path: PathBuf,
        /// The property holding the label.
        property: String,
    },
}

/// How samples are drawn and written.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainingOptions {
    /// Neighbourhood side in pixels (odd; 1 is the pixel alone).
    pub kernel: usize,
    /// Samples per class (integer labels) or in all (real labels); `None` keeps every one.
    pub samples: Option<usize>,
    /// Seed of every random choice.
    pub seed: u64,
    /// Named splits and their fractions (summing to 1); empty writes one file.
    pub splits: Vec<(String, f64)>,
    /// Value written outside the raster and for masked neighbours.
    pub default_value: f64,
    /// Name of the label feature; `None` is `label` for a raster and the property's name for
    /// points.
    pub label_name: Option<String>,
}

impl Default for TrainingOptions {
    /// Single pixels, every candidate, seed 0, one file, 0 for masked neighbours.
    fn default() -> Self {
        TrainingOptions {
            kernel: 1,
            samples: None,
            seed: 0,
            splits: Vec::new(),
            default_value: 0.0,
            label_name: None,
        }
    }
}

/// One file written.
#[derive(Clone, Debug, PartialEq)]
pub struct SplitReport {
    /// The split's name (empty without splits).
    pub name: String,
    /// The file.
    pub path: PathBuf,
    /// Records per label value (the value as written, e.g. `3` or `0.25`).
    pub per_label: BTreeMap<String, u64>,
    /// Records in all.
    pub records: u64,
}

/// What a training export wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainingReport {
    /// The files, one per split.
    pub splits: Vec<SplitReport>,
    /// The features of every Example besides the label (band names), each `kernel^2` long.
    pub bands: Vec<String>,
    /// The label feature's name.
    pub label: String,
    /// Whether labels are written as `int64_list`.
    pub integer_labels: bool,
    /// Candidates seen (valid labelled pixels, or points on valid pixels).
    pub candidates: u64,
    /// Points that fell outside the raster or on masked pixels.
    pub skipped_points: u64,
}

/// A candidate pixel and its label.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Sample {
    col: usize,
    row: usize,
    label: f64,
}

/// Reservoir sampling (Algorithm R) per stratum, in scan order, deterministic for a seed.
struct Reservoirs {
    cap: Option<usize>,
    strata: BTreeMap<i64, (u64, Vec<Sample>)>,
}

impl Reservoirs {
    fn offer(&mut self, key: i64, sample: Sample, rng: &mut fastrand::Rng) {
        let (seen, kept) = self.strata.entry(key).or_default();
        *seen += 1;
        match self.cap {
            Some(cap) if kept.len() >= cap => {
                let j = rng.u64(0..*seen);
                if (j as usize) < cap {
                    kept[j as usize] = sample;
                }
            }
            _ => kept.push(sample),
        }
    }
}

/// The output path of split `name`: `OUT-name.tfrecord.gz` for `OUT.tfrecord.gz`.
pub fn split_path(output: &Path, name: &str) -> PathBuf {
    let file = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (stem, ext) = match file.find(".tfrecord") {
        Some(i) => file.split_at(i),
        None => match file.rfind('.') {
            Some(i) if i > 0 => file.split_at(i),
            _ => (file.as_str(), ""),
        },
    };
    output.with_file_name(format!("{stem}-{name}{ext}"))
}

fn inverse(t: GeoTransform) -> Result<impl Fn(f64, f64) -> (f64, f64)> {
    let det = t.dx * t.dy - t.rx * t.ry;
    if det == 0.0 || !det.is_finite() {
        return Err(Error::Options(format!(
            "the raster's transform {:?} cannot be inverted",
            t.to_gdal()
        )));
    }
    Ok(move |x: f64, y: f64| {
        let (u, v) = (x - t.x0, y - t.y0);
        ((t.dy * u - t.rx * v) / det, (-t.ry * u + t.dx * v) / det)
    })
}

fn label_text(label: f64, integer: bool) -> String {
    if integer {
        format!("{}", label as i64)
    } else {
        format!("{label}")
    }
}

/// Samples `inputs` (all bands, stacked on the first input's grid) at labelled pixels and
/// writes the Examples to `output` (gzip when it ends in `.gz`), or to one file per split.
pub fn export_training(
    inputs: &[PathBuf],
    labels: &LabelSource,
    output: &Path,
    options: &TrainingOptions,
) -> Result<TrainingReport> {
    if options.kernel == 0 || options.kernel.is_multiple_of(2) {
        return Err(Error::Options(format!(
            "kernel {} is not odd (the neighbourhood must have a centre pixel)",
            options.kernel
        )));
    }
    if options.samples == Some(0) {
        return Err(Error::Options("0 samples asked for".into()));
    }
    let mut total = 0.0;
    for (i, (name, f)) in options.splits.iter().enumerate() {
        if !(f.is_finite() && *f >= 0.0) || name.is_empty() {
            return Err(Error::Options(format!(
                "split {name:?}={f} is not a name and a fraction >= 0"
            )));
        }
        if options.splits[..i].iter().any(|(n, _)| n == name) {
            return Err(Error::Options(format!("split {name:?} is given twice")));
        }
        total += f;
    }
    if !options.splits.is_empty() && (total - 1.0).abs() > 1e-6 {
        return Err(Error::Options(format!(
            "split fractions sum to {total}, not 1"
        )));
    }
    if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(crate::error::io_err(dir))?;
    }
    let stack = InputStack::open(inputs, &[], None, Resampling::Nearest)?;
    let grid = stack.grid().clone();
    let bands: Vec<String> = stack.bands().iter().map(|b| b.info.name.clone()).collect();
    let label_name = options.label_name.clone().unwrap_or_else(|| match labels {
        LabelSource::Raster(_) => "label".into(),
        LabelSource::Points { property, .. } => property.clone(),
    });
    for (i, b) in bands.iter().enumerate() {
        if bands[..i].contains(b) || *b == label_name {
            return Err(Error::Options(format!(
                "two features would be named {b:?}; give the bands distinct descriptions or the label another name"
            )));
        }
    }
    let mut rng = fastrand::Rng::with_seed(options.seed);
    let mut skipped = 0u64;
    let mut candidates = 0u64;
    let (integer, strata) = match labels {
        LabelSource::Raster(path) => {
            let labels = InputStack::open(
                std::slice::from_ref(path),
                &[(0, BandSelector::Index(1))],
                Some(&grid),
                Resampling::Nearest,
            )?;
            let integer = !matches!(
                labels.bands()[0].info.dtype,
                DataType::Float16 | DataType::Float32 | DataType::Float64
            );
            let mut res = Reservoirs {
                cap: options.samples,
                strata: BTreeMap::new(),
            };
            let strip = 256usize;
            for y0 in (0..grid.size.height).step_by(strip) {
                let h = strip.min(grid.size.height - y0);
                let window = Window::new(0, y0 as i64, grid.size.width, h);
                let l = labels.read_window::<f64>(window, 0.0)?;
                let v = stack.read_window::<f32>(window, 0.0)?;
                for r in 0..h {
                    for c in 0..grid.size.width {
                        if !(l.valid[[r, c]] && v.valid[[r, c]]) {
                            continue;
                        }
                        let label = l.values[[0, r, c]];
                        candidates += 1;
                        let key = if integer { label as i64 } else { 0 };
                        res.offer(
                            key,
                            Sample {
                                col: c,
                                row: y0 + r,
                                label,
                            },
                            &mut rng,
                        );
                    }
                }
            }
            (integer, res.strata)
        }
        LabelSource::Points { path, property } => {
            let set = read_points(path, property, &grid.crs_wkt)?;
            let integer = set.kind == PropertyKind::Integer;
            let to_pixel = inverse(grid.transform)?;
            let mut res = Reservoirs {
                cap: options.samples,
                strata: BTreeMap::new(),
            };
            for p in &set.points {
                let (c, r) = to_pixel(p.x, p.y);
                let (c, r) = (c.floor(), r.floor());
                if !(c >= 0.0
                    && r >= 0.0
                    && c < grid.size.width as f64
                    && r < grid.size.height as f64)
                {
                    skipped += 1;
                    continue;
                }
                let (col, row) = (c as usize, r as usize);
                let px =
                    stack.read_window::<f32>(Window::new(col as i64, row as i64, 1, 1), 0.0)?;
                if !px.valid[[0, 0]] {
                    skipped += 1;
                    continue;
                }
                candidates += 1;
                let key = if integer { p.value as i64 } else { 0 };
                res.offer(
                    key,
                    Sample {
                        col,
                        row,
                        label: p.value,
                    },
                    &mut rng,
                );
            }
            (integer, res.strata)
        }
    };
    if candidates == 0 {
        return Err(Error::Options(match labels {
            LabelSource::Raster(p) => format!(
                "{}: no valid labelled pixel where the inputs are valid",
                p.display()
            ),
            LabelSource::Points { path, .. } => format!(
                "{}: no point falls on a valid pixel of the inputs ({skipped} outside or masked)",
                path.display()
            ),
        }));
    }
    // Split within each class, then shuffle each split.
    let names: Vec<(String, f64)> = if options.splits.is_empty() {
        vec![(String::new(), 1.0)]
    } else {
        options.splits.clone()
    };
    let mut per_split: Vec<Vec<Sample>> = vec![Vec::new(); names.len()];
    for (_, (_, mut kept)) in strata {
        rng.shuffle(&mut kept);
        let n = kept.len();
        let mut cum = 0.0;
        let mut start = 0;
        for (i, (_, f)) in names.iter().enumerate() {
            cum += f;
            let end = if i + 1 == names.len() {
                n
            } else {
                ((cum * n as f64).round() as usize).min(n)
            };
            per_split[i].extend_from_slice(&kept[start..end.max(start)]);
            start = end.max(start);
        }
    }
    let k = options.kernel;
    let half = (k / 2) as i64;
    let fill = options.default_value as f32;
    let mut reports = Vec::new();
    let mut buf = Vec::new();
    let mut files_done = Vec::new();
    for ((name, _), mut samples) in names.into_iter().zip(per_split) {
        rng.shuffle(&mut samples);
        let path = if name.is_empty() {
            output.to_path_buf()
        } else {
            split_path(output, &name)
        };
        let mut files = RecordFiles::single(path.clone(), compression_of(&path));
        let mut per_label = BTreeMap::new();
        for s in &samples {
            let w = stack.read_window::<f32>(
                Window::new(s.col as i64 - half, s.row as i64 - half, k, k),
                fill,
            )?;
            let values = w
                .values
                .as_slice()
                .ok_or_else(|| Error::Options("internal: window values not contiguous".into()))?;
            let chunks: Vec<[&[f32]; 1]> = (0..bands.len())
                .map(|b| [&values[b * k * k..(b + 1) * k * k]])
                .collect();
            let int_label = [s.label as i64];
            let float_label = [s.label as f32];
            let float_chunks = [&float_label[..]];
            let mut list: Vec<(&str, FeatureData<'_>)> = bands
                .iter()
                .zip(&chunks)
                .map(|(n, c)| (n.as_str(), FeatureData::Float(&c[..])))
                .collect();
            list.push((
                label_name.as_str(),
                if integer {
                    FeatureData::Int64(&int_label)
                } else {
                    FeatureData::Float(&float_chunks)
                },
            ));
            buf.clear();
            encode_example(&mut buf, &list);
            files.write(&buf)?;
            *per_label
                .entry(label_text(s.label, integer))
                .or_insert(0u64) += 1;
        }
        let records = files.records();
        files_done.push(files);
        reports.push(SplitReport {
            name,
            path,
            per_label,
            records,
        });
    }
    // Every file is moved into place only when all are written.
    for files in files_done {
        files.finish(true)?;
    }
    Ok(TrainingReport {
        splits: reports,
        bands,
        label: label_name,
        integer_labels: integer,
        candidates,
        skipped_points: skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_names_keep_the_extension() {
        assert_eq!(
            split_path(Path::new("/o/s.tfrecord.gz"), "train"),
            Path::new("/o/s-train.tfrecord.gz")
        );
        assert_eq!(
            split_path(Path::new("s.tfrecord"), "eval"),
            Path::new("s-eval.tfrecord")
        );
        assert_eq!(
            split_path(Path::new("s.gz"), "eval"),
            Path::new("s-eval.gz")
        );
        assert_eq!(split_path(Path::new("s"), "eval"), Path::new("s-eval"));
    }

    #[test]
    fn reservoirs_keep_at_most_cap_uniformly() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut res = Reservoirs {
            cap: Some(10),
            strata: BTreeMap::new(),
        };
        let mut hits = vec![0u32; 100];
        for _ in 0..2000 {
            res.strata.clear();
            for i in 0..100 {
                res.offer(
                    i % 2,
                    Sample {
                        col: i as usize,
                        row: 0,
                        label: 0.0,
                    },
                    &mut rng,
                );
            }
            for (seen, kept) in res.strata.values() {
                assert_eq!((*seen, kept.len()), (50, 10));
                for s in kept {
                    hits[s.col] += 1;
                }
            }
        }
        // Each pixel is kept with probability 10/50: 400 of 2000 expected.
        assert!(hits.iter().all(|&h| (300..500).contains(&h)), "{hits:?}");
    }

    #[test]
    fn inverse_transform_round_trips() {
        let t = GeoTransform {
            x0: 100.0,
            dx: 2.0,
            rx: 0.5,
            y0: 50.0,
            ry: -0.25,
            dy: -3.0,
        };
        let inv = inverse(t).unwrap();
        let (x, y) = t.apply(12.5, 7.25);
        let (c, r) = inv(x, y);
        assert!((c - 12.5).abs() < 1e-9 && (r - 7.25).abs() < 1e-9);
    }
}
