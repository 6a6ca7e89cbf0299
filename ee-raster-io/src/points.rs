//! Labelled points from any vector format OGR reads (GeoJSON, GeoPackage, Shapefile, CSV with
//! geometry...): each point's coordinates in a raster's CRS and one numeric property, for
//! sampling training data at known locations.

use std::path::Path;

use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use gdal::vector::{FieldValue, LayerAccess, OGRwkbGeometryType};
use gdal::{Dataset, GdalOpenFlags};

use crate::error::gdal_err;
use crate::{Error, Result};

/// Whether the property holds integers (classes) or real numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PropertyKind {
    /// An integer field (OGR `Integer` or `Integer64`).
    Integer,
    /// A real field (OGR `Real`).
    Real,
}

/// One point and its property value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LabeledPoint {
    /// Zero-based index of the feature in the layer (in reading order).
    pub feature: usize,
    /// x in the target CRS (easting or longitude).
    pub x: f64,
    /// y in the target CRS (northing or latitude).
    pub y: f64,
    /// The property's value.
    pub value: f64,
}

/// The points of one layer.
#[derive(Clone, Debug, PartialEq)]
pub struct PointSet {
    /// The property read.
    pub property: String,
    /// Its field type.
    pub kind: PropertyKind,
    /// The points, in feature order (a multipoint gives one entry per point).
    pub points: Vec<LabeledPoint>,
}

fn open_vector(path: &Path) -> Result<Dataset> {
    crate::gdal_apps::open_read_only(path, GdalOpenFlags::GDAL_OF_VECTOR, &[])
}

