//! Test-only helpers shared by the workspace's tests (not published): fuzzing the decoders,
//! and finding the Python the interop tests run.
//!
//! - [`Counting`]: a global allocator that counts, per thread, the bytes allocated, and
//!   [`allocated_by`] to measure a closure, so a test can bound what a decoder allocates for
//!   `n` bytes of input (a forged length field must not make it allocate gigabytes).
//! - [`mutation`], [`apply`], [`fuzzed`]: proptest strategies that mutate valid encodings
//!   (bit flips, truncation, inserted and deleted bytes, forged 8-byte words, JSON
//!   punctuation) or give random bytes.
//!
//! - [`interop_python`]: the interop Python (`EE_INTEROP_PYTHON`, else `target/py`), or a
//!   skip, or a failure when `EE_REQUIRE_INTEROP` is set.
//!
//! A test binary installs the allocator with
//! `#[global_allocator] static GLOBAL: ee_fuzzkit::Counting = ee_fuzzkit::Counting;`.

use std::alloc::{GlobalAlloc, Layout as AllocLayout, System};
use std::cell::Cell;

mod interop;

pub use interop::interop_python;

use proptest::prelude::*;
use proptest::sample::Index;

/// Counts every allocation and reallocation of the current thread (install it as the
/// global allocator of a test binary).
pub struct Counting;

thread_local! {
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

fn count(bytes: usize) {
    let _ = ALLOCATED.try_with(|a| a.set(a.get().saturating_add(bytes)));
}

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: AllocLayout) -> *mut u8 {
        count(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: AllocLayout) -> *mut u8 {
        count(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: AllocLayout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: AllocLayout, new_size: usize) -> *mut u8 {
        count(new_size);
        System.realloc(ptr, layout, new_size)
    }
}

/// Runs `f`, returning its value and the bytes it allocated (every allocation and
/// reallocation counted in full, so this is an upper bound of the peak).
pub fn allocated_by<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCATED.with(Cell::get);
    let value = f();
    (value, ALLOCATED.with(Cell::get) - before)
}

/// One change to a byte string.
#[derive(Clone, Debug)]
pub enum Mutation {
    /// Flips one bit of one byte.
    FlipBit(Index, u8),
    /// Cuts the data at a point.
    Truncate(Index),
    /// Inserts bytes at a point.
    Insert(Index, Vec<u8>),
    /// Deletes up to this many bytes at a point.
    Delete(Index, u8),
    /// Overwrites 8 bytes with a little-endian huge value (a forged length or count).
    Forge(Index, u64),
    /// Overwrites one byte (often JSON punctuation).
    SetByte(Index, u8),
}

/// A random [`Mutation`].
pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        1 => (any::<Index>(), 1u8..16).prop_map(|(i, n)| Mutation::Delete(i, n)),
        1 => (any::<Index>(), prop_oneof![Just(1u64 << 60), Just(u64::MAX), Just(1u64 << 32), any::<u64>()])
            .prop_map(|(i, v)| Mutation::Forge(i, v)),
        2 => (any::<Index>(), prop_oneof![Just(b'['), Just(b']'), Just(b'"'), Just(b'{'), Just(b','), Just(b'9'), Just(0xFF), any::<u8>()])
            .prop_map(|(i, b)| Mutation::SetByte(i, b)),
    ]
}

/// Applies `mutations` in order (stopping once the data is empty).
pub fn apply(mut data: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        if data.is_empty() {
            break;
        }
        match m {
            Mutation::FlipBit(i, b) => {
                let i = i.index(data.len());
                data[i] ^= 1 << b;
            }
            Mutation::Truncate(i) => data.truncate(i.index(data.len())),
            Mutation::Insert(i, v) => {
                let i = i.index(data.len() + 1);
                data.splice(i..i, v.iter().copied());
            }
            Mutation::Delete(i, n) => {
                let i = i.index(data.len());
                let end = (i + *n as usize).min(data.len());
                data.drain(i..end);
            }
            Mutation::Forge(i, v) => {
                let i = i.index(data.len());
                for (k, b) in v.to_le_bytes().iter().enumerate() {
                    if let Some(d) = data.get_mut(i + k) {
                        *d = *b;
                    }
                }
            }
            Mutation::SetByte(i, b) => {
                let i = i.index(data.len());
                data[i] = *b;
            }
        }
    }
    data
}

/// A valid seed from `seeds` mutated a few times, or (one case in eight) random bytes.
pub fn fuzzed(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let n = seeds.len();
    prop_oneof![
        7 => (0..n, prop::collection::vec(mutation(), 1..6))
            .prop_map(move |(s, m)| apply(seeds[s].clone(), &m)),
        1 => prop::collection::vec(any::<u8>(), 0..512),
    ]
}

/// A proptest configuration of `cases` cases that writes no regression files.
pub fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}
