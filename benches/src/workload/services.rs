//! The fixed cast of the workload: ten services of an online shop, the pods they run as, the
//! resources those pods report, and the instrumentation scopes each language's SDK uses.
//!
//! Nothing here is random: the resources are the same for every seed, as a real deployment's
//! would be from one trace to the next.

use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::attrs::{int, text};

/// The most replicas any service runs; pods are numbered `svc * MAX_REPLICAS + replica`.
pub(crate) const MAX_REPLICAS: usize = 4;

/// One of the shop's services.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Svc {
    Frontend,
    Auth,
    Order,
    Inventory,
    Payment,
    Notification,
    Catalog,
    Search,
    Cart,
    Shipping,
}

/// Every service, in `Svc` order.
pub(crate) const ALL_SERVICES: [Svc; 10] = [
    Svc::Frontend,
    Svc::Auth,
    Svc::Order,
    Svc::Inventory,
    Svc::Payment,
    Svc::Notification,
    Svc::Catalog,
    Svc::Search,
    Svc::Cart,
    Svc::Shipping,
];

/// The language (and so the SDK and instrumentation libraries) a service is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lang {
    Go,
    Python,
    Java,
    Node,
}

/// What a service is: its name, version, language, replica count and listening port.
pub(crate) struct ServiceDef {
    pub(crate) name: &'static str,
    pub(crate) version: &'static str,
    pub(crate) lang: Lang,
    pub(crate) replicas: u8,
    /// The Kubernetes replica-set hash in its pod names.
    replica_set: &'static str,
    pub(crate) port: i64,
}

const SERVICES: [ServiceDef; 10] = [
    def("frontend", "2.14.3", Lang::Go, 4, "7c9d5b8f6d", 8080),
    def("auth", "1.8.0", Lang::Python, 3, "5f7b9c6d48", 8000),
    def("order", "3.2.1", Lang::Java, 3, "6d8f7c5b9a", 8080),
    def("inventory", "1.12.4", Lang::Go, 2, "84c6d9b7f5", 50051),
    def("payment", "2.0.7", Lang::Python, 2, "59b8d7c6f4", 8000),
    def("notification", "0.9.12", Lang::Node, 2, "7f6c8d9b5c", 3000),
    def(
        "product-catalog",
        "4.1.0",
        Lang::Python,
        3,
        "6b5d8f9c7e",
        8000,
    ),
    def("search", "1.3.9", Lang::Go, 2, "5c9f7d8b6a", 8080),
    def("cart", "2.6.2", Lang::Node, 3, "8d7b6c5f9d", 3000),
    def("shipping", "1.0.15", Lang::Java, 2, "9b6f5d7c8e", 50051),
];

const fn def(
    name: &'static str,
    version: &'static str,
    lang: Lang,
    replicas: u8,
    replica_set: &'static str,
    port: i64,
) -> ServiceDef {
    ServiceDef {
        name,
        version,
        lang,
        replicas,
        replica_set,
        port,
    }
}

impl Svc {
    /// The service's fixed definition.
    pub(crate) fn def(self) -> &'static ServiceDef {
        &SERVICES[self as usize]
    }
}

/// One running replica of a service; each pod reports its own resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pod {
    pub(crate) svc: Svc,
    pub(crate) replica: u8,
}

impl Pod {
    /// The pod's index into [`Cast::resources`].
    pub(crate) fn index(self) -> usize {
        self.svc as usize * MAX_REPLICAS + usize::from(self.replica)
    }

    /// The pod's IP address, as `client.address` on the spans it sends requests from.
    pub(crate) fn ip(self) -> String {
        let n = self.index() as u32;
        format!(
            "10.42.{}.{}",
            1 + scramble(n) % 7,
            2 + scramble(n + 97) % 250
        )
    }
}

/// What a span's instrumentation library instruments; with the language it names the scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Instr {
    HttpServer,
    HttpClient,
    Grpc,
    Postgres,
    Redis,
    Kafka,
}

const INSTR_COUNT: usize = 6;

/// `(name, version)` of the instrumentation scope per language and `Instr`.
const SCOPES: [[(&str, &str); INSTR_COUNT]; 4] = [
    [
        (
            "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp",
            "0.63.0",
        ),
        (
            "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp",
            "0.63.0",
        ),
        (
            "go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc",
            "0.63.0",
        ),
        ("github.com/XSAM/otelsql", "0.40.0"),
        ("github.com/redis/go-redis/extra/redisotel", "9.14.0"),
        ("github.com/IBM/sarama/otelsarama", "0.63.0"),
    ],
    [
        ("opentelemetry.instrumentation.flask", "0.59b0"),
        ("opentelemetry.instrumentation.requests", "0.59b0"),
        ("opentelemetry.instrumentation.grpc", "0.59b0"),
        ("opentelemetry.instrumentation.psycopg2", "0.59b0"),
        ("opentelemetry.instrumentation.redis", "0.59b0"),
        ("opentelemetry.instrumentation.kafka", "0.59b0"),
    ],
    [
        ("io.opentelemetry.spring-webmvc-6.0", "2.21.0-alpha"),
        ("io.opentelemetry.java-http-client", "2.21.0-alpha"),
        ("io.opentelemetry.grpc-1.6", "2.21.0-alpha"),
        ("io.opentelemetry.jdbc", "2.21.0-alpha"),
        ("io.opentelemetry.lettuce-5.1", "2.21.0-alpha"),
        ("io.opentelemetry.kafka-clients-2.6", "2.21.0-alpha"),
    ],
    [
        ("@opentelemetry/instrumentation-http", "0.206.0"),
        ("@opentelemetry/instrumentation-http", "0.206.0"),
        ("@opentelemetry/instrumentation-grpc", "0.206.0"),
        ("@opentelemetry/instrumentation-pg", "0.59.0"),
        ("@opentelemetry/instrumentation-ioredis", "0.54.0"),
        ("@opentelemetry/instrumentation-kafkajs", "0.16.0"),
    ],
];