/// Reads the point features of the first layer of `path` with their numeric `property`,
/// transformed into `target_crs` (WKT or any definition GDAL accepts; empty keeps the layer's
/// coordinates). A feature without a point geometry, without the property or with a
/// non-numeric one is an error naming the feature.
pub fn read_points(path: impl AsRef<Path>, property: &str, target_crs: &str) -> Result<PointSet> {
    let path = path.as_ref();
    let ds = open_vector(path)?;
    if ds.layer_count() == 0 {
        return Err(Error::Grid(format!("{}: no vector layer", path.display())));
    }
    let mut layer = ds
        .layer(0)
        .map_err(gdal_err(path, "opening the first layer"))?;
    let defn = layer.defn();
    let Ok(field) = defn.field_index(property) else {
        let names: Vec<String> = defn.fields().map(|f| f.name()).collect();
        return Err(Error::Grid(format!(
            "{}: no property {property:?} (the layer has {})",
            path.display(),
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        )));
    };
    let field_type = defn
        .fields()
        .nth(field)
        .map(|f| f.field_type())
        .unwrap_or(gdal::vector::OGRFieldType::OFTString);
    let kind = match field_type {
        gdal::vector::OGRFieldType::OFTInteger | gdal::vector::OGRFieldType::OFTInteger64 => {
            PropertyKind::Integer
        }
        gdal::vector::OGRFieldType::OFTReal => PropertyKind::Real,
        other => {
            return Err(Error::Unsupported(format!(
                "{}: property {property:?} is of type {} (expected an integer or real field)",
                path.display(),
                gdal::vector::field_type_to_name(other)
            )))
        }
    };
    let transform = match (layer.spatial_ref(), target_crs.trim().is_empty()) {
        (Some(mut src), false) => {
            let mut dst = SpatialRef::from_definition(target_crs)
                .map_err(|e| Error::Grid(format!("target CRS {target_crs:?}: {e}")))?;
            if src == dst {
                None
            } else {
                src.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
                dst.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
                Some(CoordTransform::new(&src, &dst).map_err(|e| {
                    Error::Grid(format!(
                        "{}: cannot transform the points to the raster's CRS: {e}",
                        path.display()
                    ))
                })?)
            }
        }
        _ => None,
    };
    let mut points = Vec::new();
    for (index, feature) in layer.features().enumerate() {
        let value = match feature
            .field(field)
            .map_err(gdal_err(path, format!("reading feature {index}")))?
        {
            Some(FieldValue::IntegerValue(v)) => v as f64,
            Some(FieldValue::Integer64Value(v)) => v as f64,
            Some(FieldValue::RealValue(v)) => v,
            None => {
                return Err(Error::Grid(format!(
                    "{}: feature {index} has no value for {property:?}",
                    path.display()
                )))
            }
            Some(other) => {
                return Err(Error::Grid(format!(
                    "{}: feature {index}: {property:?} is not a number ({other:?})",
                    path.display()
                )))
            }
        };
        let Some(geometry) = feature.geometry() else {
            return Err(Error::Grid(format!(
                "{}: feature {index} has no geometry",
                path.display()
            )));
        };
        let mut coords = Vec::new();
        match gdal::vector::geometry_type_flatten(geometry.geometry_type()) {
            OGRwkbGeometryType::wkbPoint => {
                let (x, y, _) = geometry.get_point(0);
                coords.push((x, y));
            }
            OGRwkbGeometryType::wkbMultiPoint => {
                for i in 0..geometry.geometry_count() {
                    let (x, y, _) = geometry.get_geometry(i).get_point(0);
                    coords.push((x, y));
                }
            }
            _ => {
                return Err(Error::Unsupported(format!(
                    "{}: feature {index} is a {} (expected a point or multipoint)",
                    path.display(),
                    geometry.geometry_name()
                )))
            }
        }
        if let Some(ct) = &transform {
            let mut xs: Vec<f64> = coords.iter().map(|c| c.0).collect();
            let mut ys: Vec<f64> = coords.iter().map(|c| c.1).collect();
            let mut zs = vec![0.0; xs.len()];
            ct.transform_coords(&mut xs, &mut ys, &mut zs)
                .map_err(|e| {
                    Error::Grid(format!(
                        "{}: transforming feature {index} to the raster's CRS: {e}",
                        path.display()
                    ))
                })?;
            coords = xs.into_iter().zip(ys).collect();
        }
        points.extend(coords.into_iter().map(|(x, y)| LabeledPoint {
            feature: index,
            x,
            y,
            value,
        }));
    }
    Ok(PointSet {
        property: property.to_string(),
        kind,
        points,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("ee-raster-io-points-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn reads_points_and_transforms_them() {
        let path = write(
            "p.geojson",
            r#"{"type":"FeatureCollection","features":[
              {"type":"Feature","properties":{"class":3,"w":0.5},"geometry":{"type":"Point","coordinates":[15.0,45.0]}},
              {"type":"Feature","properties":{"class":1,"w":1.5},"geometry":{"type":"MultiPoint","coordinates":[[15.0,45.0],[15.001,45.001]]}}
            ]}"#,
        );
        let set = read_points(&path, "class", "").unwrap();
        assert_eq!(set.kind, PropertyKind::Integer);
        assert_eq!(set.points.len(), 3);
        assert_eq!(set.points[0].value, 3.0);
        assert_eq!((set.points[2].feature, set.points[2].value), (1, 1.0));
        assert_eq!((set.points[0].x, set.points[0].y), (15.0, 45.0));
        let real = read_points(&path, "w", "EPSG:32633").unwrap();
        assert_eq!(real.kind, PropertyKind::Real);
        // 15 E is the central meridian of UTM 33: easting 500 km; northing as gdaltransform gives.
        assert!(
            (real.points[0].x - 500_000.0).abs() < 1e-6,
            "{:?}",
            real.points[0]
        );
        assert!(
            (real.points[0].y - 4_982_950.400_226_55).abs() < 1e-3,
            "{:?}",
            real.points[0]
        );
        let err = read_points(&path, "nope", "").unwrap_err().to_string();
        assert!(
            err.contains("no property \"nope\"") && err.contains("class"),
            "{err}"
        );
    }

    #[test]
    fn non_points_and_missing_values_name_the_feature() {
        let path = write(
            "l.geojson",
            r#"{"type":"FeatureCollection","features":[
              {"type":"Feature","properties":{"c":1},"geometry":{"type":"Point","coordinates":[1,2]}},
              {"type":"Feature","properties":{"c":2},"geometry":{"type":"LineString","coordinates":[[0,0],[1,1]]}}
            ]}"#,
        );
        let err = read_points(&path, "c", "").unwrap_err().to_string();
        assert!(
            err.contains("feature 1") && err.contains("LINESTRING"),
            "{err}"
        );
        let path = write(
            "n.geojson",
            r#"{"type":"FeatureCollection","features":[
              {"type":"Feature","properties":{"c":1},"geometry":{"type":"Point","coordinates":[1,2]}},
              {"type":"Feature","properties":{"c":null},"geometry":{"type":"Point","coordinates":[1,2]}}
            ]}"#,
        );
        let err = read_points(&path, "c", "").unwrap_err().to_string();
        assert!(err.contains("feature 1 has no value"), "{err}");
    }
}
