//! [`Storage`]: the instrumented object store handle every role shares.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::config::{StorageBackend, StorageConfig};
use crate::error::{Error, Result};
use crate::metrics::StorageMetrics;

/// An object's path, size and last write, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Full path of the object.
    pub path: Path,
    /// Size in bytes.
    pub size: u64,
    /// When the object was last written, by the store's clock (the bucket's `Last-Modified`,
    /// the file's mtime on local disk).
    pub last_modified: DateTime<Utc>,
}

/// A handle on object storage. Cheap to clone; clones share the connection pool and metrics.
#[derive(Clone, Debug)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    metrics: StorageMetrics,
    description: Arc<str>,
}

impl Storage {
    /// Opens the backend described by `config` (which must have passed `validate()`). The local
    /// backend creates its directory.
    pub fn from_config(config: &StorageConfig) -> Result<Self> {
        config.validate()?;
        let (store, description): (Arc<dyn ObjectStore>, String) = match config.backend {
            StorageBackend::Memory => (Arc::new(InMemory::new()), "memory".to_owned()),
            StorageBackend::Local => {
                let path = &config.local.path;
                std::fs::create_dir_all(path).map_err(|e| Error::Config {
                    key: "storage.local.path",
                    message: format!("cannot create {}: {e}", path.display()),
                })?;
                // Deleting a block's last object removes its directory too, as on a bucket.
                // Every write is fsync'd, file and directories, before it returns: the ingester
                // deletes WAL segments once their block is written, so a written block must
                // survive a power cut as an object on S3 would.
                let store = LocalFileSystem::new_with_prefix(path)
                    .map_err(|e| Error::Config {
                        key: "storage.local.path",
                        message: e.to_string(),
                    })?
                    .with_automatic_cleanup(true)
                    .with_fsync(true);
                (Arc::new(store), format!("local:{}", path.display()))
            }
            StorageBackend::S3 => {
                let s3 = &config.s3;
                let retry = &config.retry;
                let mut builder = AmazonS3Builder::from_env()
                    .with_bucket_name(&s3.bucket)
                    .with_allow_http(s3.allow_http)
                    .with_virtual_hosted_style_request(!s3.path_style)
                    .with_retry(object_store::RetryConfig {
                        backoff: object_store::BackoffConfig {
                            init_backoff: retry.initial_backoff,
                            max_backoff: retry.max_backoff,
                            base: 2.0,
                        },
                        max_retries: retry.max_retries,
                        retry_timeout: retry.retry_timeout,
                    })
                    .with_client_options(
                        ClientOptions::new()
                            .with_timeout(retry.request_timeout)
                            .with_connect_timeout(retry.connect_timeout)
                            .with_allow_http(s3.allow_http),
                    );
                if let Some(endpoint) = &s3.endpoint {
                    builder = builder.with_endpoint(endpoint);
                }
                if let Some(region) = &s3.region {
                    builder = builder.with_region(region);
                } else if std::env::var_os("AWS_REGION").is_none()
                    && std::env::var_os("AWS_DEFAULT_REGION").is_none()
                {
                    builder = builder.with_region("us-east-1");
                }
                if let Some(key) = &s3.access_key_id {
                    builder = builder.with_access_key_id(key);
                }
                if let Some(secret) = &s3.secret_access_key {
                    builder = builder.with_secret_access_key(secret);
                }
                if let Some(token) = &s3.session_token {
                    builder = builder.with_token(token);
                }
                let store = builder.build().map_err(|e| Error::Config {
                    key: "storage.s3",
                    message: e.to_string(),
                })?;
                let endpoint = s3.endpoint.as_deref().unwrap_or("aws");
                (Arc::new(store), format!("s3:{endpoint}/{}", s3.bucket))
            }
        };
        let store = if config.prefix.is_empty() {
            store
        } else {
            Arc::new(PrefixStore::new(store, config.prefix.as_str()))
        };
        Ok(Self {
            store,
            metrics: StorageMetrics::default(),
            description: description.into(),
        })
    }

    /// A fresh in-memory store, for unit tests.
    pub fn in_memory() -> Self {
        Self {
            store: Arc::new(InMemory::new()),
            metrics: StorageMetrics::default(),
            description: "memory".into(),
        }
    }

    /// Where the objects live, for logs: `local:./data/blocks`, `s3:http://host:9000/bucket`.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The traffic counters.
    pub fn metrics(&self) -> &StorageMetrics {
        &self.metrics
    }

    /// This storage seen through `faults`, which can fail or stop its requests (tests). The
    /// copy shares the backend and the metrics.
    #[cfg(feature = "testing")]
    pub fn with_faults(&self, faults: &crate::faults::Faults) -> Self {
        Self {
            store: Arc::new(crate::faults::FaultyStore::new(
                Arc::clone(&self.store),
                faults.clone(),
            )),
            metrics: self.metrics.clone(),
            description: format!("{} (faults injected)", self.description).into(),
        }
    }

