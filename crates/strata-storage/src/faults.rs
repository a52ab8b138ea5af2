//! Storage faults injected from outside the code under test (the `testing` feature).
//!
//! [`Faults`] is a set of rules, shared by the test and a [`Storage`](crate::Storage) made with
//! [`Storage::with_faults`](crate::Storage::with_faults); every request the storage makes is
//! checked against the rules before it reaches the backend:
//!
//! * [`Faults::fail_nth`]: fail the `n`th request (from 0) of an operation whose path contains
//!   a pattern, once;
//! * [`Faults::fail_every`]: fail every such request;
//! * [`Faults::stop_at`]: at the `n`th such request the process "dies": that request and every
//!   later one fails, so nothing after the stop point reaches the bucket;
//! * [`Faults::outage`] / [`Faults::release`]: every request fails until released.
//!
//! The counters say what the storage asked for ([`Faults::seen`]), what failed
//! ([`Faults::failed`]) and where a stop happened ([`Faults::stopped_at`]).

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};
use parking_lot::Mutex;

/// A kind of request, as the rules see it. A ranged get is a [`Op::Get`]; a listing's path is
/// its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Reading an object or part of one.
    Get,
    /// Reading an object's size.
    Head,
    /// Writing an object.
    Put,
    /// Deleting an object.
    Delete,
    /// Listing a prefix.
    List,
}

impl Op {
    const ALL: [Op; 5] = [Op::Get, Op::Head, Op::Put, Op::Delete, Op::List];

    /// Whether the request changes the bucket (a put or a delete).
    pub fn is_write(self) -> bool {
        matches!(self, Op::Put | Op::Delete)
    }
}

/// Which requests a rule counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requests {
    /// One kind of request.
    Only(Op),
    /// Puts and deletes.
    Writes,
    /// Every request.
    All,
}

