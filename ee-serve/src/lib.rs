//! Placeholder while issue 6 is built.