    /// Reads a whole object.
    pub async fn get(&self, path: &Path) -> Result<Bytes> {
        let result = async { self.store.get(path).await?.bytes().await }.await;
        let bytes = self.observe("get", path, result)?;
        self.metrics.read(bytes.len());
        Ok(bytes)
    }

    /// Reads a whole object of at most `max` bytes; a larger one is refused with
    /// [`Error::TooLarge`] before its body is read (for objects whose size the reader cannot
    /// trust, so that one huge object cannot exhaust memory).
    pub async fn get_at_most(&self, path: &Path, max: u64) -> Result<Bytes> {
        let result = async {
            let found = self.store.get(path).await?;
            if found.meta.size > max {
                return Ok(Err(found.meta.size));
            }
            found.bytes().await.map(Ok)
        }
        .await;
        match self.observe("get", path, result)? {
            Ok(bytes) => {
                self.metrics.read(bytes.len());
                Ok(bytes)
            }
            Err(size) => Err(Error::TooLarge {
                path: path.to_string(),
                size,
                max,
            }),
        }
    }

    /// Reads the bytes `range` of an object.
    pub async fn get_range(&self, path: &Path, range: Range<u64>) -> Result<Bytes> {
        let result = self.store.get_range(path, range).await;
        let bytes = self.observe("get_range", path, result)?;
        self.metrics.read(bytes.len());
        Ok(bytes)
    }

    /// The size of an object.
    pub async fn size(&self, path: &Path) -> Result<u64> {
        let result = self.store.head(path).await;
        Ok(self.observe("head", path, result)?.size)
    }

    /// Writes a whole object, replacing any object at `path`. Readers see the old object or the
    /// new one, never a part.
    pub async fn put(&self, path: &Path, bytes: Bytes) -> Result<()> {
        let len = bytes.len();
        let result = self.store.put(path, PutPayload::from_bytes(bytes)).await;
        self.observe("put", path, result)?;
        self.metrics.written(len);
        Ok(())
    }

    /// Writes an object only if none exists at `path`; [`Error::AlreadyExists`] otherwise. Only
    /// as safe as the backend's conditional PUT (some S3-compatible servers ignore it).
    pub async fn put_if_absent(&self, path: &Path, bytes: Bytes) -> Result<()> {
        let len = bytes.len();
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        let result = self
            .store
            .put_opts(path, PutPayload::from_bytes(bytes), opts)
            .await;
        self.observe("put", path, result)?;
        self.metrics.written(len);
        Ok(())
    }

    /// Lists every object under `prefix`, recursively.
    pub async fn list(&self, prefix: &Path) -> Result<Vec<ObjectInfo>> {
        self.collect_listing(prefix, self.store.list(Some(prefix)))
            .await
    }

    /// Lists every object under `prefix` whose path sorts after `offset`, recursively.
    pub async fn list_after(&self, prefix: &Path, offset: &Path) -> Result<Vec<ObjectInfo>> {
        self.collect_listing(prefix, self.store.list_with_offset(Some(prefix), offset))
            .await
    }

    async fn collect_listing(
        &self,
        prefix: &Path,
        listing: futures::stream::BoxStream<
            'static,
            object_store::Result<object_store::ObjectMeta>,
        >,
    ) -> Result<Vec<ObjectInfo>> {
        let result = listing
            .map_ok(|meta| ObjectInfo {
                path: meta.location,
                size: meta.size,
                last_modified: meta.last_modified,
            })
            .try_collect::<Vec<_>>()
            .await;
        self.observe("list", prefix, result)
    }

