//! Strata's benchmarks and the deterministic workload generator they share with the tests.
