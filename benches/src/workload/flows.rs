//! The user journeys the shop serves, each a function that builds one trace's happy path
//! (plus the client errors that are part of normal traffic, such as a 404 or a failed login).
//! Server errors and slow outliers are applied afterwards by `faults`.

use super::attrs::{BROWSERS, PRODUCTS, SEARCH_TERMS, USERS, flag, float, int, sql, text, texts};
use super::calls::{Http, Rpc};
use super::services::{Instr, Svc, scope_of};
use super::tree::{Node, Opening, Role, TraceBuilder};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

/// What carries over from one trace to the next: the last order message sent, which the next
/// notification consumer may receive in the same batch (and so link to).
#[derive(Default)]
pub(crate) struct Memory {
    last_order_message: Option<(Vec<u8>, Vec<u8>)>,
}

impl Memory {
    /// Forgets the last order message if it was sent by `trace_id` but is no longer among
    /// `nodes` (a fault cut it), so that no later span links to a span that was never sent.
    pub(crate) fn forget_missing(&mut self, trace_id: &[u8; 16], nodes: &[Node]) {
        if let Some((trace, span)) = &self.last_order_message
            && trace.as_slice() == trace_id
            && !nodes.iter().any(|n| &n.span.span_id == span)
        {
            self.last_order_message = None;
        }
    }
}

