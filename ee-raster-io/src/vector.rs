//! Feature tables through OGR, for predictions over features (Earth Engine's
//! `predictProperties`): [`VectorSource`] opens one layer of anything OGR reads (GeoJSON,
//! GeoPackage, CSV, Shapefile, FlatGeobuf...), lists its fields and reads chosen fields of
//! every feature in order, lists included; [`write_with_new_fields`] writes a copy of that
//! layer with new fields appended, in the input's driver (or another), keeping the geometry,
//! the existing fields, the feature order and, where the format has them, the FIDs.
//!
//! Array outputs become list fields (`RealList`, `IntegerList`, `Integer64List`) where the
//! driver can create them and stores them as lists (GeoJSON); elsewhere (GeoPackage,
//! Shapefile, CSV, FlatGeobuf) they are split into one field per element, `NAME_0`,
//! `NAME_1`... The copy is written inside a `OUT.partial` folder beside the output and its
//! files are moved into place only when it is complete (the main file last), so a failure
//! never leaves a complete-looking output.
//!
//! CSV files are opened with `AUTODETECT_TYPE=YES`, so numeric columns read as numbers.
//! Only the chosen layer is written: the other layers of a multi-layer input are not copied.

use std::ffi::{c_char, c_int, CStr, CString};
use std::path::{Path, PathBuf};
use std::ptr;

use gdal::vector::{FieldValue as OgrValue, LayerAccess};
use gdal::{Dataset, DriverManager, GdalOpenFlags, Metadata};
use gdal_sys::{OGRErr, OGRFieldType};

use crate::{Error, Result};

/// The type of an existing field, as OGR reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// 32-bit integer.
    Integer,
    /// 64-bit integer.
    Integer64,
    /// Double.
    Real,
    /// Text.
    String,
    /// List of 32-bit integers.
    IntegerList,
    /// List of 64-bit integers.
    Integer64List,
    /// List of doubles.
    RealList,
    /// List of texts.
    StringList,
    /// Anything else (dates, binary), by OGR's type name.
    Other(String),
}

impl FieldKind {
    fn from_ogr(t: OGRFieldType::Type) -> Self {
        match t {
            OGRFieldType::OFTInteger => FieldKind::Integer,
            OGRFieldType::OFTInteger64 => FieldKind::Integer64,
            OGRFieldType::OFTReal => FieldKind::Real,
            OGRFieldType::OFTString => FieldKind::String,
            OGRFieldType::OFTIntegerList => FieldKind::IntegerList,
            OGRFieldType::OFTInteger64List => FieldKind::Integer64List,
            OGRFieldType::OFTRealList => FieldKind::RealList,
            OGRFieldType::OFTStringList => FieldKind::StringList,
            other => FieldKind::Other(gdal::vector::field_type_to_name(other)),
        }
    }

    /// True for numbers and lists of numbers.
    pub fn is_numeric(&self) -> bool {
        matches!(
            self,
            FieldKind::Integer
                | FieldKind::Integer64
                | FieldKind::Real
                | FieldKind::IntegerList
                | FieldKind::Integer64List
                | FieldKind::RealList
        )
    }
}

impl std::fmt::Display for FieldKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FieldKind::Other(name) => f.write_str(name),
            other => write!(f, "{other:?}"),
        }
    }
}

/// An existing field of the layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldInfo {
    /// Its name.
    pub name: String,
    /// Its type.
    pub kind: FieldKind,
}

/// One field's value in one feature.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Unset or null.
    Null,
    /// An integer or real field.
    Number(f64),
    /// An integer or real list field.
    Numbers(Vec<f64>),
    /// A text field (may hold a number or a JSON array; the caller decides).
    Text(String),
    /// A list of texts.
    Texts(Vec<String>),
    /// A value of another type (date, binary), described.
    Other(String),
}

/// The chosen fields of one feature.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureValues {
    /// 0-based position in the layer's reading order.
    pub index: usize,
    /// The feature's FID, when it has one.
    pub fid: Option<u64>,
    /// One value per field asked for, in the order asked.
    pub values: Vec<Value>,
}

impl FeatureValues {
    /// Names the feature for messages: `feature 3 (FID 7)`.
    pub fn label(&self) -> String {
        feature_label(self.index, self.fid)
    }
}

