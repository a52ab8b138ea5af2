//! The checkout journey, the longest one: it crosses seven services over HTTP, gRPC and Kafka,
//! calls the payment provider and ends in an asynchronous notification.

use super::attrs::{flag, float, int, sql, text};
use super::calls::{Http, Rpc};
use super::services::Svc;
use super::steps::{MS, check_session, gateway, pick_user};
use super::tree::{Node, TraceBuilder};

const PAYMENT_PROVIDER: &str = "api.paybridge.io";
const MAIL_RELAY: &str = "api.mailrelay.io";

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

/// Gateway → auth → order, which reads the cart, quotes shipping (gRPC), reserves stock
/// (gRPC, row locks), takes payment (HTTP, provider call, one retry in 6 %), writes the order
/// and publishes it to Kafka, from where the notification service mails the customer.
pub(crate) fn checkout(b: &mut TraceBuilder<'_>, memory: &mut Memory) {
    let user = pick_user(b);
    let items = 1 + b.dice.skewed(0, 4);
    let new_checkout = user.bytes().last().is_some_and(|d| d < b'2');
    let order_id = format!("ord_{:012x}", b.dice.u64() >> 16);
    let cents: u64 = (0..items).map(|_| b.dice.skewed(299, 25_000)).sum();
    gateway(
        b,
        ("POST", "/api/checkout"),
        "/api/checkout".to_owned(),
        None,
        |b, root| {
            b.add(root, text("app.user.id", user.clone()));
            b.add(root, flag("app.feature_flag.new_checkout", new_checkout));
            check_session(b, &user);
            let req = Http {
                method: "POST",
                route: "/orders",
                path: "/orders".to_owned(),
            };
            b.http_call(Svc::Order, req, |b, server| {
                b.add(server, text("app.user.id", user.clone()));
                b.add(server, text("app.order.id", order_id.clone()));
                b.add(server, int("app.cart.items", items as i64));
                b.add(server, flag("app.feature_flag.new_checkout", new_checkout));
                let path = format!("/cart/{user}");
                let req = Http {
                    method: "GET",
                    route: "/cart/{userId}",
                    path,
                };
                b.http_call(Svc::Cart, req, |b, _| {
                    b.redis("hgetall", &format!("cart:{user}"), "");
                    200
                });
                b.internal("validate_cart", 50_000, 800_000);
                let rpc = Rpc {
                    service: "shipping.v1.ShippingService",
                    method: "GetQuote",
                };
                b.grpc_call(Svc::Shipping, rpc, |b, _| {
                    b.internal("compute_rates", 100_000, 2 * MS);
                });
                let rpc = Rpc {
                    service: "inventory.v1.InventoryService",
                    method: "ReserveStock",
                };
                b.grpc_call(Svc::Inventory, rpc, |b, _| {
                    for _ in 0..items {
                        let rows = b.dice.between(1, 3) as i64;
                        b.query(&sql::STOCK_FOR_UPDATE, Some(rows));
                        b.query(&sql::RESERVE_STOCK, None);
                    }
                });
                let req = Http {
                    method: "POST",
                    route: "/payments",
                    path: "/payments".to_owned(),
                };
                b.http_call(Svc::Payment, req, |b, server| {
                    charge(b, server, &order_id, cents)
                });
                b.query(&sql::INSERT_ORDER, None);
                for _ in 0..items {
                    b.query(&sql::INSERT_ORDER_ITEM, None);
                }
                let partition = b.dice.below(12);
                let producer = b.publish("orders", &order_id, partition);
                let earlier = memory.last_order_message.take();
                let batched = earlier.filter(|_| b.dice.per_mille(250));
                let lag = b.dice.skewed(2 * MS, 60 * MS);
                b.consume(
                    producer,
                    Svc::Notification,
                    ("orders", &order_id),
                    lag,
                    |b, consumer| {
                        if let Some((trace_id, span_id)) = &batched {
                            b.link(consumer, trace_id, span_id);
                            b.add(consumer, int("messaging.batch.message_count", 2));
                        }
                        b.internal("render_email", MS, 10 * MS);
                        b.external("POST", MAIL_RELAY, "/v3/send", 20 * MS, 150 * MS);
                    },
                );
                let producer_id = b.nodes[producer].span.span_id.clone();
                memory.last_order_message = Some((b.trace_id.to_vec(), producer_id));
                201
            })
        },
    );
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
        b.event(
            server,
            "retry",
            vec![int("retry.attempt", 1), text("retry.reason", "502")],
        );
        b.pass(20 * MS, 80 * MS);
        let retry = b.external("POST", PAYMENT_PROVIDER, "/v1/charges", 50 * MS, 300 * MS);
        b.add(retry, int("http.request.resend_count", 1));
    }
    b.query(&sql::INSERT_PAYMENT, None);
    201
}
