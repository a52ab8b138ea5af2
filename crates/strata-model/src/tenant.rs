//! Tenant identifiers, validated before they reach a storage path.

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result, truncate_for_message};

/// The tenant used when a request names none (Tempo's `single-tenant`).
pub const DEFAULT_TENANT: &str = "single-tenant";

/// The longest tenant ID accepted, in bytes.
pub const MAX_TENANT_LEN: usize = 150;

/// A validated tenant ID: 1 to [`MAX_TENANT_LEN`] characters from `A-Z a-z 0-9 ! - _ . * ' ( )`,
/// and neither `.` nor `..`. These are the rules Cortex, Mimir and Tempo apply, chosen so that a
/// tenant ID is always a safe single path segment in an object store key.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TenantId(Arc<str>);

impl TenantId {
    /// Validates a tenant ID taken from a request or a storage path.
    pub fn new(text: &str) -> Result<Self> {
        let bad = |reason| Error::Tenant {
            tenant: truncate_for_message(text),
            reason,
        };
        if text.is_empty() {
            return Err(bad("empty"));
        }
        if text.len() > MAX_TENANT_LEN {
            return Err(bad("longer than 150 bytes"));
        }
        if text == "." || text == ".." {
            return Err(bad("`.` and `..` are not tenant IDs"));
        }
        if let Some(c) = text.chars().find(|c| !is_tenant_char(*c)) {
            return Err(if c == '/' || c == '\\' {
                bad("contains a path separator")
            } else if c.is_control() {
                bad("contains a control character")
            } else {
                bad("allowed characters are A-Z a-z 0-9 ! - _ . * ' ( )")
            });
        }
        Ok(Self(Arc::from(text)))
    }

    /// The tenant used when a request names none.
    pub fn default_tenant() -> Self {
        Self(Arc::from(DEFAULT_TENANT))
    }

    /// The tenant ID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_tenant_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '!' | '-' | '_' | '.' | '*' | '\'' | '(' | ')')
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantId({:?})", &*self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_tenants() {
        for ok in ["single-tenant", "team_a", "A.b-c", "x", "(prod)*!'"] {
            assert_eq!(TenantId::new(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn refuses_hostile_tenants() {
        let long = "a".repeat(151);
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "a\\b",
            "a\u{0}b",
            "tab\there",
            &long,
            "é",
            "a b",
        ] {
            assert!(TenantId::new(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(TenantId::new(&"a".repeat(150)).is_ok());
    }
}