/// `feature INDEX (FID n)`, or `feature INDEX` without a FID.
pub fn feature_label(index: usize, fid: Option<u64>) -> String {
    match fid {
        Some(fid) => format!("feature {index} (FID {fid})"),
        None => format!("feature {index}"),
    }
}

/// One layer of a vector file, opened read-only.
#[derive(Clone, Debug)]
pub struct VectorSource {
    path: PathBuf,
    driver: String,
    layer: String,
    fields: Vec<FieldInfo>,
    open_options: Vec<String>,
}

fn last_message() -> String {
    // SAFETY: CPLGetLastErrorMsg returns a valid NUL-terminated string owned by GDAL.
    unsafe {
        let msg = CStr::from_ptr(gdal_sys::CPLGetLastErrorMsg())
            .to_string_lossy()
            .trim()
            .to_string();
        gdal_sys::CPLErrorReset();
        msg
    }
}

fn gdal_message(e: &gdal::errors::GdalError) -> String {
    crate::error::message_of(e)
}

fn open_vector(path: &Path, options: &[String]) -> Result<Dataset> {
    crate::gdal_apps::open_read_only(path, GdalOpenFlags::GDAL_OF_VECTOR, options)
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

    fn reopen(&self) -> Result<Dataset> {
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
fn reading_failed(path: &Path, read: usize) -> Result<()> {
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

/// The element type of a new field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NewFieldType {
    /// Double (`Real`, `RealList`).
    Real,
    /// 32-bit integer (`Integer`, `IntegerList`).
    Integer,
    /// 64-bit integer (`Integer64`, `Integer64List`).
    Integer64,
}

/// A field to append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewField {
    /// Its name.
    pub name: String,
    /// Element type.
    pub ty: NewFieldType,
    /// `None`: a scalar; `Some(n)`: `n` values per feature (a list field, or `n` fields
    /// `NAME_0`..`NAME_{n-1}` where the format has no lists).
    pub length: Option<usize>,
}

/// A new field's value in one feature.
#[derive(Clone, Debug, PartialEq)]
pub enum NewValue {
    /// Left null.
    Null,
    /// A real scalar.
    Real(f64),
    /// An integer scalar.
    Integer(i64),
    /// Real values of an array field.
    Reals(Vec<f64>),
    /// Integer values of an array field.
    Integers(Vec<i64>),
}

/// What [`write_with_new_fields`] wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct WriteOutcome {
    /// The file written.
    pub path: PathBuf,
    /// The driver used.
    pub driver: String,
    /// Features written.
    pub features: usize,
    /// The fields appended, as the driver named them.
    pub fields: Vec<String>,
    /// True when array outputs were written as list fields, false when split per element.
    pub lists: bool,
    /// True when the source FIDs were kept.
    pub fids_kept: bool,
}

/// True when `driver` can create list fields and stores them as lists (CSV can create them
/// but writes them as text, so arrays are split there too).
pub fn driver_supports_lists(driver: &str) -> bool {
    if driver.eq_ignore_ascii_case("CSV") {
        return false;
    }
    DriverManager::get_driver_by_name(driver)
        .ok()
        .and_then(|d| d.metadata_item("DMD_CREATIONFIELDDATATYPES", ""))
        .is_some_and(|types| {
            let types: Vec<&str> = types.split_whitespace().collect();
            ["RealList", "IntegerList", "Integer64List"]
                .iter()
                .all(|t| types.contains(t))
        })
}

/// The folder `OUT.partial` beside `output` in which the copy is written.
pub fn partial_dir(output: &Path) -> PathBuf {
    crate::writer::partial_path(output)
}

/// One column to create: its name, OGR type, and where its values come from.
struct Column {
    name: String,
    ogr_type: OGRFieldType::Type,
    field: usize,
    element: Option<usize>,
    list: bool,
}

