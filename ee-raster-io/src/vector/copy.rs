//! The copy itself, through OGR's C API (most of this module's `unsafe`): a new layer
//! like the source's (FID and geometry columns, geometry fields, fields), the new columns,
//! every feature copied in order with its new values, FIDs kept where the format allows.

use std::ffi::{c_char, c_int, CStr, CString};
use std::path::Path;
use std::ptr;

use gdal::vector::LayerAccess;
use gdal::Metadata;
use gdal_sys::{OGRErr, OGRFieldType};

use super::fields::{feature_label, NewValue};
use super::ogr::{gdal_message, last_message, open_vector};
use super::reader::{reading_failed, VectorSource};
use crate::{Error, Result};

/// One column to create: its name, OGR type, and where its values come from.
pub(super) struct Column {
    pub(super) name: String,
    pub(super) ogr_type: OGRFieldType::Type,
    pub(super) field: usize,
    pub(super) element: Option<usize>,
    pub(super) list: bool,
}

/// What [`write_copy`] wrote.
pub(super) struct Copied {
    /// Features written.
    pub(super) features: usize,
    /// The new fields, as the driver named them.
    pub(super) fields: Vec<String>,
    /// True when the source FIDs were kept.
    pub(super) fids_kept: bool,
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

pub(super) fn write_copy(
    source: &VectorSource,
    drv: &gdal::Driver,
    driver_name: &str,
    temp: &Path,
    columns: &[Column],
    values: &[Vec<NewValue>],
) -> Result<Copied> {
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
    Ok(Copied {
        features,
        fields: names,
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
