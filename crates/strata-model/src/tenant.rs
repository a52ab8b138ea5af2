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

/// The header naming a request's tenant, lower case as HTTP/2 and gRPC metadata spell it.
pub const TENANT_HEADER: &str = "x-scope-orgid";

/// The tenant of a request, from the value of its `X-Scope-OrgID` header: the one rule every
/// Strata endpoint (OTLP, the query API, the internal API) applies.
///
/// With `multitenancy` off the header is ignored and everything belongs to the default tenant,
/// as in Tempo. With it on, a missing or empty header is [`Error::NoTenant`] (401) and anything
/// else must be a valid [`TenantId`] (400 otherwise), checked before it can reach a storage path.
pub fn tenant_from_header(value: Option<&[u8]>, multitenancy: bool) -> Result<TenantId> {
    if !multitenancy {
        return Ok(TenantId::default_tenant());
    }
    match value {
        None | Some(b"") => Err(Error::NoTenant),
        Some(bytes) => {
            let text = std::str::from_utf8(bytes).map_err(|_| Error::Tenant {
                tenant: truncate_for_message(&String::from_utf8_lossy(bytes)),
                reason: "not UTF-8",
            })?;
            TenantId::new(text)
        }
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

    #[test]
    fn the_header_rule_depends_on_multitenancy() {
        let single = tenant_from_header(Some(b"team-a"), false).unwrap();
        assert_eq!(
            single.as_str(),
            DEFAULT_TENANT,
            "the header is ignored when off"
        );
        assert_eq!(
            tenant_from_header(Some(b"../x"), false).unwrap().as_str(),
            DEFAULT_TENANT
        );
        assert_eq!(
            tenant_from_header(Some(b"team-a"), true).unwrap().as_str(),
            "team-a"
        );
        for missing in [None, Some(&b""[..])] {
            let err = tenant_from_header(missing, true).unwrap_err();
            assert_eq!(err, Error::NoTenant);
            assert_eq!(err.kind().http_status(), 401);
        }
        let long = vec![b'a'; 10 * 1024];
        for hostile in [&b"../x"[..], b"a/b", b"a\x01b", b"\xff\xfe", &long] {
            let err = tenant_from_header(Some(hostile), true).unwrap_err();
            assert_eq!(err.kind().http_status(), 400, "{hostile:?}: {err}");
        }
    }
}
