//! The facade: `Model::predict_image` and the `ee-model` command. It ties the raster reader
//! (`ee-raster-io`), tile geometry (`ee-tiling`), wire codec (`ee-tensor-proto`) and
//! predictor transports (`ee-predict-client`) into Earth Engine's `predictImage` workflow.