impl Requests {
    fn matches(self, op: Op) -> bool {
        match self {
            Requests::Only(o) => o == op,
            Requests::Writes => op.is_write(),
            Requests::All => true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// Fail the matching request.
    Fail,
    /// Fail the matching request and everything after it.
    Stop,
}

#[derive(Debug, Clone)]
struct Rule {
    requests: Requests,
    pattern: String,
    /// `None`: every match; `Some(n)`: only the `n`th (from 0).
    nth: Option<u64>,
    action: Action,
    matched: u64,
}

#[derive(Debug, Default)]
struct State {
    rules: Vec<Rule>,
    outage: bool,
    stopped: Option<(Op, String)>,
    seen: [u64; 5],
    failed: u64,
}

/// Fault rules and counters, shared by clones (the test keeps one, the storage another).
#[derive(Clone, Debug, Default)]
pub struct Faults {
    state: Arc<Mutex<State>>,
}

impl Faults {
    /// No rules: every request goes through.
    pub fn new() -> Self {
        Self::default()
    }

    fn add(&self, requests: Requests, pattern: &str, nth: Option<u64>, action: Action) -> &Self {
        self.state.lock().rules.push(Rule {
            requests,
            pattern: pattern.to_owned(),
            nth,
            action,
            matched: 0,
        });
        self
    }

    /// Fails the `n`th (from 0) of `requests` whose path contains `pattern`, once.
    pub fn fail_nth(&self, requests: Requests, pattern: &str, n: u64) -> &Self {
        self.add(requests, pattern, Some(n), Action::Fail)
    }

    /// Fails every one of `requests` whose path contains `pattern`.
    pub fn fail_every(&self, requests: Requests, pattern: &str) -> &Self {
        self.add(requests, pattern, None, Action::Fail)
    }

    /// At the `n`th (from 0) of `requests` whose path contains `pattern`, stops: that request
    /// and every request after it fail, as if the process had died just before it.
    pub fn stop_at(&self, requests: Requests, pattern: &str, n: u64) -> &Self {
        self.add(requests, pattern, Some(n), Action::Stop)
    }

    /// Every request fails from now until [`Faults::release`].
    pub fn outage(&self) {
        self.state.lock().outage = true;
    }

    /// Ends an [`Faults::outage`] (a stop stays stopped).
    pub fn release(&self) {
        self.state.lock().outage = false;
    }

    /// Requests of `op` the storage made, failed or not.
    pub fn seen(&self, op: Op) -> u64 {
        self.state.lock().seen[index(op)]
    }

    /// Requests that were failed on purpose.
    pub fn failed(&self) -> u64 {
        self.state.lock().failed
    }

    /// The request a [`Faults::stop_at`] rule stopped at, if one did: its kind and path.
    pub fn stopped_at(&self) -> Option<(Op, String)> {
        self.state.lock().stopped.clone()
    }

    /// Decides one request: `Err` with the reason when it must fail.
    fn check(&self, op: Op, path: &str) -> object_store::Result<()> {
        let mut state = self.state.lock();
        state.seen[index(op)] += 1;
        let mut verdict = None;
        if let Some((at_op, at)) = &state.stopped {
            verdict = Some(format!("stopped earlier at {at_op:?} {at}"));
        } else if state.outage {
            verdict = Some("outage".to_owned());
        }
        let mut stop = false;
        for rule in &mut state.rules {
            if !rule.requests.matches(op) || !path.contains(rule.pattern.as_str()) {
                continue;
            }
            let n = rule.matched;
            rule.matched += 1;
            if rule.nth.is_none_or(|nth| nth == n) && verdict.is_none() {
                verdict = Some(format!("rule {:?} on {:?}", rule.action, rule.pattern));
                stop = rule.action == Action::Stop;
            }
        }
        if stop {
            state.stopped = Some((op, path.to_owned()));
        }
        match verdict {
            None => Ok(()),
            Some(why) => {
                state.failed += 1;
                Err(object_store::Error::Generic {
                    store: "faults",
                    source: format!("injected fault ({why}) on {op:?} {path}").into(),
                })
            }
        }
    }
}

fn index(op: Op) -> usize {
    Op::ALL.iter().position(|o| *o == op).unwrap_or(0)
}

/// An [`ObjectStore`] that asks [`Faults`] before every request.
#[derive(Debug)]
pub(crate) struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    faults: Faults,
}

impl FaultyStore {
    pub(crate) fn new(inner: Arc<dyn ObjectStore>, faults: Faults) -> Self {
        Self { inner, faults }
    }

    fn failed_stream<T: Send + 'static>(
        error: object_store::Error,
    ) -> BoxStream<'static, object_store::Result<T>> {
        stream::once(async move { Err(error) }).boxed()
    }
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Faulty({})", self.inner)
    }
}

