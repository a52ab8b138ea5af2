//! libFuzzer entry point for `strata_fuzz::targets::internal_api`; see its docs.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strata_fuzz::targets::internal_api(data));