    /// Lists the immediate "directories" under `prefix` (common prefixes), as their last path
    /// segment, decoded: a segment written as `Path::from_iter(["team*a"])` is stored as
    /// `team%2Aa` (object_store percent-encodes `*`, `?`, `%` and a few more) and listed here as
    /// `team*a` again, so a name goes through a round trip of writing and listing unchanged.
    /// Names that are not valid percent-encoded UTF-8 are left out.
    pub async fn list_dirs(&self, prefix: &Path) -> Result<Vec<String>> {
        let result = self.store.list_with_delimiter(Some(prefix)).await;
        let listing = self.observe("list", prefix, result)?;
        Ok(listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename())
            .filter_map(|name| {
                percent_encoding::percent_decode_str(name)
                    .decode_utf8()
                    .ok()
                    .map(|decoded| decoded.into_owned())
            })
            .collect())
    }

    /// Deletes an object; deleting an absent object is not an error.
    pub async fn delete(&self, path: &Path) -> Result<()> {
        match self.store.delete(path).await {
            Err(object_store::Error::NotFound { .. }) => {
                self.metrics.request("delete");
                Ok(())
            }
            result => self.observe("delete", path, result),
        }
    }

    fn observe<T>(
        &self,
        op: &'static str,
        path: &Path,
        result: object_store::Result<T>,
    ) -> Result<T> {
        self.metrics.request(op);
        result.map_err(|e| {
            let err = Error::from_store(op, path.as_ref(), e);
            if !err.is_not_found() {
                self.metrics.error(op);
                tracing::warn!(op, path = %path, error = %err, "object storage request failed");
            }
            err
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LocalConfig;

    async fn exercise(storage: Storage) {
        let a = Path::from("t1/blocks/b1/data.parquet");
        let b = Path::from("t1/blocks/b2/meta.json");
        storage
            .put(&a, Bytes::from_static(b"0123456789"))
            .await
            .unwrap();
        storage.put(&b, Bytes::from_static(b"{}")).await.unwrap();
        assert_eq!(
            storage.get_range(&a, 2..5).await.unwrap(),
            Bytes::from_static(b"234")
        );
        assert_eq!(storage.size(&a).await.unwrap(), 10);
        let mut dirs = storage.list_dirs(&Path::from("t1/blocks")).await.unwrap();
        dirs.sort();
        assert_eq!(dirs, vec!["b1", "b2"]);
        let listed = storage.list(&Path::from("t1")).await.unwrap();
        assert_eq!(listed.len(), 2);
        for object in &listed {
            let age = Utc::now() - object.last_modified;
            assert!(
                age < chrono::Duration::minutes(1) && age > chrono::Duration::minutes(-1),
                "{object:?}"
            );
        }
        let after = storage
            .list_after(&Path::from("t1/blocks"), &Path::from("t1/blocks/b1/zzz"))
            .await
            .unwrap();
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].path, b);
        assert!(
            storage
                .get(&Path::from("nope"))
                .await
                .unwrap_err()
                .is_not_found()
        );
        assert_eq!(storage.get_at_most(&a, 10).await.unwrap().len(), 10);
        let refused = storage.get_at_most(&a, 9).await.unwrap_err();
        assert!(
            matches!(
                refused,
                Error::TooLarge {
                    size: 10,
                    max: 9,
                    ..
                }
            ),
            "{refused}"
        );
        assert!(!refused.is_backend_failure() && !refused.is_not_found());
        assert!(matches!(
            storage.put_if_absent(&b, Bytes::new()).await,
            Err(Error::AlreadyExists { .. })
        ));
        storage.delete(&a).await.unwrap();
        storage.delete(&a).await.unwrap();
        assert!(storage.get(&a).await.unwrap_err().is_not_found());
        assert_eq!(storage.metrics().requests("get_range"), 1);
        assert_eq!(storage.metrics().bytes_read(), 13);
        assert_eq!(storage.metrics().bytes_written(), 12);
    }

    #[tokio::test]
    async fn memory_backend_behaves() {
        exercise(Storage::in_memory()).await;
    }

    #[tokio::test]
    async fn local_backend_behaves() {
        let dir = tempfile::tempdir().unwrap();
        let config = StorageConfig {
            local: LocalConfig {
                path: dir.path().join("objects"),
            },
            ..Default::default()
        };
        exercise(Storage::from_config(&config).unwrap()).await;
    }

    /// object_store percent-encodes some characters of path segments (`*` among those a tenant
    /// ID may hold); a directory must list under the name it was written with.
    #[tokio::test]
    async fn directories_list_under_the_names_they_were_written_with() {
        let dir = tempfile::tempdir().unwrap();
        let local = Storage::from_config(&StorageConfig {
            local: LocalConfig {
                path: dir.path().to_owned(),
            },
            ..Default::default()
        })
        .unwrap();
        for storage in [Storage::in_memory(), local] {
            let names = ["team*a", "(prod)!'-_.", "plain"];
            for name in names {
                let path = Path::from_iter([name, "blocks", "x"]);
                storage.put(&path, Bytes::from_static(b"1")).await.unwrap();
            }
            let mut listed = storage.list_dirs(&Path::from("")).await.unwrap();
            listed.sort();
            let mut expected = names.map(str::to_owned).to_vec();
            expected.sort();
            assert_eq!(listed, expected, "{}", storage.description());
            // And what was listed names the same objects again.
            for name in listed {
                let objects = storage
                    .list(&Path::from_iter([name.as_str()]))
                    .await
                    .unwrap();
                assert_eq!(objects.len(), 1, "{name} on {}", storage.description());
            }
        }
    }

    #[tokio::test]
    async fn prefix_is_applied() {
        let dir = tempfile::tempdir().unwrap();
        let config = StorageConfig {
            prefix: "deployment-a".into(),
            local: LocalConfig {
                path: dir.path().to_owned(),
            },
            ..Default::default()
        };
        let storage = Storage::from_config(&config).unwrap();
        storage
            .put(&Path::from("x"), Bytes::from_static(b"1"))
            .await
            .unwrap();
        assert!(dir.path().join("deployment-a/x").exists());
    }
}
