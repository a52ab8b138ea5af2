//! The user journeys the shop serves, each a function that builds one trace's happy path
//! (plus the client errors that are part of normal traffic, such as a 404 or a failed login).
//! Server errors and slow outliers are applied afterwards by `faults`.

use super::attrs::{PRODUCTS, SEARCH_TERMS, int, sql, text, texts};
use super::calls::{Http, Rpc};
use super::checkout::{Memory, checkout};
use super::services::Svc;
use super::steps::{MS, check_session, gateway, pick_user, product_lookup};
use super::tree::TraceBuilder;

/// A named, weighted journey.
pub(crate) struct Flow {
    pub(crate) name: &'static str,
    pub(crate) weight: u32,
    pub(crate) build: fn(&mut TraceBuilder<'_>, &mut Memory),
}

/// Every flow, with its share of the traffic (weights sum to 100).
pub(crate) const FLOWS: [Flow; 6] = [
    Flow {
        name: "browse_product",
        weight: 35,
        build: browse_product,
    },
    Flow {
        name: "search",
        weight: 20,
        build: search,
    },
    Flow {
        name: "add_to_cart",
        weight: 15,
        build: add_to_cart,
    },
    Flow {
        name: "checkout",
        weight: 12,
        build: checkout,
    },
    Flow {
        name: "order_history",
        weight: 10,
        build: order_history,
    },
    Flow {
        name: "login",
        weight: 8,
        build: login,
    },
];

const SEARCH_CLUSTER: &str = "vpc-shop-search-4xq2.eu-west-1.es.amazonaws.com";

fn browse_product(b: &mut TraceBuilder<'_>, _: &mut Memory) {
    let user = pick_user(b);
    let product = b.dice.skewed(1, PRODUCTS);
    let path = format!("/api/products/{product}");
    gateway(b, ("GET", "/api/products/{id}"), path, None, |b, root| {
        b.add(root, text("app.user.id", user.clone()));
        check_session(b, &user);
        let path = format!("/products/{product}");
        let req = Http {
            method: "GET",
            route: "/products/{id}",
            path,
        };
        let status = b.http_call(Svc::Catalog, req, |b, server| {
            product_lookup(b, server, product)
        });
        if status == 200 && b.dice.per_mille(600) {
            let rpc = Rpc {
                service: "inventory.v1.InventoryService",
                method: "GetStock",
            };
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
    gateway(
        b,
        ("GET", "/api/search"),
        "/api/search".to_owned(),
        Some(query),
        |b, root| {
            b.add(root, text("app.user.id", user.clone()));
            check_session(b, &user);
            let req = Http {
                method: "GET",
                route: "/search",
                path: "/search".to_owned(),
            };
            b.http_call(Svc::Search, req, |b, server| {
                let key = format!("search:{term}:{page}");
                b.redis("GET", &key, "");
                let hits = b.dice.between(5, 12);
                let ids: Vec<String> = (0..hits)
                    .map(|_| format!("SKU-{:05}", b.dice.skewed(1, PRODUCTS)))
                    .collect();
                b.add(server, int("app.search.results", hits as i64));
                if b.dice.per_mille(250) {
                    b.add(server, texts("app.product.ids", ids));
                    return 200;
                }
                b.external("POST", SEARCH_CLUSTER, "/products/_search", 4 * MS, 40 * MS);
                let mut fork = b.fork();
                b.branch(&mut fork, |b| {
                    let req = Http {
                        method: "GET",
                        route: "/products",
                        path: "/products".to_owned(),
                    };
                    b.http_call(Svc::Catalog, req, |b, _| {
                        b.query(&sql::PRODUCTS_BY_IDS, Some(hits as i64));
                        200
                    });
                });
                b.branch(&mut fork, |b| {
                    let rpc = Rpc {
                        service: "inventory.v1.InventoryService",
                        method: "CheckAvailability",
                    };
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
        },
    );
}

fn add_to_cart(b: &mut TraceBuilder<'_>, _: &mut Memory) {
    let user = pick_user(b);
    let product = b.dice.skewed(1, PRODUCTS);
    let items = 1 + b.dice.skewed(0, 11) as i64;
    gateway(
        b,
        ("POST", "/api/cart/items"),
        "/api/cart/items".to_owned(),
        None,
        |b, root| {
            b.add(root, text("app.user.id", user.clone()));
            check_session(b, &user);
            let req = Http {
                method: "POST",
                route: "/cart/items",
                path: "/cart/items".to_owned(),
            };
            b.http_call(Svc::Cart, req, |b, server| {
                b.add(server, text("app.user.id", user.clone()));
                let path = format!("/products/{product}");
                let req = Http {
                    method: "GET",
                    route: "/products/{id}",
                    path,
                };
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
        },
    );
}

fn order_history(b: &mut TraceBuilder<'_>, _: &mut Memory) {
    let user = pick_user(b);
    let orders = b.dice.skewed(10, 150);
    gateway(
        b,
        ("GET", "/api/orders"),
        "/api/orders".to_owned(),
        None,
        |b, root| {
            b.add(root, text("app.user.id", user.clone()));
            check_session(b, &user);
            let req = Http {
                method: "GET",
                route: "/orders",
                path: "/orders".to_owned(),
            };
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
                let rpc = Rpc {
                    service: "shipping.v1.ShippingService",
                    method: "GetTrackingStatus",
                };
                b.grpc_call(Svc::Shipping, rpc, |b, _| {
                    b.internal("lookup_shipments", 200_000, 4 * MS);
                });
                b.add(server, int("app.orders.count", orders as i64));
                200
            })
        },
    );
}

fn login(b: &mut TraceBuilder<'_>, _: &mut Memory) {
    let user = pick_user(b);
    gateway(
        b,
        ("POST", "/api/login"),
        "/api/login".to_owned(),
        None,
        |b, root| {
            b.redis("INCR", &format!("ratelimit:login:{user}"), "");
            let req = Http {
                method: "POST",
                route: "/auth/login",
                path: "/auth/login".to_owned(),
            };
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
        },
    );
}