/// A named, weighted journey.
pub(crate) struct Flow {
    pub(crate) name: &'static str,
    pub(crate) weight: u32,
    pub(crate) build: fn(&mut TraceBuilder<'_>, &mut Memory),
}

/// Every flow, with its share of the traffic (weights sum to 100).
pub(crate) const FLOWS: [Flow; 6] = [
    Flow { name: "browse_product", weight: 35, build: browse_product },
    Flow { name: "search", weight: 20, build: search },
    Flow { name: "add_to_cart", weight: 15, build: add_to_cart },
    Flow { name: "checkout", weight: 12, build: checkout },
    Flow { name: "order_history", weight: 10, build: order_history },
    Flow { name: "login", weight: 8, build: login },
];

const MS: u64 = 1_000_000;
const PAYMENT_PROVIDER: &str = "api.paybridge.io";
const MAIL_RELAY: &str = "api.mailrelay.io";
const SEARCH_CLUSTER: &str = "vpc-shop-search-4xq2.eu-west-1.es.amazonaws.com";

fn browse_product(b: &mut TraceBuilder<'_>, _: &mut Memory) {
    let user = pick_user(b);
    let product = b.dice.skewed(1, PRODUCTS);
    let path = format!("/api/products/{product}");
    gateway(b, ("GET", "/api/products/{id}"), path, None, |b, root| {
        b.add(root, text("app.user.id", user.clone()));
        check_session(b, &user);
        let path = format!("/products/{product}");
        let req = Http { method: "GET", route: "/products/{id}", path };
        let status = b.http_call(Svc::Catalog, req, |b, server| product_lookup(b, server, product));
        if status == 200 && b.dice.per_mille(600) {
            let rpc = Rpc { service: "inventory.v1.InventoryService", method: "GetStock" };
            b.grpc_call(Svc::Inventory, rpc, |b, _| {
                b.query(&sql::STOCK_AVAILABLE, Some(1));
            });
        }
        b.internal("render_product_page", 40_000, 900_000);
        status
    });
}

fn search(b: &mut TraceBuilder<'_>, _: &mut Memory) {
    let user = pick_user(b);
    let term = *b.dice.pick(&SEARCH_TERMS);
    let page = 1 + b.dice.skewed(0, 4);
    let query = format!("q={term}&page={page}");
    gateway(b, ("GET", "/api/search"), "/api/search".to_owned(), Some(query), |b, root| {
        b.add(root, text("app.user.id", user.clone()));
        check_session(b, &user);
        let req = Http { method: "GET", route: "/search", path: "/search".to_owned() };
        b.http_call(Svc::Search, req, |b, server| {
            let key = format!("search:{term}:{page}");
            b.redis("GET", &key, "");
            let hits = b.dice.between(5, 12);
            let ids: Vec<String> =
                (0..hits).map(|_| format!("SKU-{:05}", b.dice.skewed(1, PRODUCTS))).collect();
            b.add(server, int("app.search.results", hits as i64));
            if b.dice.per_mille(250) {
                b.add(server, texts("app.product.ids", ids));
                return 200;
            }
            b.external("POST", SEARCH_CLUSTER, "/products/_search", 4 * MS, 40 * MS);
            let mut fork = b.fork();
            b.branch(&mut fork, |b| {
                let req = Http { method: "GET", route: "/products", path: "/products".to_owned() };
                b.http_call(Svc::Catalog, req, |b, _| {
                    b.query(&sql::PRODUCTS_BY_IDS, Some(hits as i64));
                    200
                });
            });
            b.branch(&mut fork, |b| {
                let rpc =
                    Rpc { service: "inventory.v1.InventoryService", method: "CheckAvailability" };
                b.grpc_call(Svc::Inventory, rpc, |b, _| {
                    b.query(&sql::STOCK_AVAILABLE, Some(hits as i64));
                });
            });
            if b.dice.per_mille(500) {
                b.branch(&mut fork, |b| {
                    b.redis("ZREVRANGE", "trending:products", "0 49");
                });
            }
            b.join(fork);
            b.internal("rank_results", 200_000, 3 * MS);
            b.redis("SET", &key, "? EX 300");
            b.add(server, texts("app.product.ids", ids));
            200
        })
    });
}

fn add_to_cart(b: &mut TraceBuilder<'_>, _: &mut Memory) {
    let user = pick_user(b);
    let product = b.dice.skewed(1, PRODUCTS);
    let items = 1 + b.dice.skewed(0, 11) as i64;
    gateway(b, ("POST", "/api/cart/items"), "/api/cart/items".to_owned(), None, |b, root| {
        b.add(root, text("app.user.id", user.clone()));
        check_session(b, &user);
        let req = Http { method: "POST", route: "/cart/items", path: "/cart/items".to_owned() };
        b.http_call(Svc::Cart, req, |b, server| {
            b.add(server, text("app.user.id", user.clone()));
            let path = format!("/products/{product}");
            let req = Http { method: "GET", route: "/products/{id}", path };
            let found = b.http_call(Svc::Catalog, req, |b, s| product_lookup(b, s, product));
            if found != 200 {
                return found;
            }
            let key = format!("cart:{user}");
            b.redis("hgetall", &key, "");
            b.internal("validate_cart", 20_000, 400_000);
            b.redis("hset", &key, "? ?");
            b.redis("expire", &key, "604800");
            b.add(server, int("app.cart.items", items));
            201
        })
    });
}

fn checkout(b: &mut TraceBuilder<'_>, memory: &mut Memory) {
    let user = pick_user(b);
    let items = 1 + b.dice.skewed(0, 4);
    let new_checkout = user.bytes().last().is_some_and(|d| d < b'2');
    let order_id = format!("ord_{:012x}", b.dice.u64() >> 16);
    let cents: u64 = (0..items).map(|_| b.dice.skewed(299, 25_000)).sum();
    gateway(b, ("POST", "/api/checkout"), "/api/checkout".to_owned(), None, |b, root| {
        b.add(root, text("app.user.id", user.clone()));
        b.add(root, flag("app.feature_flag.new_checkout", new_checkout));
        check_session(b, &user);
        let req = Http { method: "POST", route: "/orders", path: "/orders".to_owned() };
        b.http_call(Svc::Order, req, |b, server| {
            b.add(server, text("app.user.id", user.clone()));
            b.add(server, text("app.order.id", order_id.clone()));
            b.add(server, int("app.cart.items", items as i64));
            b.add(server, flag("app.feature_flag.new_checkout", new_checkout));
            let path = format!("/cart/{user}");
            let req = Http { method: "GET", route: "/cart/{userId}", path };
            b.http_call(Svc::Cart, req, |b, _| {
                b.redis("hgetall", &format!("cart:{user}"), "");
                200
            });
            b.internal("validate_cart", 50_000, 800_000);
            let rpc = Rpc { service: "shipping.v1.ShippingService", method: "GetQuote" };
            b.grpc_call(Svc::Shipping, rpc, |b, _| {
                b.internal("compute_rates", 100_000, 2 * MS);
            });
            let rpc = Rpc { service: "inventory.v1.InventoryService", method: "ReserveStock" };
            b.grpc_call(Svc::Inventory, rpc, |b, _| {
                for _ in 0..items {
                    let rows = b.dice.between(1, 3) as i64;
                    b.query(&sql::STOCK_FOR_UPDATE, Some(rows));
                    b.query(&sql::RESERVE_STOCK, None);
                }
            });
            let req = Http { method: "POST", route: "/payments", path: "/payments".to_owned() };
            b.http_call(Svc::Payment, req, |b, server| charge(b, server, &order_id, cents));
            b.query(&sql::INSERT_ORDER, None);
            for _ in 0..items {
                b.query(&sql::INSERT_ORDER_ITEM, None);
            }
            let partition = b.dice.below(12);
            let producer = b.publish("orders", &order_id, partition);
            let earlier = memory.last_order_message.take();
            let batched = earlier.filter(|_| b.dice.per_mille(250));
            let lag = b.dice.skewed(2 * MS, 60 * MS);
            b.consume(producer, Svc::Notification, ("orders", &order_id), lag, |b, consumer| {
                if let Some((trace_id, span_id)) = &batched {
                    b.link(consumer, trace_id, span_id);
                    b.add(consumer, int("messaging.batch.message_count", 2));
                }
                b.internal("render_email", MS, 10 * MS);
                b.external("POST", MAIL_RELAY, "/v3/send", 20 * MS, 150 * MS);
            });
            let producer_id = b.nodes[producer].span.span_id.clone();
            memory.last_order_message = Some((b.trace_id.to_vec(), producer_id));
            201
        })
    });
}

/// The payment service charging the provider, retrying once on a bad gateway.
fn charge(b: &mut TraceBuilder<'_>, server: usize, order_id: &str, cents: u64) -> i64 {
    b.add(server, text("app.order.id", order_id));
    b.add(server, float("app.payment.amount", cents as f64 / 100.0));
    b.add(server, text("app.payment.currency", "EUR"));
    b.internal("fraud_check", MS, 8 * MS);
    let attempt = b.external("POST", PAYMENT_PROVIDER, "/v1/charges", 50 * MS, 300 * MS);
    if b.dice.per_mille(60) {
        b.set(attempt, int("http.response.status_code", 502));
        b.add(attempt, text("error.type", "502"));
        b.fail(attempt, "");
        b.event(server, "retry", vec![int("retry.attempt", 1), text("retry.reason", "502")]);
        b.pass(20 * MS, 80 * MS);
        let retry = b.external("POST", PAYMENT_PROVIDER, "/v1/charges", 50 * MS, 300 * MS);
        b.add(retry, int("http.request.resend_count", 1));
    }
    b.query(&sql::INSERT_PAYMENT, None);
    201
}

fn order_history(b: &mut TraceBuilder<'_>, _: &mut Memory) {
    let user = pick_user(b);
    let orders = b.dice.skewed(10, 150);
    gateway(b, ("GET", "/api/orders"), "/api/orders".to_owned(), None, |b, root| {
        b.add(root, text("app.user.id", user.clone()));
        check_session(b, &user);
        let req = Http { method: "GET", route: "/orders", path: "/orders".to_owned() };
        b.http_call(Svc::Order, req, |b, server| {
            b.add(server, text("app.user.id", user.clone()));
            b.query(&sql::ORDERS_BY_USER, Some(orders as i64));
            // The N+1 pattern: one query per order, issued from one repository call.
            b.open_internal("OrderRepository.loadItems");
            for _ in 0..orders {
                let rows = b.dice.between(1, 6) as i64;
                b.query(&sql::ITEMS_BY_ORDER, Some(rows));
            }
            b.close();
            let rpc = Rpc { service: "shipping.v1.ShippingService", method: "GetTrackingStatus" };
            b.grpc_call(Svc::Shipping, rpc, |b, _| {
                b.internal("lookup_shipments", 200_000, 4 * MS);
            });
            b.add(server, int("app.orders.count", orders as i64));
            200
        })
    });
}

fn login(b: &mut TraceBuilder<'_>, _: &mut Memory) {
    let user = pick_user(b);
    gateway(b, ("POST", "/api/login"), "/api/login".to_owned(), None, |b, root| {
        b.redis("INCR", &format!("ratelimit:login:{user}"), "");
        let req = Http { method: "POST", route: "/auth/login", path: "/auth/login".to_owned() };
        let status = b.http_call(Svc::Auth, req, |b, server| {
            b.query(&sql::USER_BY_EMAIL, Some(1));
            b.internal("verify_password", 40 * MS, 90 * MS);
            if b.dice.per_mille(60) {
                let reason = text("app.login.failure_reason", "invalid_credentials");
                b.event(server, "login failed", vec![reason]);
                return 401;
            }
            b.add(server, text("app.user.id", user.clone()));
            let key = format!("session:{:016x}", b.dice.u64());
            b.redis("HSET", &key, "? ?");
            b.redis("EXPIRE", &key, "86400");
            b.query(&sql::UPDATE_LAST_LOGIN, None);
            200
        });
        if status == 200 {
            b.add(root, text("app.user.id", user.clone()));
        }
        status
    });
}

/// A user from the population, skewed so that a few users are far more active than most.
fn pick_user(b: &mut TraceBuilder<'_>) -> String {
    b.dice.skewed(1, USERS).to_string()
}

/// The root SERVER span at the public gateway; `serve` handles the request and returns the
/// status code.
fn gateway<'d>(
    b: &mut TraceBuilder<'d>,
    (method, route): (&'static str, &'static str),
    path: String,
    query: Option<String>,
    serve: impl FnOnce(&mut TraceBuilder<'d>, usize) -> i64,
) {
    let pod = b.pod_of(Svc::Frontend);
    let client = b.dice.u64();
    let client = format!("{}.{}.{}.{}", 2 + client % 221, client >> 8 & 255, client >> 16 & 255, {
        1 + (client >> 24) % 254
    });
    let mut attributes = vec![
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
fn check_session(b: &mut TraceBuilder<'_>, user: &str) {
    let token = format!("session:{:016x}", b.dice.u64());
    let req = Http { method: "GET", route: "/auth/session", path: "/auth/session".to_owned() };
    b.http_call(Svc::Auth, req, |b, server| {
        b.redis("HGETALL", &token, "");
        b.add(server, text("app.user.id", user));
        200
    });
}

/// The catalog's read-through cached product lookup; returns the HTTP status.
fn product_lookup(b: &mut TraceBuilder<'_>, server: usize, product: u64) -> i64 {
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
