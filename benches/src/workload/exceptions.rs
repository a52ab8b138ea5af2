//! The exceptions injected faults raise: per language, one for a failing PostgreSQL call, one
//! for a failing Redis call and one for a failing call to an outside provider, each with the
//! multi-line stack trace its runtime would print.

use super::services::Lang;

/// An exception as recorded in an `exception` span event.
pub(crate) struct Exception {
    pub(crate) kind: &'static str,
    pub(crate) message: &'static str,
    pub(crate) stacktrace: &'static str,
}

/// Where a fault starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    Postgres,
    Redis,
    Provider,
}

/// The exception a service written in `lang` raises when `source` fails.
pub(crate) fn exception_for(lang: Lang, source: Source) -> &'static Exception {
    &TABLE[lang as usize][source as usize]
}

const fn ex(kind: &'static str, message: &'static str, stacktrace: &'static str) -> Exception {
    Exception {
        kind,
        message,
        stacktrace,
    }
}

const TABLE: [[Exception; 3]; 4] = [
    [
        ex(
            "*pq.Error",
            "pq: canceling statement due to statement timeout",
            "goroutine 4182 [running]:
github.com/shop/inventory/internal/store.(*Postgres).Reserve(0xc0001a4000, {0x1a3f2c0, 0xc000512a80}, 0x3b7)
\t/src/internal/store/postgres.go:214 +0x3c5
github.com/shop/inventory/internal/service.(*Inventory).ReserveStock(0xc00011e0f0, {0x1a3f2c0, 0xc000512a80}, 0xc0003f2d20)
\t/src/internal/service/inventory.go:88 +0x1f4
google.golang.org/grpc.(*Server).processUnaryRPC(0xc000188c00, {0x1a40a78, 0xc0002be000}, 0xc000417320)
\t/go/pkg/mod/google.golang.org/grpc@v1.75.1/server.go:1431 +0x1003",
        ),
        ex(
            "*net.OpError",
            "dial tcp 10.96.14.7:6379: i/o timeout",
            "goroutine 977 [running]:
github.com/redis/go-redis/v9.(*baseClient).getConn(0xc0002a6f00, {0x1a3f2c0, 0xc0004de150})
\t/go/pkg/mod/github.com/redis/go-redis/v9@v9.14.0/redis.go:254 +0x8a
github.com/shop/search/internal/cache.(*Results).Get(0xc00012c3c0, {0x1a3f2c0, 0xc0004de150}, {0xc0003a8000, 0x1c})
\t/src/internal/cache/results.go:41 +0x11d",
        ),
        ex(
            "*url.Error",
            "Post \"https://opensearch.data.svc.cluster.local:9200/products/_search\": EOF",
            "goroutine 1203 [running]:
net/http.(*Client).do(0xc0001b2a80, 0xc000634000)
\t/usr/local/go/src/net/http/client.go:724 +0x8dc
github.com/shop/search/internal/index.(*OpenSearch).Query(0xc0001c6000, {0x1a3f2c0, 0xc000412a20}, {0xc0003b8e40, 0xd})
\t/src/internal/index/opensearch.go:97 +0x2a6",
        ),
    ],
    [
        ex(
            "psycopg2.errors.DeadlockDetected",
            "deadlock detected\nDETAIL:  Process 48213 waits for ShareLock on transaction 9183321; blocked by process 48190.",
            "Traceback (most recent call last):
  File \"/usr/local/lib/python3.12/site-packages/flask/app.py\", line 919, in full_dispatch_request
    rv = self.dispatch_request()
  File \"/app/shop/api/handlers.py\", line 142, in handle
    row = self.repo.fetch_one(query, params)
  File \"/app/shop/db/repository.py\", line 58, in fetch_one
    cursor.execute(query, params)
psycopg2.errors.DeadlockDetected: deadlock detected",
        ),
        ex(
            "redis.exceptions.TimeoutError",
            "Timeout reading from redis-master.data.svc.cluster.local:6379",
            "Traceback (most recent call last):
  File \"/app/shop/session/store.py\", line 37, in load
    data = self.client.hgetall(key)
  File \"/usr/local/lib/python3.12/site-packages/redis/commands/core.py\", line 4903, in hgetall
    return self.execute_command(\"HGETALL\", name, keys=[name])
  File \"/usr/local/lib/python3.12/site-packages/redis/connection.py\", line 567, in read_response
    raise TimeoutError(f\"Timeout reading from {self.host}:{self.port}\")
redis.exceptions.TimeoutError: Timeout reading from redis-master.data.svc.cluster.local:6379",
        ),
        ex(
            "requests.exceptions.HTTPError",
            "503 Server Error: Service Unavailable for url: https://api.paybridge.io/v1/charges",
            "Traceback (most recent call last):
  File \"/app/shop/payments/provider.py\", line 88, in charge
    response.raise_for_status()
  File \"/usr/local/lib/python3.12/site-packages/requests/models.py\", line 1026, in raise_for_status
    raise HTTPError(http_error_msg, response=self)
requests.exceptions.HTTPError: 503 Server Error: Service Unavailable for url: https://api.paybridge.io/v1/charges",
        ),
    ],
    [
        ex(
            "org.postgresql.util.PSQLException",
            "ERROR: could not serialize access due to concurrent update",
            "org.postgresql.util.PSQLException: ERROR: could not serialize access due to concurrent update
\tat org.postgresql.core.v3.QueryExecutorImpl.receiveErrorResponse(QueryExecutorImpl.java:2733)
\tat org.postgresql.core.v3.QueryExecutorImpl.processResults(QueryExecutorImpl.java:2420)
\tat org.postgresql.jdbc.PgPreparedStatement.executeUpdate(PgPreparedStatement.java:152)
\tat com.zaxxer.hikari.pool.HikariProxyPreparedStatement.executeUpdate(HikariProxyPreparedStatement.java)
\tat com.shop.order.repository.OrderRepository.insert(OrderRepository.java:74)
\tat com.shop.order.service.OrderService.placeOrder(OrderService.java:131)
\tat com.shop.order.api.OrderController.create(OrderController.java:52)",
        ),
        ex(
            "io.lettuce.core.RedisCommandTimeoutException",
            "Command timed out after 1 second(s)",
            "io.lettuce.core.RedisCommandTimeoutException: Command timed out after 1 second(s)
\tat io.lettuce.core.internal.ExceptionFactory.createTimeoutException(ExceptionFactory.java:63)
\tat io.lettuce.core.internal.Futures.awaitOrCancel(Futures.java:233)
\tat io.lettuce.core.FutureSyncInvocationHandler.handleInvocation(FutureSyncInvocationHandler.java:79)
\tat com.shop.shipping.cache.RateCache.get(RateCache.java:45)",
        ),
        ex(
            "java.net.http.HttpTimeoutException",
            "request timed out",
            "java.net.http.HttpTimeoutException: request timed out
\tat java.net.http/jdk.internal.net.http.HttpClientImpl.send(HttpClientImpl.java:950)
\tat java.net.http/jdk.internal.net.http.HttpClientFacade.send(HttpClientFacade.java:133)
\tat com.shop.shipping.carrier.CarrierClient.quote(CarrierClient.java:61)",
        ),
    ],
    [
        ex(
            "error",
            "deadlock detected",
            "error: deadlock detected
    at Parser.parseErrorMessage (/app/node_modules/pg-protocol/dist/parser.js:285:98)
    at Parser.handlePacket (/app/node_modules/pg-protocol/dist/parser.js:122:29)
    at Socket.<anonymous> (/app/node_modules/pg-protocol/dist/index.js:11:42)
    at async CartRepository.load (/app/src/cart/repository.js:31:18)",
        ),
        ex(
            "MaxRetriesPerRequestError",
            "Reached the max retries per request limit (which is 3). Refer to \"maxRetriesPerRequest\" option for details.",
            "MaxRetriesPerRequestError: Reached the max retries per request limit (which is 3).
    at Socket.<anonymous> (/app/node_modules/ioredis/built/redis/event_handler.js:182:37)
    at Object.onceWrapper (node:events:633:26)
    at Socket.emit (node:events:518:28)
    at async CartStore.get (/app/src/cart/store.js:22:17)",
        ),
        ex(
            "FetchError",
            "request to https://api.mailrelay.io/v3/send failed, reason: socket hang up",
            "FetchError: request to https://api.mailrelay.io/v3/send failed, reason: socket hang up
    at ClientRequest.<anonymous> (/app/node_modules/node-fetch/lib/index.js:1501:11)
    at ClientRequest.emit (node:events:518:28)
    at TLSSocket.socketOnEnd (node:_http_client:524:9)
    at async Mailer.send (/app/src/mail/mailer.js:48:22)",
        ),
    ],
];
