//! glibc malloc settings for model runs.

/// Keeps freed memory in the process instead of handing it back to the kernel after every
/// model run. glibc's malloc returns the top of its heap to the kernel once more than
/// `M_TRIM_THRESHOLD` of it is free, and serves blocks over `M_MMAP_THRESHOLD` with their own
/// `mmap`, unmapped on free; both thresholds start near 128 KiB and only slowly adapt. A
/// model run allocates and frees its scratch (im2col patches, padded copies, activations:
/// megabytes per tile) every time, so each run page-faulted all of it back in, zeroed by the
/// kernel: a third of tract's time on the demo model (perf, before the layout fix). This raises the mmap threshold to
/// glibc's maximum (32 MiB) and the trim threshold to 256 MiB, so the scratch is reused from
/// one run to the next; up to 256 MiB of freed memory may stay with the process.
///
/// Process-wide, so binaries call it once at start-up (the library does not do it behind
/// their back). Returns whether the settings took: false on targets other than Linux with
/// glibc, where it does nothing. Calling it again is harmless.
pub fn tune_allocator() -> bool {
    imp::tune()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod imp {
    use std::os::raw::c_int;

    extern "C" {
        // glibc's <malloc.h>: int mallopt(int param, int value); returns 1 on success.
        fn mallopt(param: c_int, value: c_int) -> c_int;
    }

    const M_TRIM_THRESHOLD: c_int = -1;
    const M_MMAP_THRESHOLD: c_int = -3;
    /// glibc's ceiling for `M_MMAP_THRESHOLD` on 64-bit targets (`HEAP_MAX_SIZE / 2`).
    const MMAP_THRESHOLD: c_int = 32 << 20;
    const TRIM_THRESHOLD: c_int = 256 << 20;

    pub(super) fn tune() -> bool {
        // SAFETY: mallopt only changes malloc's parameters; glibc takes its arena lock.
        unsafe {
            let mmap = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            let trim = mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD);
            mmap == 1 && trim == 1
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod imp {
    pub(super) fn tune() -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tuning_takes_on_glibc() {
        let took = super::tune_allocator();
        assert_eq!(took, cfg!(all(target_os = "linux", target_env = "gnu")));
        // Twice is fine.
        assert_eq!(super::tune_allocator(), took);
    }
}
