//! `tags.json`: the attribute names and values a block holds, per scope, written when the block
//! is cut so tag discovery (Grafana's autocomplete) never scans span data.
//!
//! Values are kept per tag up to [`MAX_VALUES_PER_TAG`] distinct values of at most
//! [`MAX_VALUE_BYTES`] bytes; a tag with more is marked `truncated` (its name is still listed).
//! Resources and scopes are shared by many spans, so each distinct one is visited once.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use strata_model::{AttrValue, KeyValue, Span, SpanKind, StatusCode};

use crate::error::{Error, Result};

/// Distinct values kept per tag.
pub const MAX_VALUES_PER_TAG: usize = 1000;
/// Longer values are not kept (their tag is marked truncated).
pub const MAX_VALUE_BYTES: usize = 256;

/// A typed tag value, as Tempo's v2 tag-values API gives it: `type` is a TraceQL static type
/// name (`string`, `int`, `float`, `bool`, `status`, `kind`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TagValue {
    /// TraceQL type name.
    #[serde(rename = "type")]
    pub ty: String,
    /// The value as text.
    pub value: String,
}

/// The values seen for one tag.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TagValues {
    /// Distinct values, sorted.
    pub values: BTreeSet<TagValue>,
    /// Whether values were left out (too many or too long).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// The contents of `tags.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TagSummary {
    /// Attribute tags by scope (`resource`, `span`, `event`, `link`, `instrumentation`), then
    /// attribute name.
    pub scopes: BTreeMap<String, BTreeMap<String, TagValues>>,
    /// Values of enumerable intrinsics (`name`, `status`, `kind`, `statusMessage`,
    /// `rootServiceName`, `rootName`, `event:name`, `instrumentation:name`,
    /// `instrumentation:version`).
    pub intrinsics: BTreeMap<String, TagValues>,
}

impl TagSummary {
    /// Parses a `tags.json`.
    pub fn parse(bytes: &[u8], path: &str) -> Result<Self> {
        serde_json::from_slice(bytes).map_err(|source| Error::Meta {
            path: path.to_owned(),
            source,
        })
    }

    /// The JSON written to storage.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Adds everything `other` holds.
    pub fn merge(&mut self, other: &TagSummary) {
        for (scope, tags) in &other.scopes {
            let mine = self.scopes.entry(scope.clone()).or_default();
            for (name, values) in tags {
                merge_values(mine.entry(name.clone()).or_default(), values);
            }
        }
        for (name, values) in &other.intrinsics {
            merge_values(self.intrinsics.entry(name.clone()).or_default(), values);
        }
    }

    /// Memory it takes, roughly, for cache accounting.
    pub fn memory_size(&self) -> usize {
        let values = |v: &TagValues| {
            v.values
                .iter()
                .map(|t| t.value.len() + t.ty.len() + 64)
                .sum::<usize>()
                + 64
        };
        self.scopes
            .values()
            .flat_map(|t| t.iter())
            .chain(self.intrinsics.iter())
            .map(|(k, v)| k.len() + values(v))
            .sum()
    }
}

fn merge_values(into: &mut TagValues, from: &TagValues) {
    into.truncated |= from.truncated;
    for v in &from.values {
        if into.values.len() >= MAX_VALUES_PER_TAG {
            into.truncated = true;
            break;
        }
        into.values.insert(v.clone());
    }
}

/// Collects a [`TagSummary`] from spans.
#[derive(Debug, Default)]
pub struct TagSummaryBuilder {
    summary: TagSummary,
    resources_seen: HashSet<usize>,
    scopes_seen: HashSet<usize>,
}

fn typed(value: &AttrValue) -> Option<TagValue> {
    let (ty, value) = match value {
        AttrValue::Str(s) => ("string", s.clone()),
        AttrValue::Int(i) => ("int", i.to_string()),
        AttrValue::Double(d) => ("float", d.to_string()),
        AttrValue::Bool(b) => ("bool", b.to_string()),
        _ => return None,
    };
    Some(TagValue {
        ty: ty.to_owned(),
        value,
    })
}

fn add(values: &mut TagValues, value: Option<TagValue>) {
    let Some(value) = value else {
        return;
    };
    if values.values.contains(&value) {
        return;
    }
    if values.values.len() >= MAX_VALUES_PER_TAG || value.value.len() > MAX_VALUE_BYTES {
        values.truncated = true;
        return;
    }
    values.values.insert(value);
}

fn string(value: &str) -> Option<TagValue> {
    (!value.is_empty()).then(|| TagValue {
        ty: "string".into(),
        value: value.to_owned(),
    })
}

impl TagSummaryBuilder {
    fn attrs(&mut self, scope: &str, attrs: &[KeyValue]) {
        if attrs.is_empty() {
            return;
        }
        let tags = self.summary.scopes.entry(scope.to_owned()).or_default();
        for kv in attrs {
            let values = match tags.get_mut(kv.key.as_str()) {
                Some(v) => v,
                None => tags.entry(kv.key.clone()).or_default(),
            };
            if values.truncated && values.values.len() >= MAX_VALUES_PER_TAG {
                continue;
            }
            match &kv.value {
                AttrValue::Array(items) => {
                    for item in items {
                        add(values, typed(item));
                    }
                }
                other => add(values, typed(other)),
            }
        }
    }

    fn intrinsic(&mut self, name: &str, value: Option<TagValue>) {
        if value.is_none() {
            return;
        }
        let values = match self.summary.intrinsics.get_mut(name) {
            Some(v) => v,
            None => self.summary.intrinsics.entry(name.to_owned()).or_default(),
        };
        add(values, value);
    }

    /// Records one trace's spans.
    pub fn add_trace(&mut self, spans: &[Span]) {
        for span in spans {
            if self
                .resources_seen
                .insert(Arc::as_ptr(&span.resource) as usize)
            {
                self.attrs("resource", &span.resource.attributes);
            }
            if self.scopes_seen.insert(Arc::as_ptr(&span.scope) as usize) {
                self.attrs("instrumentation", &span.scope.attributes);
                self.intrinsic("instrumentation:name", string(&span.scope.name));
                self.intrinsic("instrumentation:version", string(&span.scope.version));
            }
            self.attrs("span", &span.attributes);
            for event in &span.events {
                self.attrs("event", &event.attributes);
                self.intrinsic("event:name", string(&event.name));
            }
            for link in &span.links {
                self.attrs("link", &link.attributes);
            }
            self.intrinsic("name", string(&span.name));
            self.intrinsic("statusMessage", string(&span.status_message));
            let status = match span.status_code {
                StatusCode::OK => "ok",
                StatusCode::ERROR => "error",
                _ => "unset",
            };
            self.intrinsic(
                "status",
                Some(TagValue {
                    ty: "keyword".into(),
                    value: status.into(),
                }),
            );
            let kind = match span.kind {
                SpanKind::INTERNAL => "internal",
                SpanKind::SERVER => "server",
                SpanKind::CLIENT => "client",
                SpanKind::PRODUCER => "producer",
                SpanKind::CONSUMER => "consumer",
                _ => "unspecified",
            };
            self.intrinsic(
                "kind",
                Some(TagValue {
                    ty: "keyword".into(),
                    value: kind.into(),
                }),
            );
            if span.parent_span_id.is_none() {
                self.intrinsic("rootName", string(&span.name));
                self.intrinsic("rootServiceName", span.service_name().and_then(string));
            }
        }
    }

    /// The summary.
    pub fn finish(self) -> TagSummary {
        self.summary
    }
}
