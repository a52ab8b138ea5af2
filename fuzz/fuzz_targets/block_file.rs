//! libFuzzer entry point for `strata_fuzz::targets::block_file`; see its docs.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strata_fuzz::targets::block_file(data));
