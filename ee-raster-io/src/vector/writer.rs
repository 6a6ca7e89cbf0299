//! Writing a copy of a layer with new fields: [`write_with_new_fields`] checks the request,
//! plans the columns (list fields, or one field per element), has `copy` write the copy
//! inside the `OUT.partial` folder and moves its files into place.

use std::path::{Path, PathBuf};

use gdal::{DriverManager, Metadata};
use gdal_sys::OGRFieldType;

use super::copy::{write_copy, Column};
use super::fields::{NewField, NewFieldType, NewValue};
use super::reader::VectorSource;
use crate::{Error, Result};

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
    let written = write_copy(source, &drv, &driver_name, &temp, &columns, values);
    let copied = match written {
        Ok(c) => c,
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
        driver: driver_name,
        features: copied.features,
        fields: copied.fields,
        lists,
        fids_kept: copied.fids_kept,
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