/// The index into [`Cast::scopes`] of `svc`'s scope for `instr`.
pub(crate) fn scope_of(svc: Svc, instr: Instr) -> u16 {
    (svc.def().lang as usize * INSTR_COUNT + instr as usize) as u16
}

/// The index into [`Cast::scopes`] of `svc`'s own tracer, used for its hand-made internal spans.
pub(crate) fn app_scope_of(svc: Svc) -> u16 {
    (SCOPES.len() * INSTR_COUNT + svc as usize) as u16
}

/// SDK version, runtime name and runtime version per language.
fn sdk_of(lang: Lang) -> (&'static str, &'static str, &'static str, &'static str) {
    match lang {
        Lang::Go => ("go", "1.38.0", "go", "go1.25.3"),
        Lang::Python => ("python", "1.38.0", "cpython", "3.12.11"),
        Lang::Java => (
            "java",
            "1.55.0",
            "OpenJDK Runtime Environment",
            "21.0.8+9-LTS",
        ),
        Lang::Node => ("nodejs", "2.2.0", "nodejs", "22.20.0"),
    }
}

/// The `user_agent.original` a language's HTTP client sends.
pub(crate) fn client_user_agent(lang: Lang) -> &'static str {
    match lang {
        Lang::Go => "Go-http-client/1.1",
        Lang::Python => "python-requests/2.32.5",
        Lang::Java => "Java-http-client/21.0.8",
        Lang::Node => "node",
    }
}

/// The fixed resources and scopes, built once per workload.
pub(crate) struct Cast {
    /// Per pod, indexed by [`Pod::index`]; replicas a service does not run are left empty.
    pub(crate) resources: Vec<Resource>,
    /// Indexed by [`scope_of`] and [`app_scope_of`].
    pub(crate) scopes: Vec<InstrumentationScope>,
}

impl Cast {
    /// Builds every pod's resource and every scope.
    pub(crate) fn new() -> Self {
        let mut resources = vec![Resource::default(); ALL_SERVICES.len() * MAX_REPLICAS];
        for svc in ALL_SERVICES {
            for replica in 0..svc.def().replicas {
                let pod = Pod { svc, replica };
                resources[pod.index()] = pod_resource(pod);
            }
        }
        let mut scopes: Vec<InstrumentationScope> = SCOPES
            .iter()
            .flatten()
            .map(|&(name, version)| scope(name.to_owned(), version))
            .collect();
        scopes.extend(ALL_SERVICES.iter().map(|svc| {
            let def = svc.def();
            scope(format!("shop.{}", def.name.replace('-', "_")), def.version)
        }));
        Self { resources, scopes }
    }
}

fn scope(name: String, version: &str) -> InstrumentationScope {
    InstrumentationScope {
        name,
        version: version.to_owned(),
        ..Default::default()
    }
}

fn pod_resource(pod: Pod) -> Resource {
    let def = pod.svc.def();
    let (language, sdk_version, runtime, runtime_version) = sdk_of(def.lang);
    let n = pod.index() as u32;
    let node = format!(
        "ip-10-0-{}-{}.eu-west-1.compute.internal",
        16 + scramble(n) % 48,
        { 10 + scramble(n + 13) % 240 }
    );
    let pod_name = format!("{}-{}-{}", def.name, def.replica_set, pod_suffix(n));
    let attributes = vec![
        text("service.name", def.name),
        text("service.namespace", "shop"),
        text("service.version", def.version),
        text("service.instance.id", format!("{pod_name}/{}", def.name)),
        text("deployment.environment.name", "production"),
        text("host.name", node.clone()),
        text("k8s.cluster.name", "prod-eu-west-1"),
        text("k8s.namespace.name", "shop"),
        text("k8s.node.name", node),
        text("k8s.deployment.name", def.name),
        text("k8s.pod.name", pod_name),
        text("k8s.container.name", def.name),
        text("telemetry.sdk.name", "opentelemetry"),
        text("telemetry.sdk.language", language),
        text("telemetry.sdk.version", sdk_version),
        text("process.runtime.name", runtime),
        text("process.runtime.version", runtime_version),
        int("process.pid", i64::from(1 + scramble(n + 5) % 60)),
    ];
    Resource {
        attributes,
        ..Default::default()
    }
}

/// A fixed integer hash, so pod names and addresses look arbitrary but never change.
fn scramble(n: u32) -> u32 {
    let x = n.wrapping_mul(0x9E37_79B9).rotate_left(13) ^ 0x5bd1_e995;
    x.wrapping_mul(0x85eb_ca6b) >> 8
}

/// The five-character suffix Kubernetes gives a pod of a replica set.
fn pod_suffix(n: u32) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut x = scramble(n + 1_000);
    (0..5)
        .map(|_| {
            let c = ALPHABET[(x % ALPHABET.len() as u32) as usize];
            x /= ALPHABET.len() as u32;
            char::from(c)
        })
        .collect()
}
