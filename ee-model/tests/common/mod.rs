//! Helpers shared by ee-model's end-to-end tests: the test models, a scratch directory per
//! test process, small GeoTIFFs with known values, and a loopback server answering
//! `SERIALIZED_TF_TENSORS` requests with a test model.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use gdal::raster::{Buffer, RasterCreationOptions};
use gdal::spatial_ref::SpatialRef;
use gdal::{Dataset, DriverManager, Metadata};

pub fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models")
}

pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ee-model-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A tiled GeoTIFF of `bands` bands of `T` on a 10 m UTM 33N grid, the bands described
/// `B1`, `B2`...; the pixels are the caller's to write.
pub fn create_tiff<T: gdal::raster::GdalType>(
    path: &Path,
    w: usize,
    h: usize,
    bands: usize,
) -> Dataset {
    let driver = DriverManager::get_driver_by_name("GTiff").unwrap();
    let mut ds = driver
        .create_with_band_type_with_options::<T, _>(
            path,
            w,
            h,
            bands,
            &RasterCreationOptions::from_iter(["TILED=YES"]),
        )
        .unwrap();
    ds.set_geo_transform(&[500_000.0, 10.0, 0.0, 5_000_000.0, 0.0, -10.0])
        .unwrap();
    ds.set_spatial_ref(&SpatialRef::from_epsg(32633).unwrap())
        .unwrap();
    for b in 1..=bands {
        ds.rasterband(b)
            .unwrap()
            .set_description(&format!("B{b}"))
            .unwrap();
    }
    ds
}

/// A 3-band float32 raster with smooth varied values; `hole` is a nodata rectangle in band 2.
pub fn make_input(path: &Path, w: usize, h: usize, hole: Option<(usize, usize, usize, usize)>) {
    let ds = create_tiff::<f32>(path, w, h, 3);
    for b in 1..=3 {
        let mut band = ds.rasterband(b).unwrap();
        band.set_no_data_value(Some(-9999.0)).unwrap();
        let data: Vec<f32> = (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                if b == 2
                    && hole.is_some_and(|(x0, y0, x1, y1)| {
                        (x0..x1).contains(&x) && (y0..y1).contains(&y)
                    })
                {
                    -9999.0
                } else {
                    ((x as f32 * 0.21 + b as f32).sin() + (y as f32 * 0.13).cos()) * (b as f32)
                }
            })
            .collect();
        band.write((0, 0), (w, h), &mut Buffer::new((w, h), data))
            .unwrap();
    }
}

pub fn read_band(path: &Path, band: usize) -> (Vec<f32>, usize, usize, Option<f64>) {
    let ds = Dataset::open(path).unwrap();
    let (w, h) = ds.raster_size();
    let b = ds.rasterband(band).unwrap();
    let nodata = b.no_data_value();
    (
        b.read_as::<f32>((0, 0), (w, h), (w, h), None)
            .unwrap()
            .into_shape_and_vec()
            .1,
        w,
        h,
        nodata,
    )
}

/// The interop Python, or a skip (the workspace's one lookup, in `ee-fuzzkit`); not every
/// test binary that includes this module asks for it.
#[allow(unused_imports)]
pub use ee_fuzzkit::interop_python;

/// Requests a [`serve_stt`] server answered: each one's path, instance count and body bytes.
pub type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, usize, usize)>>>;

/// A loopback HTTP server (any path, e.g. AI Platform's) answering `SERIALIZED_TF_TENSORS`
/// requests with the test model `file`; returns its address and what it has answered.
pub async fn serve_stt(file: &str) -> (std::net::SocketAddr, Seen) {
    use ee_tensor_proto::payload::serialized_tf_tensors;
    let model = std::sync::Arc::new(
        ee_model::LocalModel::load(models().join(file), ee_model::Layout::Nhwc).unwrap(),
    );
    let seen = Seen::default();
    let log = seen.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, body: axum::body::Bytes| {
        let (m, log) = (model.clone(), log.clone());
        async move {
            let rows = serialized_tf_tensors::decode_request(&body, &[]).unwrap();
            log.lock()
                .unwrap()
                .push((uri.path().to_string(), rows.len(), body.len()));
            let answers = tokio::task::spawn_blocking(move || m.run(&rows).unwrap())
                .await
                .unwrap();
            let mut out = Vec::new();
            serialized_tf_tensors::encode_response(&answers, &mut out).unwrap();
            out
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

/// A child process killed (and reaped) when dropped.
pub struct ChildGuard(pub std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
