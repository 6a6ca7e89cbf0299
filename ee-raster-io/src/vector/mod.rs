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
//!
//! Inside: `fields` (the fields of a layer and their values, existing and new), `reader`
//! ([`VectorSource`]), `writer` ([`write_with_new_fields`]: the columns to add, the partial
//! folder and the move into place), `copy` (the layer copy through OGR's C API, where most
//! of the `unsafe` is) and `ogr` (opening read-only and GDAL's error messages, for both).

mod copy;
mod fields;
mod ogr;
mod reader;
#[cfg(test)]
mod tests;
mod writer;

pub use fields::{
    feature_label, FeatureValues, FieldInfo, FieldKind, NewField, NewFieldType, NewValue, Value,
};
pub use reader::VectorSource;
pub use writer::{driver_supports_lists, partial_dir, write_with_new_fields, WriteOutcome};
