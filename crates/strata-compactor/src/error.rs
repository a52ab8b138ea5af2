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
    /// The fault-injection hook stopped the compactor (tests only).
    #[error("stopped at {0}")]
    Stopped(String),
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
