//! One module per subcommand: its clap arguments and its `run`.

pub mod export_tfrecord;
pub mod export_training;
pub mod import_tfrecord;
pub mod predict;
pub mod predict_properties;
pub mod prepare;
#[cfg(feature = "serve")]
pub mod serve;
