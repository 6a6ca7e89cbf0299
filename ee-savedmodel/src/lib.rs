//! Placeholder while issue 8 is built.