fn plan_columns(new_fields: &[NewField], lists: bool) -> Vec<Column> {
    let mut out = Vec::new();
    for (field, f) in new_fields.iter().enumerate() {
        let (scalar, list) = match f.ty {
            NewFieldType::Real => (OGRFieldType::OFTReal, OGRFieldType::OFTRealList),
            NewFieldType::Integer => (OGRFieldType::OFTInteger, OGRFieldType::OFTIntegerList),
            NewFieldType::Integer64 => (OGRFieldType::OFTInteger64, OGRFieldType::OFTInteger64List),
        };
        match f.length {
            None => out.push(Column {
                name: f.name.clone(),
                ogr_type: scalar,
                field,
                element: None,
                list: false,
            }),
            Some(_) if lists => out.push(Column {
                name: f.name.clone(),
                ogr_type: list,
                field,
                element: None,
                list: true,
            }),
            Some(n) => {
                for k in 0..n {
                    out.push(Column {
                        name: format!("{}_{k}", f.name),
                        ogr_type: scalar,
                        field,
                        element: Some(k),
                        list: false,
                    });
                }
            }
        }
    }
    out
}

/// Destroys an OGR feature handle when dropped.
struct OwnedFeature(gdal_sys::OGRFeatureH);

impl Drop for OwnedFeature {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the handle came from OGR_F_Create or OGR_L_GetNextFeature and is
            // destroyed once.
            unsafe { gdal_sys::OGR_F_Destroy(self.0) };
        }
    }
}

fn cstring(s: &str, what: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::Unsupported(format!("{what} {s:?} holds a NUL byte")))
}

fn c_str(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        // SAFETY: OGR returns NUL-terminated strings it owns; copied at once.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

/// True when the driver's layer creation options include `name`.
fn has_layer_option(driver: &gdal::Driver, name: &str) -> bool {
    driver
        .metadata_item("DS_LAYER_CREATIONOPTIONLIST", "")
        .is_some_and(|xml| {
            xml.contains(&format!("name='{name}'")) || xml.contains(&format!("name=\"{name}\""))
        })
}

/// Writes a copy of `source`'s layer to `output` with `new_fields` appended; `values[i]`
/// holds feature `i`'s values (in reading order), one per new field. `driver` overrides the
/// source's driver (an OGR short name).
///
/// The feature count and order must be the ones [`VectorSource::read`] saw; a source that
/// changed meanwhile is an error. A name already used by a field is an error.
pub fn write_with_new_fields(
    source: &VectorSource,
    output: &Path,
    driver: Option<&str>,
    new_fields: &[NewField],
    values: &[Vec<NewValue>],
) -> Result<WriteOutcome> {
    let driver_name = driver.unwrap_or(&source.driver).to_string();
    let drv = DriverManager::get_driver_by_name(&driver_name).map_err(|_| Error::Vector {
        path: output.to_path_buf(),
        message: format!("no OGR driver named {driver_name:?}"),
    })?;
    let can_create = drv.metadata_item("DCAP_CREATE", "").as_deref() == Some("YES")
        && drv.metadata_item("DCAP_VECTOR", "").as_deref() == Some("YES");
    if !can_create {
        return Err(Error::Vector {
            path: output.to_path_buf(),
            message: format!("the {driver_name} driver cannot create vector files"),
        });
    }
    if same_file(source.path(), output) {
        return Err(Error::Vector {
            path: output.to_path_buf(),
            message: "the output would overwrite the input".into(),
        });
    }
    if output.is_dir() {
        return Err(Error::Vector {
            path: output.to_path_buf(),
            message: "the output is a folder; name a file".into(),
        });
    }
    let lists = driver_supports_lists(&driver_name);
    let columns = plan_columns(new_fields, lists);
    for c in &columns {
        if let Some(i) = source.field_index(&c.name) {
            return Err(Error::Vector {
                path: source.path.clone(),
                message: format!(
                    "the new field {:?} would replace the existing field {:?}; rename the output",
                    c.name, source.fields[i].name
                ),
            });
        }
    }
    for (i, row) in values.iter().enumerate() {
        if row.len() != new_fields.len() {
            return Err(Error::Vector {
                path: output.to_path_buf(),
                message: format!(
                    "{} values given for feature {i}, {} new fields",
                    row.len(),
                    new_fields.len()
                ),
            });
        }
    }
    let file_name = output.file_name().ok_or_else(|| Error::Vector {
        path: output.to_path_buf(),
        message: "the output has no file name".into(),
    })?;
    let partial = partial_dir(output);
    remove_any(&partial)?;
    std::fs::create_dir_all(&partial).map_err(|e| Error::Io {
        path: partial.clone(),
        source: e,
    })?;
    let temp = partial.join(file_name);
    let written = write_copy(source, &drv, &driver_name, &temp, &columns, values, lists);
    let outcome = match written {
        Ok(o) => o,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(e);
        }
    };
    if let Err(e) = move_into_place(&partial, &temp, output) {
        let _ = std::fs::remove_dir_all(&partial);
        return Err(e);
    }
    Ok(WriteOutcome {
        path: output.to_path_buf(),
        ..outcome
    })
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

fn remove_any(path: &Path) -> Result<()> {
    let r = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else if path.exists() {
        std::fs::remove_file(path)
    } else {
        Ok(())
    };
    r.map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    })
}

