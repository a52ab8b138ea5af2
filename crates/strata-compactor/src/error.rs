//! Errors of the compactor.

use uuid::Uuid;

/// What went wrong in a compaction cycle.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a block or rollup segment failed.
    #[error("tenant {tenant}: {source}")]
    Block {
        /// Tenant being compacted.
        tenant: String,
        /// The block-format error (boxed: it is large, and errors are rare).
        #[source]
        source: Box<strata_block::Error>,
    },
    /// A job could not run.
    #[error("tenant {tenant}, job over {inputs:?}: {message}")]
    Job {
        /// Tenant being compacted.
        tenant: String,
        /// The job's inputs.
        inputs: Vec<Uuid>,
        /// What failed.
        message: String,
    },
    /// A block or rollup segment could not be read: the entry is at fault, not the job.
    #[error("tenant {tenant}: cannot read {entry}: {source}")]
    Unreadable {
        /// Tenant being compacted.
        tenant: String,
        /// The block or segment.
        entry: Uuid,
        /// What failed (boxed: it is large, and errors are rare).
        #[source]
        source: Box<strata_block::Error>,
    },
    /// A fold or job panicked; which of its inputs is at fault is not known.
    #[error("tenant {tenant}: {work} panicked: {message}")]
    Panicked {
        /// Tenant being compacted.
        tenant: String,
        /// The unit of work.
        work: String,
        /// The panic's message, when it had one.
        message: String,
    },
}

impl Error {
    /// The entry an error blames, and whether the bytes (rather than the object store) are at
    /// fault.
    pub(crate) fn blames(&self) -> Option<(Uuid, crate::unreadable::Cause)> {
        match self {
            Self::Unreadable { entry, source, .. } => Some((
                *entry,
                if source.is_storage_failure() {
                    crate::unreadable::Cause::Storage
                } else {
                    crate::unreadable::Cause::Data
                },
            )),
            _ => None,
        }
    }
}

/// Result with the compactor [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches the tenant to block-format errors.
pub(crate) trait ForTenant<T> {
    fn for_tenant(self, tenant: &strata_model::TenantId) -> Result<T>;
}

impl<T, E: Into<strata_block::Error>> ForTenant<T> for std::result::Result<T, E> {
    fn for_tenant(self, tenant: &strata_model::TenantId) -> Result<T> {
        self.map_err(|e| Error::Block {
            tenant: tenant.to_string(),
            source: Box::new(e.into()),
        })
    }
}

/// Attaches the entry being read to block-format errors: the entry is at fault.
pub(crate) fn unreadable(
    tenant: &strata_model::TenantId,
    entry: Uuid,
) -> impl FnOnce(strata_block::Error) -> Error + use<> {
    let tenant = tenant.to_string();
    move |source| Error::Unreadable {
        tenant,
        entry,
        source: Box::new(source),
    }
}

/// A merge's error: blamed on the input it names, on the job otherwise.
pub(crate) fn merge_error(tenant: &strata_model::TenantId, e: strata_block::Error) -> Error {
    match e.input_block() {
        Some(entry) => unreadable(tenant, entry)(e),
        None => Error::Block {
            tenant: tenant.to_string(),
            source: Box::new(e),
        },
    }
}