#[async_trait::async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.faults.check(Op::Put, location.as_ref())?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.faults.check(Op::Put, location.as_ref())?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let op = if options.head { Op::Head } else { Op::Get };
        self.faults.check(op, location.as_ref())?;
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.faults.check(Op::Get, location.as_ref())?;
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        // Each location is decided as it comes, so a stop in the middle of a batch deletes
        // what came before it only.
        let faults = self.faults.clone();
        let inner = Arc::clone(&self.inner);
        locations
            .then(move |location| {
                let (faults, inner) = (faults.clone(), Arc::clone(&inner));
                async move {
                    let location = location?;
                    faults.check(Op::Delete, location.as_ref())?;
                    let mut done =
                        inner.delete_stream(stream::once(async { Ok(location) }).boxed());
                    match done.next().await {
                        Some(result) => result,
                        None => Err(object_store::Error::Generic {
                            store: "faults",
                            source: "the backend's delete yielded nothing".into(),
                        }),
                    }
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let path = prefix.map(|p| p.as_ref().to_owned()).unwrap_or_default();
        match self.faults.check(Op::List, &path) {
            Ok(()) => self.inner.list(prefix),
            Err(e) => Self::failed_stream(e),
        }
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let path = prefix.map(|p| p.as_ref().to_owned()).unwrap_or_default();
        match self.faults.check(Op::List, &path) {
            Ok(()) => self.inner.list_with_offset(prefix, offset),
            Err(e) => Self::failed_stream(e),
        }
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let path = prefix.map(|p| p.as_ref().to_owned()).unwrap_or_default();
        self.faults.check(Op::List, &path)?;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.faults.check(Op::Put, to.as_ref())?;
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.faults.check(Op::Put, to.as_ref())?;
        self.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Storage;

    fn p(s: &str) -> Path {
        Path::from(s)
    }

    #[tokio::test]
    async fn the_nth_matching_put_fails_once_and_the_rest_go_through() {
        let faults = Faults::new();
        faults.fail_nth(Requests::Only(Op::Put), "meta.json", 1);
        let storage = Storage::in_memory().with_faults(&faults);
        let bytes = || Bytes::from_static(b"x");
        storage.put(&p("a/data.parquet"), bytes()).await.unwrap();
        storage.put(&p("a/meta.json"), bytes()).await.unwrap();
        let err = storage.put(&p("b/meta.json"), bytes()).await.unwrap_err();
        assert!(err.to_string().contains("injected fault"), "{err}");
        storage.put(&p("c/meta.json"), bytes()).await.unwrap();
        assert!(
            storage
                .get(&p("b/meta.json"))
                .await
                .unwrap_err()
                .is_not_found()
        );
        assert_eq!(faults.seen(Op::Put), 4);
        assert_eq!(faults.failed(), 1);
        assert_eq!(faults.stopped_at(), None);
    }

    #[tokio::test]
    async fn every_matching_get_fails_and_others_are_untouched() {
        let faults = Faults::new();
        faults.fail_every(Requests::Only(Op::Get), "bloom");
        let storage = Storage::in_memory().with_faults(&faults);
        storage
            .put(&p("a/bloom-0"), Bytes::from_static(b"b"))
            .await
            .unwrap();
        storage
            .put(&p("a/data"), Bytes::from_static(b"0123"))
            .await
            .unwrap();
        for _ in 0..3 {
            assert!(storage.get(&p("a/bloom-0")).await.is_err());
        }
        assert_eq!(storage.get_range(&p("a/data"), 1..3).await.unwrap(), "12");
        assert_eq!(storage.size(&p("a/bloom-0")).await.unwrap(), 1);
        assert_eq!(faults.failed(), 3);
        assert_eq!(faults.seen(Op::Get), 4);
        assert_eq!(faults.seen(Op::Head), 1);
    }

    #[tokio::test]
    async fn a_stop_fails_that_write_and_everything_after_it() {
        let faults = Faults::new();
        faults.stop_at(Requests::Writes, "", 2);
        let storage = Storage::in_memory().with_faults(&faults);
        let bytes = || Bytes::from_static(b"x");
        storage.put(&p("t/a"), bytes()).await.unwrap();
        storage.delete(&p("t/a")).await.unwrap();
        assert!(storage.put(&p("t/b"), bytes()).await.is_err());
        assert!(storage.list(&p("t")).await.is_err());
        assert!(storage.get(&p("t/a")).await.is_err());
        assert!(storage.delete(&p("t/b")).await.is_err());
        assert_eq!(faults.stopped_at(), Some((Op::Put, "t/b".to_owned())));
        // Nothing after the stop reached the backend.
        faults.release();
        assert!(storage.list(&p("t")).await.is_err());
    }

    #[tokio::test]
    async fn an_outage_fails_everything_until_released() {
        let faults = Faults::new();
        let storage = Storage::in_memory().with_faults(&faults);
        storage
            .put(&p("t/a"), Bytes::from_static(b"x"))
            .await
            .unwrap();
        faults.outage();
        assert!(storage.get(&p("t/a")).await.is_err());
        assert!(storage.list(&p("t")).await.is_err());
        assert!(storage.list_dirs(&p("")).await.is_err());
        assert!(storage.put(&p("t/b"), Bytes::new()).await.is_err());
        faults.release();
        assert_eq!(storage.get(&p("t/a")).await.unwrap(), "x");
        assert_eq!(storage.list(&p("t")).await.unwrap().len(), 1);
        assert_eq!(faults.failed(), 4);
    }
}