/// Moves every file of `partial` beside `output` (same names), `main` last, then removes
/// the folder.
fn move_into_place(partial: &Path, main: &Path, output: &Path) -> Result<()> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |e| Error::Io { path, source: e }
    };
    let dest_dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(partial)
        .map_err(io(partial))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .map_err(io(partial))?;
    entries.sort_by_key(|p| p == main);
    for entry in entries {
        if entry.is_dir() {
            return Err(Error::Vector {
                path: output.to_path_buf(),
                message: format!(
                    "the driver wrote a folder ({}); write a single-file format",
                    entry.display()
                ),
            });
        }
        let Some(name) = entry.file_name() else {
            continue;
        };
        let dest = if entry == main {
            output.to_path_buf()
        } else {
            dest_dir.join(name)
        };
        std::fs::rename(&entry, &dest).map_err(io(&dest))?;
    }
    std::fs::remove_dir(partial).map_err(io(partial))
}

fn write_copy(
    source: &VectorSource,
    drv: &gdal::Driver,
    driver_name: &str,
    temp: &Path,
    columns: &[Column],
    values: &[Vec<NewValue>],
    lists: bool,
) -> Result<WriteOutcome> {
    // Same format: carry what OGR keeps beside its model (GeoJSON foreign members, the absence
    // of a "crs" member), as ogr2ogr does.
    let same_driver = driver_name == source.driver;
    let native = same_driver
        && drv
            .metadata_item("DMD_OPENOPTIONLIST", "")
            .is_some_and(|xml| xml.contains("name='NATIVE_DATA'"))
        && has_layer_option(drv, "NATIVE_DATA");
    let src_ds = if native {
        let mut options = source.open_options.clone();
        options.push("NATIVE_DATA=YES".into());
        open_vector(&source.path, &options)?
    } else {
        source.reopen()?
    };
    let src_layer = src_ds
        .layer_by_name(&source.layer)
        .map_err(crate::error::gdal_err(
            &source.path,
            format!("opening layer {:?}", source.layer),
        ))?;
    // SAFETY: the layer handle lives as long as src_ds, which outlives every use below.
    let src = unsafe { src_layer.c_layer() };
    let fail = |operation: &str| Error::Gdal {
        path: temp.to_path_buf(),
        operation: operation.to_string(),
        message: last_message(),
    };
    let dst_ds = drv.create_vector_only(temp).map_err(|e| Error::Gdal {
        path: temp.to_path_buf(),
        operation: format!("creating a {driver_name} file"),
        message: gdal_message(&e),
    })?;
    let hds = dst_ds.c_dataset();
    // SAFETY (whole block): plain OGR C calls on live handles (src_ds, dst_ds stay alive);
    // every feature handle is owned by an OwnedFeature guard; strings passed are CStrings
    // kept alive across the calls.
    let (features, fids_kept, names) = unsafe {
        let src_defn = gdal_sys::OGR_L_GetLayerDefn(src);
        let fid_column = c_str(gdal_sys::OGR_L_GetFIDColumn(src));
        let geom_column = c_str(gdal_sys::OGR_L_GetGeometryColumn(src));
        let mut options: Vec<CString> = Vec::new();
        if !fid_column.is_empty() && has_layer_option(drv, "FID") {
            options.push(cstring(&format!("FID={fid_column}"), "FID column")?);
        }
        if !geom_column.is_empty() && has_layer_option(drv, "GEOMETRY_NAME") {
            options.push(cstring(
                &format!("GEOMETRY_NAME={geom_column}"),
                "geometry column",
            )?);
        }
        // CSV drops geometries unless asked: keep them as WKT (a CSV source keeps its
        // geometry column as a plain field already).
        if driver_name.eq_ignore_ascii_case("CSV")
            && !source.driver.eq_ignore_ascii_case("CSV")
            && gdal_sys::OGR_FD_GetGeomFieldCount(src_defn) > 0
        {
            options.push(cstring("GEOMETRY=AS_WKT", "option")?);
        }
        if native {
            for key in ["NATIVE_DATA", "NATIVE_MEDIA_TYPE"] {
                if let Some(v) = src_layer.metadata_item(key, "NATIVE_DATA") {
                    options.push(cstring(&format!("{key}={v}"), "native data")?);
                }
            }
        }
        let mut option_ptrs: Vec<*mut c_char> =
            options.iter().map(|s| s.as_ptr() as *mut c_char).collect();
        option_ptrs.push(ptr::null_mut());
        let name = cstring(&source.layer, "layer name")?;
        let geom_count = gdal_sys::OGR_FD_GetGeomFieldCount(src_defn);
        let (srs, geom_type) = if geom_count > 0 {
            (
                gdal_sys::OGR_L_GetSpatialRef(src),
                gdal_sys::OGR_L_GetGeomType(src),
            )
        } else {
            (ptr::null_mut(), gdal_sys::OGRwkbGeometryType::wkbNone)
        };
        let dst = gdal_sys::GDALDatasetCreateLayer(
            hds,
            name.as_ptr(),
            srs,
            geom_type,
            option_ptrs.as_mut_ptr(),
        );
        if dst.is_null() {
            return Err(fail(&format!("creating layer {:?}", source.layer)));
        }
        // Extra geometry fields, where the format can hold them.
        let cap = cstring("CreateGeomField", "capability")?;
        if geom_count > 1 && gdal_sys::OGR_L_TestCapability(dst, cap.as_ptr()) != 0 {
            for g in 1..geom_count {
                let gfd = gdal_sys::OGR_FD_GetGeomFieldDefn(src_defn, g);
                if gdal_sys::OGR_L_CreateGeomField(dst, gfd, 1) != OGRErr::OGRERR_NONE {
                    return Err(fail(&format!("creating geometry field {g}")));
                }
            }
        }
        let src_fields = gdal_sys::OGR_FD_GetFieldCount(src_defn);
        for i in 0..src_fields {
            let fd = gdal_sys::OGR_FD_GetFieldDefn(src_defn, i);
            if gdal_sys::OGR_L_CreateField(dst, fd, 1) != OGRErr::OGRERR_NONE {
                return Err(fail(&format!(
                    "copying field {:?}",
                    c_str(gdal_sys::OGR_Fld_GetNameRef(fd))
                )));
            }
        }
        for c in columns {
            let cname = cstring(&c.name, "field name")?;
            let fd = gdal_sys::OGR_Fld_Create(cname.as_ptr(), c.ogr_type);
            let err = gdal_sys::OGR_L_CreateField(dst, fd, 1);
            gdal_sys::OGR_Fld_Destroy(fd);
            if err != OGRErr::OGRERR_NONE {
                return Err(fail(&format!("creating field {:?}", c.name)));
            }
        }
        let dst_defn = gdal_sys::OGR_L_GetLayerDefn(dst);
        let dst_fields = gdal_sys::OGR_FD_GetFieldCount(dst_defn);
        if dst_fields != src_fields + columns.len() as c_int {
            return Err(Error::Vector {
                path: temp.to_path_buf(),
                message: format!(
                    "the {driver_name} driver made {dst_fields} fields for {} existing and {} new",
                    src_fields,
                    columns.len()
                ),
            });
        }
        let names: Vec<String> = (0..columns.len() as c_int)
            .map(|k| {
                c_str(gdal_sys::OGR_Fld_GetNameRef(gdal_sys::OGR_FD_GetFieldDefn(
                    dst_defn,
                    src_fields + k,
                )))
            })
            .collect();
        let map: Vec<c_int> = (0..src_fields).collect();

        // Keep FIDs where the format stores them as a column (GeoPackage, SQLite) when they
        // rise in reading order (so the order is kept too), and elsewhere when they are not
        // just the reading order (GeoJSON "id" members).
        gdal_sys::OGR_L_ResetReading(src);
        let (mut k, mut rising, mut differs, mut last) = (0i64, true, false, -1i64);
        loop {
            let f = OwnedFeature(gdal_sys::OGR_L_GetNextFeature(src));
            if f.0.is_null() {
                break;
            }
            let fid = gdal_sys::OGR_F_GetFID(f.0);
            rising &= fid > last;
            differs |= fid != k;
            last = fid;
            k += 1;
        }
        let keep_fids = if has_layer_option(drv, "FID") {
            rising
        } else {
            differs
        };

        let tx_cap = cstring("Transactions", "capability")?;
        let transaction = gdal_sys::GDALDatasetTestCapability(hds, tx_cap.as_ptr()) != 0
            && gdal_sys::GDALDatasetStartTransaction(hds, 0) == OGRErr::OGRERR_NONE;

        gdal_sys::OGR_L_ResetReading(src);
        gdal_sys::CPLErrorReset();
        let mut index = 0usize;
        loop {
            let f = OwnedFeature(gdal_sys::OGR_L_GetNextFeature(src));
            if f.0.is_null() {
                break;
            }
            let row = values.get(index).ok_or_else(|| Error::Vector {
                path: source.path.clone(),
                message: format!(
                    "the layer now has more features than the {} read before; was it changed?",
                    values.len()
                ),
            })?;
            let out = OwnedFeature(gdal_sys::OGR_F_Create(dst_defn));
            if gdal_sys::OGR_F_SetFromWithMap(out.0, f.0, 1, map.as_ptr()) != OGRErr::OGRERR_NONE {
                return Err(fail(&format!(
                    "copying {}",
                    feature_label(index, fid_of(f.0))
                )));
            }
            if keep_fids {
                gdal_sys::OGR_F_SetFID(out.0, gdal_sys::OGR_F_GetFID(f.0));
            }
            for (k, c) in columns.iter().enumerate() {
                let field = src_fields + k as c_int;
                set_value(out.0, field, c, &row[c.field]);
            }
            if gdal_sys::OGR_L_CreateFeature(dst, out.0) != OGRErr::OGRERR_NONE {
                return Err(fail(&format!(
                    "writing {}",
                    feature_label(index, fid_of(f.0))
                )));
            }
            index += 1;
        }
        reading_failed(&source.path, index)?;
        if index != values.len() {
            return Err(Error::Vector {
                path: source.path.clone(),
                message: format!(
                    "the layer now has {index} features, {} were read before; was it changed?",
                    values.len()
                ),
            });
        }
        if transaction && gdal_sys::GDALDatasetCommitTransaction(hds) != OGRErr::OGRERR_NONE {
            return Err(fail("committing"));
        }
        (index, keep_fids, names)
    };
    dst_ds.close().map_err(|e| Error::Gdal {
        path: temp.to_path_buf(),
        operation: "closing".into(),
        message: gdal_message(&e),
    })?;
    Ok(WriteOutcome {
        path: temp.to_path_buf(),
        driver: driver_name.to_string(),
        features,
        fields: names,
        lists,
        fids_kept,
    })
}

