//! Attribute constructors and the fixed vocabularies spans draw from: SQL statements, browser
//! user agents, search terms. Fixed tables keep the data as repetitive as real telemetry is,
//! which matters because the workload is used to measure compression at rest.

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue};

/// A vector of attributes with room for a few more, which spans usually get when they end
/// (status codes, row counts), so that adding them does not reallocate.
macro_rules! attrs {
    ($($kv:expr),* $(,)?) => {{
        let kvs = [$($kv),*];
        let mut v = Vec::with_capacity(kvs.len() + 4);
        v.extend(kvs);
        v
    }};
}
pub(crate) use attrs;

/// A key-value pair holding `value`.
pub(crate) fn attr(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        key_strindex: 0,
    }
}

/// A string attribute.
pub(crate) fn text(key: &str, value: impl Into<String>) -> KeyValue {
    attr(key, Value::StringValue(value.into()))
}

/// An integer attribute.
pub(crate) fn int(key: &str, value: i64) -> KeyValue {
    attr(key, Value::IntValue(value))
}

/// A floating-point attribute.
pub(crate) fn float(key: &str, value: f64) -> KeyValue {
    attr(key, Value::DoubleValue(value))
}

/// A boolean attribute.
pub(crate) fn flag(key: &str, value: bool) -> KeyValue {
    attr(key, Value::BoolValue(value))
}

/// An array-of-strings attribute.
pub(crate) fn texts(key: &str, values: Vec<String>) -> KeyValue {
    let values = values
        .into_iter()
        .map(|v| AnyValue {
            value: Some(Value::StringValue(v)),
        })
        .collect();
    attr(key, Value::ArrayValue(ArrayValue { values }))
}

/// Replaces the value of `key` in `attrs`, or appends it when absent.
pub(crate) fn upsert(attrs: &mut Vec<KeyValue>, key: &str, value: Value) {
    match attrs.iter_mut().find(|kv| kv.key == key) {
        Some(kv) => kv.value = Some(AnyValue { value: Some(value) }),
        None => attrs.push(attr(key, value)),
    }
}

/// One parameterized statement the shop's services run against PostgreSQL.
pub(crate) struct Sql {
    /// `db.operation.name`.
    pub(crate) op: &'static str,
    /// `db.collection.name`.
    pub(crate) table: &'static str,
    /// The span name, `"{op} shop.{table}"`.
    pub(crate) name: &'static str,
    /// `db.query.text`.
    pub(crate) text: &'static str,
}

macro_rules! sql {
    ($op:literal, $table:literal, $text:literal) => {
        Sql {
            op: $op,
            table: $table,
            name: concat!($op, " shop.", $table),
            text: $text,
        }
    };
}

/// The statements, named after what they do.
pub(crate) mod sql {
    use super::Sql;

    pub(crate) const USER_BY_EMAIL: Sql = sql!(
        "SELECT",
        "users",
        "SELECT id, email, password_hash, status, mfa_enabled FROM users WHERE email = $1 LIMIT 1"
    );
    pub(crate) const UPDATE_LAST_LOGIN: Sql = sql!(
        "UPDATE",
        "users",
        "UPDATE users SET last_login_at = now() WHERE id = $1"
    );
    pub(crate) const PRODUCT_BY_ID: Sql = sql!(
        "SELECT",
        "products",
        "SELECT p.id, p.sku, p.name, p.description, p.price_cents, p.currency, p.category_id \
         FROM products p WHERE p.id = $1 AND p.active = true"
    );
    pub(crate) const PRODUCT_IMAGES: Sql = sql!(
        "SELECT",
        "product_images",
        "SELECT url, width, height, position FROM product_images WHERE product_id = $1 \
         ORDER BY position"
    );
    pub(crate) const PRODUCTS_BY_IDS: Sql = sql!(
        "SELECT",
        "products",
        "SELECT id, sku, name, price_cents, currency FROM products WHERE id = ANY($1) \
         AND active = true"
    );
    pub(crate) const STOCK_FOR_UPDATE: Sql = sql!(
        "SELECT",
        "stock",
        "SELECT product_id, warehouse_id, available FROM stock WHERE product_id = $1 FOR UPDATE"
    );
    pub(crate) const STOCK_AVAILABLE: Sql = sql!(
        "SELECT",
        "stock",
        "SELECT product_id, sum(available) FROM stock WHERE product_id = ANY($1) \
         GROUP BY product_id"
    );
    pub(crate) const RESERVE_STOCK: Sql = sql!(
        "UPDATE",
        "stock",
        "UPDATE stock SET available = available - $1, reserved = reserved + $1 \
         WHERE product_id = $2 AND warehouse_id = $3"
    );
    pub(crate) const INSERT_ORDER: Sql = sql!(
        "INSERT",
        "orders",
        "INSERT INTO orders (id, user_id, status, total_cents, currency, created_at) \
         VALUES ($1, $2, $3, $4, $5, now())"
    );
    pub(crate) const INSERT_ORDER_ITEM: Sql = sql!(
        "INSERT",
        "order_items",
        "INSERT INTO order_items (order_id, product_id, quantity, unit_price_cents) \
         VALUES ($1, $2, $3, $4)"
    );
    pub(crate) const ORDERS_BY_USER: Sql = sql!(
        "SELECT",
        "orders",
        "SELECT id, status, total_cents, currency, created_at FROM orders WHERE user_id = $1 \
         ORDER BY created_at DESC LIMIT $2"
    );
    pub(crate) const ITEMS_BY_ORDER: Sql = sql!(
        "SELECT",
        "order_items",
        "SELECT product_id, quantity, unit_price_cents FROM order_items WHERE order_id = $1"
    );
    pub(crate) const INSERT_PAYMENT: Sql = sql!(
        "INSERT",
        "payments",
        "INSERT INTO payments (id, order_id, amount_cents, currency, provider_ref, status) \
         VALUES ($1, $2, $3, $4, $5, $6)"
    );
}

/// Browser user agents seen at the gateway.
pub(crate) const BROWSERS: [&str; 6] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
     Chrome/141.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) \
     Version/18.6 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 \
     (KHTML, like Gecko) Version/18.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 15; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) \
     Chrome/141.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:143.0) Gecko/20100101 Firefox/143.0",
    "ShopApp/5.12.0 (iOS 18.6; iPhone15,3)",
];

/// Terms customers search for.
pub(crate) const SEARCH_TERMS: [&str; 16] = [
    "running+shoes",
    "headphones",
    "usb-c+cable",
    "coffee+grinder",
    "yoga+mat",
    "desk+lamp",
    "backpack",
    "water+bottle",
    "mechanical+keyboard",
    "rain+jacket",
    "phone+case",
    "air+fryer",
    "wool+socks",
    "monitor+arm",
    "sunglasses",
    "board+games",
];

/// Products in the catalog; product IDs are `1..=PRODUCTS`.
pub(crate) const PRODUCTS: u64 = 20_000;

/// Registered users; user IDs are `1..=USERS`.
pub(crate) const USERS: u64 = 50_000;

/// The PostgreSQL primary every service's pool connects to.
pub(crate) const POSTGRES_HOST: &str = "postgres-primary.data.svc.cluster.local";

/// The shared Redis.
pub(crate) const REDIS_HOST: &str = "redis-master.data.svc.cluster.local";

/// The Kafka bootstrap broker.
pub(crate) const KAFKA_HOST: &str = "kafka-0.kafka-headless.data.svc.cluster.local";
