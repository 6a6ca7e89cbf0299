//! Reading and writing layers, through the public API.

use std::path::{Path, PathBuf};

use gdal::GdalOpenFlags;

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
