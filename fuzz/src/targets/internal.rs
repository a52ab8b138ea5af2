//! `internal_api`: the ingester's internal gRPC handlers (`FindTrace`, `Search`, `Tags`) called
//! with arbitrary message bytes and tenant headers, over the fixture as recent data.
//!
//! Input: byte 0 picks the method, byte 1 the tenant header (none, the fixture's, another, or
//! taken from the input: byte 2 is its length), the rest is the protobuf message.

use std::sync::{Arc, OnceLock};

use strata_query::{IngesterService, InternalMethod};

use super::recent::FixtureRecent;
use crate::runtime::run;

fn service() -> Arc<IngesterService> {
    static SERVICE: OnceLock<Arc<IngesterService>> = OnceLock::new();
    Arc::clone(SERVICE.get_or_init(|| {
        Arc::new(IngesterService::new(
            Arc::new(FixtureRecent::new(true)),
            true,
        ))
    }))
}

/// One internal API request.
pub fn internal_api(data: &[u8]) {
    crate::panics::install();
    let [method, tenant, rest @ ..] = data else {
        return;
    };
    let method = match method % 3 {
        0 => InternalMethod::FindTrace,
        1 => InternalMethod::Search,
        _ => InternalMethod::Tags,
    };
    let (tenant, body): (Option<Vec<u8>>, &[u8]) = match tenant % 4 {
        0 => (None, rest),
        1 => (Some(crate::fixture::TENANT.into()), rest),
        2 => (Some(b"someone-else".to_vec()), rest),
        _ => match rest.split_first() {
            Some((&len, rest)) => {
                let len = usize::from(len).min(rest.len());
                (Some(rest[..len].to_vec()), &rest[len..])
            }
            None => (None, rest),
        },
    };
    let service = service();
    let body = body.to_vec();
    let answer = run(async move { service.call_encoded(method, tenant.as_deref(), &body).await });
    if let Err(status) = answer {
        assert_ne!(
            status.code(),
            tonic::Code::Unknown,
            "a handler answered with an unclassified status: {status:?}"
        );
    }
}
