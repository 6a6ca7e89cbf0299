//! Finding the interop Python: the real tools (TensorFlow, a TF Serving client) the interop
//! tests check our encodings against.

use std::path::{Path, PathBuf};

/// The interop Python: `EE_INTEROP_PYTHON`, else the workspace's `target/py` virtual
/// environment that `cargo xtask test` makes. `None` means the caller skips its test (a line
/// on stderr says so); with `EE_REQUIRE_INTEROP` set (as `cargo xtask test` sets it) a
/// missing Python panics instead, so a run that must check interop cannot pass by skipping.
pub fn interop_python() -> Option<PathBuf> {
    let found = match std::env::var_os("EE_INTEROP_PYTHON") {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/py/bin/python");
            venv.exists().then_some(venv)
        }
    };
    if found.is_none() {
        assert!(
            std::env::var_os("EE_REQUIRE_INTEROP").is_none(),
            "EE_REQUIRE_INTEROP is set but no interop Python was found"
        );
        eprintln!("skipping: no interop Python (run `cargo xtask test`)");
    }
    found
}
