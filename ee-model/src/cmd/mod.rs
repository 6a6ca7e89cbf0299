//! One module per subcommand: its clap arguments and its `run`.

pub mod predict;
pub mod prepare;
pub mod predict_properties;
