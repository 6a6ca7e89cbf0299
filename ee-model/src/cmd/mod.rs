//! One module per subcommand: its clap arguments and its `run`.

pub mod export_tfrecord;
pub mod export_training;
pub mod import_tfrecord;
pub mod predict;
pub mod prepare;
pub mod serve;
pub mod predict_properties;
