//! Reading a layer: [`VectorSource`] opens it, lists its fields and reads chosen fields of
//! every feature in order.

use std::path::{Path, PathBuf};

use gdal::vector::{FieldValue as OgrValue, LayerAccess};
use gdal::Dataset;

use super::fields::{FeatureValues, FieldInfo, FieldKind, Value};
use super::ogr::{last_message, open_vector};
use crate::{Error, Result};

/// One layer of a vector file, opened read-only.
#[derive(Clone, Debug)]
pub struct VectorSource {
    pub(super) path: PathBuf,
    pub(super) driver: String,
    pub(super) layer: String,
    pub(super) fields: Vec<FieldInfo>,
    pub(super) open_options: Vec<String>,
}

impl VectorSource {
    /// Opens `path` and its layer `layer` (by name), or its only layer when `layer` is `None`.
    pub fn open(path: &Path, layer: Option<&str>) -> Result<Self> {
        let mut open_options = Vec::new();
        let mut ds = open_vector(path, &open_options)?;
        let driver = ds.driver().short_name();
        if driver == "CSV" {
            open_options.push("AUTODETECT_TYPE=YES".to_string());
            ds = open_vector(path, &open_options)?;
        }
        let names: Vec<String> = ds.layers().map(|l| l.name()).collect();
        let layer_name = match layer {
            Some(name) => {
                if !names.iter().any(|n| n == name) {
                    return Err(Error::Vector {
                        path: path.to_path_buf(),
                        message: format!("no layer {name:?} (layers: {})", names.join(", ")),
                    });
                }
                name.to_string()
            }
            None => match names.as_slice() {
                [one] => one.clone(),
                [] => {
                    return Err(Error::Vector {
                        path: path.to_path_buf(),
                        message: "the file has no vector layer".into(),
                    })
                }
                many => {
                    return Err(Error::Vector {
                        path: path.to_path_buf(),
                        message: format!(
                            "the file has {} layers ({}); name the one to use",
                            many.len(),
                            many.join(", ")
                        ),
                    })
                }
            },
        };
        let l = ds
            .layer_by_name(&layer_name)
            .map_err(crate::error::gdal_err(
                path,
                format!("opening layer {layer_name:?}"),
            ))?;
        let fields = l
            .defn()
            .fields()
            .map(|f| FieldInfo {
                name: f.name(),
                kind: FieldKind::from_ogr(f.field_type()),
            })
            .collect();
        Ok(VectorSource {
            path: path.to_path_buf(),
            driver,
            layer: layer_name,
            fields,
            open_options,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The OGR driver's short name (`GeoJSON`, `GPKG`, `CSV`, `ESRI Shapefile`...).
    pub fn driver(&self) -> &str {
        &self.driver
    }

    /// The layer's name.
    pub fn layer_name(&self) -> &str {
        &self.layer
    }

    /// The layer's fields, in order.
    pub fn fields(&self) -> &[FieldInfo] {
        &self.fields
    }

    /// The position of the field named `name` (exact match first, then ignoring case as
    /// OGR does).
    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name).or_else(|| {
            self.fields
                .iter()
                .position(|f| f.name.eq_ignore_ascii_case(name))
        })
    }

    pub(super) fn reopen(&self) -> Result<Dataset> {
        open_vector(&self.path, &self.open_options)
    }

    /// Reads the fields at positions `fields` of every feature, in the layer's order.
    pub fn read(&self, fields: &[usize]) -> Result<Vec<FeatureValues>> {
        for &i in fields {
            if i >= self.fields.len() {
                return Err(Error::Vector {
                    path: self.path.clone(),
                    message: format!(
                        "field position {i} asked for; the layer has {} fields",
                        self.fields.len()
                    ),
                });
            }
        }
        let ds = self.reopen()?;
        let mut layer = ds
            .layer_by_name(&self.layer)
            .map_err(crate::error::gdal_err(
                &self.path,
                format!("opening layer {:?}", self.layer),
            ))?;
        let mut out = Vec::new();
        // SAFETY: resets GDAL's thread-local error state.
        unsafe { gdal_sys::CPLErrorReset() };
        for (index, feature) in layer.features().enumerate() {
            let values = fields
                .iter()
                .map(|&i| match feature.field(i) {
                    Ok(None) => Value::Null,
                    Ok(Some(v)) => from_ogr(v),
                    Err(_) => Value::Other(self.fields[i].kind.to_string()),
                })
                .collect();
            out.push(FeatureValues {
                index,
                fid: feature.fid(),
                values,
            });
        }
        // Reading stops at the end or at an error: tell them apart.
        reading_failed(&self.path, out.len())?;
        Ok(out)
    }
}

/// An error when GDAL's last error is a failure (reading stopped early after `read`
/// features).
pub(super) fn reading_failed(path: &Path, read: usize) -> Result<()> {
    // SAFETY: reads GDAL's thread-local error state.
    let failed = unsafe { gdal_sys::CPLGetLastErrorType() } >= gdal_sys::CPLErr::CE_Failure;
    if failed {
        return Err(Error::Gdal {
            path: path.to_path_buf(),
            operation: format!("reading the feature after the {read} read"),
            message: last_message(),
        });
    }
    Ok(())
}

fn from_ogr(v: OgrValue) -> Value {
    match v {
        OgrValue::IntegerValue(i) => Value::Number(f64::from(i)),
        OgrValue::Integer64Value(i) => Value::Number(i as f64),
        OgrValue::RealValue(r) => Value::Number(r),
        OgrValue::IntegerListValue(l) => Value::Numbers(l.into_iter().map(f64::from).collect()),
        OgrValue::Integer64ListValue(l) => {
            Value::Numbers(l.into_iter().map(|i| i as f64).collect())
        }
        OgrValue::RealListValue(l) => Value::Numbers(l),
        OgrValue::StringValue(s) => Value::Text(s),
        OgrValue::StringListValue(l) => Value::Texts(l),
        OgrValue::DateValue(d) => Value::Other(format!("date {d}")),
        OgrValue::DateTimeValue(d) => Value::Other(format!("date-time {d}")),
    }
}
