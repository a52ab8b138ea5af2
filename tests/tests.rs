//! Black-box tests: the real `strata` binary on loopback ports, real clients, real files.

mod support;
