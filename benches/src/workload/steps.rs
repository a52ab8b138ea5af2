//! Steps several journeys share: the gateway's root span, the session check, the catalog's
//! cached product lookup, picking a user.

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

use super::attrs::{BROWSERS, USERS, attrs, int, sql, text};
use super::calls::Http;
use super::services::{Instr, Svc, scope_of};
use super::tree::{Opening, Role, TraceBuilder};

/// A millisecond in nanoseconds.
pub(crate) const MS: u64 = 1_000_000;

/// A user from the population, skewed so that a few users are far more active than most.
pub(crate) fn pick_user(b: &mut TraceBuilder<'_>) -> String {
    b.dice.skewed(1, USERS).to_string()
}

/// The root SERVER span at the public gateway; `serve` handles the request and returns the
/// status code.
pub(crate) fn gateway<'d>(
    b: &mut TraceBuilder<'d>,
    (method, route): (&'static str, &'static str),
    path: String,
    query: Option<String>,
    serve: impl FnOnce(&mut TraceBuilder<'d>, usize) -> i64,
) {
    let pod = b.pod_of(Svc::Frontend);
    let client = b.dice.u64();
    let client = format!(
        "{}.{}.{}.{}",
        2 + client % 221,
        client >> 8 & 255,
        client >> 16 & 255,
        { 1 + (client >> 24) % 254 }
    );
    let mut attributes = attrs![
        text("http.request.method", method),
        text("http.route", route),
        text("url.path", path),
        text("url.scheme", "https"),
        text("server.address", "shop.example.com"),
        int("server.port", 443),
        text("network.protocol.version", "2"),
        text("client.address", client),
        text("user_agent.original", *b.dice.pick(&BROWSERS)),
    ];
    if let Some(query) = query {
        attributes.push(text("url.query", query));
    }
    let root = b.open(Opening {
        pod,
        scope: scope_of(Svc::Frontend, Instr::HttpServer),
        role: Role::HttpServer,
        kind: SpanKind::Server,
        name: format!("{method} {route}"),
        attributes,
    });
    b.pass(30_000, 300_000);
    let status = serve(b, root);
    b.pass(20_000, 200_000);
    b.add(root, int("http.response.status_code", status));
    b.close();
}

/// The gateway asking the auth service whether the caller's session is valid.
pub(crate) fn check_session(b: &mut TraceBuilder<'_>, user: &str) {
    let token = format!("session:{:016x}", b.dice.u64());
    let req = Http {
        method: "GET",
        route: "/auth/session",
        path: "/auth/session".to_owned(),
    };
    b.http_call(Svc::Auth, req, |b, server| {
        b.redis("HGETALL", &token, "");
        b.add(server, text("app.user.id", user));
        200
    });
}

/// The catalog's read-through cached product lookup; returns the HTTP status.
pub(crate) fn product_lookup(b: &mut TraceBuilder<'_>, server: usize, product: u64) -> i64 {
    b.add(server, text("app.product.id", product.to_string()));
    let key = format!("product:{product}");
    b.redis("GET", &key, "");
    if b.dice.per_mille(700) {
        return 200;
    }
    b.event(server, "cache miss", vec![text("cache.key", key.clone())]);
    if b.dice.per_mille(80) {
        b.query(&sql::PRODUCT_BY_ID, Some(0));
        return 404;
    }
    b.query(&sql::PRODUCT_BY_ID, Some(1));
    let images = b.dice.between(1, 8) as i64;
    b.query(&sql::PRODUCT_IMAGES, Some(images));
    b.redis("SET", &key, "? EX 3600");
    200
}
