//! Placeholder while issue 7 is built.