/// The FID of a feature handle, if set.
///
/// # Safety
/// `f` must be a live feature handle.
unsafe fn fid_of(f: gdal_sys::OGRFeatureH) -> Option<u64> {
    let fid = gdal_sys::OGR_F_GetFID(f);
    (fid >= 0).then_some(fid as u64)
}

/// Sets column `c` (field `field` of `f`) from `v`.
///
/// # Safety
/// `f` must be a live feature handle whose definition has `field`.
unsafe fn set_value(f: gdal_sys::OGRFeatureH, field: c_int, c: &Column, v: &NewValue) {
    let scalar_at = |k: usize| -> Option<NewValue> {
        match v {
            NewValue::Reals(r) => r.get(k).map(|&x| NewValue::Real(x)),
            NewValue::Integers(i) => i.get(k).map(|&x| NewValue::Integer(x)),
            _ => None,
        }
    };
    let v = match c.element {
        Some(k) => scalar_at(k).unwrap_or(NewValue::Null),
        None => v.clone(),
    };
    match (&v, c.list) {
        (NewValue::Null, _) => gdal_sys::OGR_F_SetFieldNull(f, field),
        (NewValue::Real(x), false) => gdal_sys::OGR_F_SetFieldDouble(f, field, *x),
        (NewValue::Integer(x), false) => gdal_sys::OGR_F_SetFieldInteger64(f, field, *x),
        (NewValue::Reals(xs), true) => {
            gdal_sys::OGR_F_SetFieldDoubleList(f, field, xs.len() as c_int, xs.as_ptr())
        }
        (NewValue::Integers(xs), true) => {
            gdal_sys::OGR_F_SetFieldInteger64List(f, field, xs.len() as c_int, xs.as_ptr())
        }
        (NewValue::Real(x), true) => gdal_sys::OGR_F_SetFieldDoubleList(f, field, 1, x),
        (NewValue::Integer(x), true) => gdal_sys::OGR_F_SetFieldInteger64List(f, field, 1, x),
        (NewValue::Reals(xs), false) => match xs.as_slice() {
            [x] => gdal_sys::OGR_F_SetFieldDouble(f, field, *x),
            _ => gdal_sys::OGR_F_SetFieldNull(f, field),
        },
        (NewValue::Integers(xs), false) => match xs.as_slice() {
            [x] => gdal_sys::OGR_F_SetFieldInteger64(f, field, *x),
            _ => gdal_sys::OGR_F_SetFieldNull(f, field),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ee-vector-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    const GEOJSON: &str = r#"{"type": "FeatureCollection", "features": [
 {"type": "Feature", "id": 7, "properties": {"name": "a", "x": 1.5, "n": 2, "v": [1, 2, 3]}, "geometry": {"type": "Point", "coordinates": [1, 2]}},
 {"type": "Feature", "id": 3, "properties": {"name": "b", "x": null, "n": 4, "v": [4.5, 5, 6]}, "geometry": {"type": "Point", "coordinates": [3, 4]}},
 {"type": "Feature", "id": 9, "properties": {"name": "c", "x": 2.25, "n": 6, "v": [7, 8, 9]}, "geometry": null}
]}"#;

    fn source(dir: &Path) -> VectorSource {
        let path = dir.join("in.geojson");
        std::fs::write(&path, GEOJSON).unwrap();
        VectorSource::open(&path, None).unwrap()
    }

    #[test]
    fn reads_fields_values_lists_and_fids_in_order() {
        let dir = temp_dir("read");
        let src = source(&dir);
        assert_eq!(src.driver(), "GeoJSON");
        let kinds: Vec<(String, FieldKind)> = src
            .fields()
            .iter()
            .map(|f| (f.name.clone(), f.kind.clone()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("name".to_string(), FieldKind::String),
                ("x".to_string(), FieldKind::Real),
                ("n".to_string(), FieldKind::Integer),
                ("v".to_string(), FieldKind::RealList),
            ]
        );
        let x = src.field_index("x").unwrap();
        let v = src.field_index("V").unwrap();
        let rows = src.read(&[x, v]).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].fid, Some(7));
        assert_eq!(rows[1].label(), "feature 1 (FID 3)");
        assert_eq!(rows[0].values[0], Value::Number(1.5));
        assert_eq!(rows[1].values[0], Value::Null);
        assert_eq!(rows[1].values[1], Value::Numbers(vec![4.5, 5.0, 6.0]));
        assert!(src.read(&[99]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn copies_with_new_fields_lists_or_split() {
        let dir = temp_dir("write");
        let src = source(&dir);
        let new = vec![
            NewField {
                name: "score".into(),
                ty: NewFieldType::Real,
                length: None,
            },
            NewField {
                name: "pair".into(),
                ty: NewFieldType::Integer,
                length: Some(2),
            },
        ];
        let values = vec![
            vec![NewValue::Real(0.5), NewValue::Integers(vec![1, 2])],
            vec![NewValue::Null, NewValue::Null],
            vec![NewValue::Real(-1.0), NewValue::Integers(vec![5, 6])],
        ];
        let out = dir.join("out.geojson");
        let o = write_with_new_fields(&src, &out, None, &new, &values).unwrap();
        assert!(o.lists && o.fids_kept);
        assert_eq!(o.fields, vec!["score", "pair"]);
        assert!(!partial_dir(&out).exists());
        let back = VectorSource::open(&out, None).unwrap();
        let names: Vec<&str> = back.fields().iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, vec!["name", "x", "n", "v", "score", "pair"]);
        let rows = back.read(&[0, 4, 5]).unwrap();
        let fids: Vec<Option<u64>> = rows.iter().map(|r| r.fid).collect();
        assert_eq!(fids, vec![Some(7), Some(3), Some(9)]);
        assert_eq!(rows[0].values[0], Value::Text("a".into()));
        assert_eq!(rows[0].values[1], Value::Number(0.5));
        assert_eq!(rows[0].values[2], Value::Numbers(vec![1.0, 2.0]));
        assert_eq!(rows[1].values[1], Value::Null);
        assert_eq!(rows[1].values[2], Value::Null);
        assert_eq!(rows[2].values[2], Value::Numbers(vec![5.0, 6.0]));

        // GeoPackage has no list fields: the pair is split into pair_0, pair_1.
        let gpkg = dir.join("out.gpkg");
        let o = write_with_new_fields(&src, &gpkg, Some("GPKG"), &new, &values).unwrap();
        assert!(!o.lists);
        assert_eq!(o.fields, vec!["score", "pair_0", "pair_1"]);
        let back = VectorSource::open(&gpkg, None).unwrap();
        let i0 = back.field_index("pair_0").unwrap();
        let i1 = back.field_index("pair_1").unwrap();
        let rows = back.read(&[i0, i1]).unwrap();
        assert_eq!(rows[2].values, vec![Value::Number(5.0), Value::Number(6.0)]);
        assert_eq!(rows[1].values, vec![Value::Null, Value::Null]);

        // CSV writes lists as text: split too, geometry kept as WKT.
        let csv = dir.join("out.csv");
        let o = write_with_new_fields(&src, &csv, Some("CSV"), &new, &values).unwrap();
        assert!(!o.lists);
        let text = std::fs::read_to_string(&csv).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("WKT,name,x,n,v,score,pair_0,pair_1"),
            "{text}"
        );
        assert_eq!(
            lines.next(),
            Some("\"POINT (1 2)\",a,1.5,\"2\",\"[ 1.0, 2.0, 3.0 ]\",0.5,\"1\",\"2\""),
            "{text}"
        );

        // The GeoJSON copy carries no "crs" member the source did not have.
        assert!(!std::fs::read_to_string(&out).unwrap().contains("crs"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refuses_clashes_wrong_counts_and_overwriting_the_input() {
        let dir = temp_dir("refuse");
        let src = source(&dir);
        let clash = vec![NewField {
            name: "X".into(),
            ty: NewFieldType::Real,
            length: None,
        }];
        let out = dir.join("out.geojson");
        let vals = vec![vec![NewValue::Null]; 3];
        let err = write_with_new_fields(&src, &out, None, &clash, &vals)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("would replace the existing field \"x\""),
            "{err}"
        );
        let ok = vec![NewField {
            name: "y".into(),
            ty: NewFieldType::Real,
            length: None,
        }];
        let err = write_with_new_fields(&src, &out, None, &ok, &vals[..2])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("more features than the 2 read before"),
            "{err}"
        );
        assert!(!out.exists() && !partial_dir(&out).exists());
        let err = write_with_new_fields(&src, src.path(), None, &ok, &vals)
            .unwrap_err()
            .to_string();
        assert!(err.contains("overwrite the input"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn several_layers_need_a_name() {
        let dir = temp_dir("layers");
        let src = source(&dir);
        let gpkg = dir.join("two.gpkg");
        let none: Vec<Vec<NewValue>> = vec![vec![]; 3];
        write_with_new_fields(&src, &gpkg, Some("GPKG"), &[], &none).unwrap();
        let mut ds = gdal::Dataset::open_ex(
            &gpkg,
            gdal::DatasetOptions {
                open_flags: GdalOpenFlags::GDAL_OF_VECTOR | GdalOpenFlags::GDAL_OF_UPDATE,
                ..Default::default()
            },
        )
        .unwrap();
        ds.create_layer(gdal::vector::LayerOptions {
            name: "other",
            ..Default::default()
        })
        .unwrap();
        drop(ds);
        let err = VectorSource::open(&gpkg, None).unwrap_err().to_string();
        assert!(err.contains("2 layers (in, other)"), "{err}");
        assert_eq!(
            VectorSource::open(&gpkg, Some("other"))
                .unwrap()
                .layer_name(),
            "other"
        );
        assert!(VectorSource::open(&gpkg, Some("nope")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
