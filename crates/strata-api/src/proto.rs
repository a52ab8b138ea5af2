//! The Tempo query API messages of `proto/tempopb/tempo.proto`, generated at build time.

#![allow(missing_docs, unreachable_pub, clippy::all)]

include!(concat!(env!("OUT_DIR"), "/tempopb.rs"));
