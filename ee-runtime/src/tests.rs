//! `LocalModel::run` against tract run directly on the unmodified graph: the folded
//! transposes, the one-at-a-time runs of large instances and the reused run states must not
//! change an answer.

use std::path::PathBuf;

use ee_tensor_proto::{Instance, Tensor};
use ndarray::{ArrayD, IxDyn};
use tract_onnx::prelude::{
    tvec, Datum, Framework, InferenceFact, InferenceModelExt, IntoRunnable, IntoTValue,
    Tensor as TractTensor, TractResult,
};

use crate::{Error, Layout, LocalModel};

fn workspace(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

/// NHWC batch of `shape` with values sin(i * 0.618034), as the benches use.
fn sample(shape: &[usize]) -> ArrayD<f32> {
    let n: usize = shape.iter().product();
    ArrayD::from_shape_vec(
        IxDyn(shape),
        (0..n).map(|i| ((i as f32) * 0.618_034).sin()).collect(),
    )
    .unwrap()
}

/// The model's first output for `input`, tract straight on the file.
fn reference(path: &PathBuf, input: &ArrayD<f32>) -> TractResult<ArrayD<f32>> {
    let model = tract_onnx::onnx()
        .model_for_path(path)?
        .with_input_fact(0, InferenceFact::dt_shape(f32::datum_type(), input.shape()))?
        .into_optimized()?
        .into_runnable()?;
    let out = model.run(tvec!(TractTensor::from(input.clone()).into_tvalue()))?;
    Ok(out[0].to_plain_array_view::<f32>()?.to_owned())
}

fn instances(batch: &ArrayD<f32>) -> Vec<Instance> {
    batch
        .outer_iter()
        .map(|tile| Instance::new().with("input", Tensor::F32(tile.to_owned())))
        .collect()
}

fn assert_close(model: &LocalModel, batch: &ArrayD<f32>) {
    let want = reference(&model.path().to_path_buf(), batch).unwrap();
    // Twice: the second run takes the cached plan and a reused state.
    for _ in 0..2 {
        let rows = model.run(&instances(batch)).unwrap();
        assert_eq!(rows.len(), batch.shape()[0]);
        for (row, want) in rows.iter().zip(want.outer_iter()) {
            let (_, got) = row.iter().next().unwrap();
            let Tensor::F32(got) = got else {
                panic!("float output")
            };
            assert_eq!(got.shape(), want.shape());
            let worst = got
                .iter()
                .zip(want.iter())
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(worst < 1e-5, "largest difference {worst}");
        }
    }
}

#[test]
fn transposes_are_folded_where_tract_then_has_a_direct_conv() {
    let model = LocalModel::load(workspace("ee-model/demo/water.onnx"), Layout::Nhwc).unwrap();
    assert!(model.engine.folded.is_some());
    // What the caller sees is still the declared NHWC graph.
    assert_eq!(model.input_infos()[0].shape, [None, None, None, Some(4)]);
    // Rows of 128 get tract's direct convolution, NCHW: folded.
    let wide = model
        .engine
        .plan(&model.sig, &[vec![1, 128, 128, 4]])
        .unwrap();
    assert_eq!(
        (&wide.feed_nchw[..], &wide.take_nchw[..]),
        (&[true][..], &[true][..])
    );
    // Short rows do not: the declared graph, NHWC in and out.
    let short = model.engine.plan(&model.sig, &[vec![1, 8, 8, 4]]).unwrap();
    assert_eq!(
        (&short.feed_nchw[..], &short.take_nchw[..]),
        (&[false][..], &[false][..])
    );
    let path = workspace("benches/models/resnet_block.onnx");
    let resnet = LocalModel::load(path, Layout::Nhwc).unwrap();
    assert!(resnet.engine.folded.is_some());
    assert_eq!(
        resnet
            .engine
            .plan(&resnet.sig, &[vec![1, 64, 64, 64]])
            .unwrap()
            .feed_nchw,
        [false]
    );
}

#[test]
fn large_tiles_run_one_at_a_time_with_the_same_answers() {
    let model = LocalModel::load(workspace("ee-model/demo/water.onnx"), Layout::Nhwc).unwrap();
    assert_close(&model, &sample(&[3, 64, 48, 4]));
    assert_close(&model, &sample(&[2, 16, 128, 4]));
}

#[test]
fn small_tiles_run_stacked_with_the_same_answers() {
    let model = LocalModel::load(workspace("ee-model/demo/water.onnx"), Layout::Nhwc).unwrap();
    assert_close(&model, &sample(&[5, 8, 8, 4]));
    // Stacked and folded: rows of 128 (tract's direct convolution) in a batch of three.
    assert_close(&model, &sample(&[3, 2, 128, 4]));
    assert!(
        model
            .engine
            .plan(&model.sig, &[vec![3, 2, 128, 4]])
            .unwrap()
            .feed_nchw[0]
    );
}

#[test]
fn resnet_block_gives_the_same_answers() {
    let path = workspace("benches/models/resnet_block.onnx");
    let model = LocalModel::load(path, Layout::Nhwc).unwrap();
    assert_close(&model, &sample(&[2, 12, 10, 64]));
}

#[test]
fn a_batch_of_mixed_shapes_is_the_callers_fault() {
    let model = LocalModel::load(workspace("ee-model/demo/water.onnx"), Layout::Nhwc).unwrap();
    let mut batch = instances(&sample(&[1, 64, 64, 4]));
    batch.extend(instances(&sample(&[1, 32, 64, 4])));
    assert!(matches!(model.run(&batch), Err(Error::Input { .. })));
    // Wrong band count: reported in the NHWC shapes the caller knows.
    let e = model.run(&instances(&sample(&[1, 8, 8, 3]))).unwrap_err();
    assert!(matches!(e, Error::Input { .. }), "{e}");
    assert!(e.to_string().contains("[1, 8, 8, 3]"), "{e}");
}
