//! Strata's fuzz targets: each a function over `&[u8]` that feeds the bytes to one of Strata's
//! decoders or parsers, the way the server would meet them, and checks what it can about the
//! answer. Any panic, abort, allocation above [`alloc::MAX_ALLOCATION`] or timeout is a finding;
//! an error returned for bad bytes is not.
//!
//! The binaries in `fuzz_targets/` wrap these functions for libFuzzer; `make-corpus` writes the
//! seed corpora in `corpus/` from [`fixture`]; `fuzz/run` builds and runs them (see README.md).
//! This crate is its own cargo workspace, outside the root one.

pub mod alloc;
pub mod fixture;
pub mod panics;
pub mod roundtrip;
pub mod runtime;
pub mod seeds;
pub mod targets;
pub mod wire;

#[global_allocator]
static ALLOCATOR: alloc::CappedAlloc = alloc::CappedAlloc;
