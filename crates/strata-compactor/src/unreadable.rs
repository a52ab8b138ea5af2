//! The compactor's memory of entries it could not read, so that one bad block or segment costs
//! only itself: the planner plans around what is remembered here, and the entry is tried again
//! once `compactor.unreadable_retry` has passed.
//!
//! The memory is in the process, not in the bucket: a marker object would be one more thing
//! to write, parse and trust, and would outlive the outage or bug that made the entry fail. A
//! restarted compactor tries each bad entry once more, which costs one failed read.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use strata_model::TenantId;
use uuid::Uuid;

/// Failures of the object store (not of the data) are forgiven this many times in a row
/// before the entry is planned around: an outage is not the entry's fault.
const STORAGE_FAILURES_TOLERATED: u32 = 2;

/// Why an entry could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cause {
    /// The bytes are wrong: corrupt, truncated, missing, or a reader panicked on them.
    Data,
    /// The object store failed the request.
    Storage,
}

#[derive(Debug, Clone)]
struct Failure {
    last: DateTime<Utc>,
    storage_failures: u32,
    data: bool,
}

impl Failure {
    fn planned_around(&self) -> bool {
        self.data || self.storage_failures > STORAGE_FAILURES_TOLERATED
    }
}

/// Entries that failed, by tenant and ID (blocks and segments share the map: IDs are UUIDs).
#[derive(Debug, Default)]
pub(crate) struct UnreadableEntries {
    failures: Mutex<HashMap<(TenantId, Uuid), Failure>>,
}

impl UnreadableEntries {
    /// Remembers a failure at `now` (the cycle's clock); true when the entry is from now on
    /// planned around and was not before (the moment to count it).
    pub(crate) fn record(
        &self,
        tenant: &TenantId,
        id: Uuid,
        cause: Cause,
        now: DateTime<Utc>,
    ) -> bool {
        let mut failures = self.failures.lock();
        let entry = failures.entry((tenant.clone(), id)).or_insert(Failure {
            last: now,
            storage_failures: 0,
            data: false,
        });
        let before = entry.planned_around();
        entry.last = now;
        match cause {
            Cause::Data => entry.data = true,
            Cause::Storage => entry.storage_failures += 1,
        }
        entry.planned_around() && !before
    }

    /// The tenant's entries to plan around at `now`; those whose `retry` has passed are
    /// forgotten, so the next cycle tries them again.
    pub(crate) fn planned_around(
        &self,
        tenant: &TenantId,
        now: DateTime<Utc>,
        retry: Duration,
    ) -> BTreeSet<Uuid> {
        let retry = chrono::Duration::from_std(retry).unwrap_or(chrono::Duration::MAX);
        let mut failures = self.failures.lock();
        failures.retain(|_, f| {
            now < f
                .last
                .checked_add_signed(retry)
                .unwrap_or(DateTime::<Utc>::MAX_UTC)
        });
        failures
            .iter()
            .filter(|((t, _), f)| t == tenant && f.planned_around())
            .map(|((_, id), _)| *id)
            .collect()
    }

    /// Forgets an entry (deleted, or read fine since).
    pub(crate) fn forget(&self, tenant: &TenantId, id: Uuid) {
        self.failures.lock().remove(&(tenant.clone(), id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_data_is_planned_around_at_once_and_retried_after_the_period() {
        let memory = UnreadableEntries::default();
        let (t, id) = (TenantId::new("t").unwrap(), Uuid::now_v7());
        let now = Utc::now();
        let hour = Duration::from_secs(3600);
        assert!(memory.record(&t, id, Cause::Data, now));
        assert!(!memory.record(&t, id, Cause::Data, now));
        assert_eq!(memory.planned_around(&t, now, hour), BTreeSet::from([id]));
        let other = TenantId::new("u").unwrap();
        assert!(memory.planned_around(&other, now, hour).is_empty());
        let later = now + chrono::Duration::hours(1);
        assert!(memory.planned_around(&t, later, hour).is_empty());
        // Forgotten: the next failure counts again.
        assert!(memory.record(&t, id, Cause::Data, later));
    }

    #[test]
    fn storage_failures_are_forgiven_a_few_times() {
        let memory = UnreadableEntries::default();
        let (t, id) = (TenantId::new("t").unwrap(), Uuid::now_v7());
        let now = Utc::now();
        let hour = Duration::from_secs(3600);
        for _ in 0..STORAGE_FAILURES_TOLERATED {
            assert!(!memory.record(&t, id, Cause::Storage, now));
            assert!(memory.planned_around(&t, now, hour).is_empty());
        }
        assert!(memory.record(&t, id, Cause::Storage, now));
        assert_eq!(memory.planned_around(&t, now, hour).len(), 1);
        memory.forget(&t, id);
        assert!(memory.planned_around(&t, now, hour).is_empty());
    }
}
