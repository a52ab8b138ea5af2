//! `tags.json`: the attribute names and values a block holds, per scope, written when the block
//! is cut so tag discovery (Grafana's autocomplete) never scans span data.
//!
//! Values are kept per tag up to [`MAX_VALUES_PER_TAG`] distinct values of at most
//! [`MAX_VALUE_BYTES`] bytes; a tag with more is marked `truncated` (its name is still listed).
//! Resources and scopes are shared by many spans, so each distinct one is visited once.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use strata_model::{AttrValue, KeyValue, Resource, Scope, Span, StatusCode};

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

/// Distinct values of one tag while a block is written, kept by type so that a value already
/// seen is found without allocating.
#[derive(Debug, Default)]
struct Acc {
    strings: HashSet<String>,
    ints: HashSet<i64>,
    floats: HashSet<u64>,
    bools: [bool; 2],
    keywords: HashSet<&'static str>,
    count: usize,
    truncated: bool,
}

impl Acc {
    /// Room for one more value; marks the tag truncated when there is none.
    fn room(&mut self) -> bool {
        if self.count >= MAX_VALUES_PER_TAG {
            self.truncated = true;
            return false;
        }
        self.count += 1;
        true
    }

    fn add(&mut self, value: &AttrValue) {
        if self.count >= MAX_VALUES_PER_TAG {
            // Full: every further value is either known or left out; don't even hash it.
            self.truncated = true;
            return;
        }
        match value {
            AttrValue::Str(s) => self.add_str(s),
            // `room()` is asked only for a new value: it counts it.
            AttrValue::Int(i) if !self.ints.contains(i) && self.room() => {
                self.ints.insert(*i);
            }
            AttrValue::Double(d) if !self.floats.contains(&d.to_bits()) && self.room() => {
                self.floats.insert(d.to_bits());
            }
            AttrValue::Bool(b) if !self.bools[usize::from(*b)] && self.room() => {
                self.bools[usize::from(*b)] = true;
            }
            AttrValue::Array(items) => {
                for item in items {
                    if !matches!(item, AttrValue::Array(_)) {
                        self.add(item);
                    }
                }
            }
            // Bytes, key/value lists and empty values: the name only.
            _ => {}
        }
    }

    fn add_str(&mut self, s: &str) {
        if self.count >= MAX_VALUES_PER_TAG {
            self.truncated = !s.is_empty() || self.truncated;
            return;
        }
        if s.is_empty() || self.strings.contains(s) {
            return;
        }
        if s.len() > MAX_VALUE_BYTES {
            self.truncated = true;
        } else if self.room() {
            self.strings.insert(s.to_owned());
        }
    }

    fn add_keyword(&mut self, k: &'static str) {
        if !self.keywords.contains(k) && self.room() {
            self.keywords.insert(k);
        }
    }

    fn finish(self) -> TagValues {
        let mut values = BTreeSet::new();
        let typed = |ty: &str, value: String| TagValue {
            ty: ty.to_owned(),
            value,
        };
        values.extend(self.strings.into_iter().map(|v| typed("string", v)));
        values.extend(self.ints.into_iter().map(|v| typed("int", v.to_string())));
        values.extend(
            self.floats
                .into_iter()
                .map(|v| typed("float", f64::from_bits(v).to_string())),
        );
        for (b, seen) in self.bools.iter().enumerate() {
            if *seen {
                values.insert(typed("bool", (b == 1).to_string()));
            }
        }
        values.extend(
            self.keywords
                .into_iter()
                .map(|v| typed("keyword", v.to_owned())),
        );
        TagValues {
            values,
            truncated: self.truncated,
        }
    }
}

/// The intrinsics a summary keeps values of, in the order of [`TagSummaryBuilder::intrinsics`].
const INTRINSICS: [&str; 9] = [
    "name",
    "statusMessage",
    "status",
    "kind",
    "rootName",
    "rootServiceName",
    "event:name",
    "instrumentation:name",
    "instrumentation:version",
];

/// Collects a [`TagSummary`] from spans.
#[derive(Debug, Default)]
pub struct TagSummaryBuilder {
    span: HashMap<String, Acc>,
    other_scopes: HashMap<&'static str, HashMap<String, Acc>>,
    /// Indexed like [`INTRINSICS`].
    intrinsics: [Acc; 9],
    resources_seen: Seen<Resource>,
    scopes_seen: Seen<Scope>,
}

/// How many distinct resources (or scopes) a builder remembers having summarised.
const MAX_SEEN: usize = 64;

/// Resources or scopes already summarised, recognised by value. Those remembered are kept alive:
/// an address alone proves nothing once its value is freed (the compactor's streaming merge
/// frees each row group's resources before it reads the next, and the allocator hands the same
/// addresses out again), so a pointer match is only trusted for a value still held here. Past
/// [`MAX_SEEN`] distinct values, new ones are summarised every time they come, which is only
/// slower: adding the same attributes twice changes no summary.
#[derive(Debug)]
struct Seen<T> {
    kept: Vec<Arc<T>>,
}

impl<T> Default for Seen<T> {
    fn default() -> Self {
        Self { kept: Vec::new() }
    }
}

impl<T: PartialEq> Seen<T> {
    /// Whether `item` is new (and so must be summarised); remembers it if there is room.
    fn first_sight(&mut self, item: &Arc<T>) -> bool {
        if self.kept.iter().any(|k| Arc::ptr_eq(k, item)) || self.kept.iter().any(|k| **k == **item)
        {
            return false;
        }
        if self.kept.len() < MAX_SEEN {
            self.kept.push(Arc::clone(item));
        }
        true
    }
}

fn add_attrs(tags: &mut HashMap<String, Acc>, attrs: &[KeyValue]) {
    for kv in attrs {
        let acc = match tags.get_mut(kv.key.as_str()) {
            Some(acc) => acc,
            None => tags.entry(kv.key.to_string()).or_default(),
        };
        acc.add(&kv.value);
    }
}

impl TagSummaryBuilder {
    fn attrs(&mut self, scope: &'static str, attrs: &[KeyValue]) {
        if !attrs.is_empty() {
            add_attrs(self.other_scopes.entry(scope).or_default(), attrs);
        }
    }

    /// Records one trace's spans.
    pub fn add_trace(&mut self, spans: &[Span]) {
        for span in spans {
            if self.resources_seen.first_sight(&span.resource) {
                self.attrs("resource", &span.resource.attributes);
            }
            if self.scopes_seen.first_sight(&span.scope) {
                self.attrs("instrumentation", &span.scope.attributes);
                self.intrinsics[7].add_str(&span.scope.name);
                self.intrinsics[8].add_str(&span.scope.version);
            }
            add_attrs(&mut self.span, &span.attributes);
            for event in &span.events {
                self.attrs("event", &event.attributes);
                self.intrinsics[6].add_str(&event.name);
            }
            for link in &span.links {
                self.attrs("link", &link.attributes);
            }
            self.intrinsics[0].add_str(&span.name);
            self.intrinsics[1].add_str(&span.status_message);
            let status = match span.status_code {
                StatusCode::OK => "ok",
                StatusCode::ERROR => "error",
                _ => "unset",
            };
            self.intrinsics[2].add_keyword(status);
            let kind = span.kind.name();
            self.intrinsics[3].add_keyword(kind);
            if span.parent_span_id.is_none() {
                self.intrinsics[4].add_str(&span.name);
                if let Some(service) = span.service_name() {
                    self.intrinsics[5].add_str(service);
                }
            }
        }
    }

    /// The summary. Intrinsics without a value are left out.
    pub fn finish(self) -> TagSummary {
        let mut scopes = self.other_scopes;
        if !self.span.is_empty() {
            scopes.insert("span", self.span);
        }
        TagSummary {
            scopes: scopes
                .into_iter()
                .map(|(scope, tags)| {
                    (
                        scope.to_owned(),
                        tags.into_iter().map(|(k, acc)| (k, acc.finish())).collect(),
                    )
                })
                .collect(),
            intrinsics: INTRINSICS
                .iter()
                .zip(self.intrinsics)
                .filter(|(_, acc)| acc.count > 0 || acc.truncated)
                .map(|(k, acc)| ((*k).to_owned(), acc.finish()))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span_of(resource: Resource) -> Span {
        Span {
            trace_id: strata_model::TraceId([1; 16]),
            span_id: strata_model::SpanId([1; 8]),
            parent_span_id: None,
            trace_state: String::new(),
            flags: 0,
            name: "op".into(),
            kind: strata_model::SpanKind::SERVER,
            start_unix_nano: 1,
            end_unix_nano: 2,
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: Vec::new(),
            dropped_events_count: 0,
            links: Vec::new(),
            dropped_links_count: 0,
            status_code: StatusCode::UNSET,
            status_message: String::new(),
            resource: Arc::new(resource),
            scope: Arc::new(Scope::default()),
        }
    }

    fn resource(service: &str) -> Resource {
        Resource {
            attributes: vec![KeyValue::str("service.name", service)],
            ..Default::default()
        }
    }

    /// Each span (and its resource) is dropped before the next is made, as in the compactor's
    /// streaming merge: freed addresses come back for the next resource.
    #[test]
    fn a_resource_at_a_reused_address_is_still_summarised() {
        let mut builder = TagSummaryBuilder::default();
        let services: Vec<String> = (0..200).map(|i| format!("service-{i}")).collect();
        for service in &services {
            let span = span_of(resource(service));
            builder.add_trace(std::slice::from_ref(&span));
        }
        let summary = builder.finish();
        let got: BTreeSet<String> = summary.scopes["resource"]["service.name"]
            .values
            .iter()
            .map(|v| v.value.clone())
            .collect();
        let want: BTreeSet<String> = services.into_iter().collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_resource_seen_again_by_value_is_not_summarised_twice_but_new_ones_are() {
        let mut seen = Seen::default();
        let a = Arc::new(resource("a"));
        assert!(seen.first_sight(&a));
        assert!(!seen.first_sight(&a));
        assert!(!seen.first_sight(&Arc::new(resource("a"))));
        assert!(seen.first_sight(&Arc::new(resource("b"))));
        for i in 0..(2 * MAX_SEEN) {
            seen.first_sight(&Arc::new(resource(&format!("x{i}"))));
        }
        assert_eq!(seen.kept.len(), MAX_SEEN);
        // Forgotten values are summarised again: slower, never wrong.
        assert!(seen.first_sight(&Arc::new(resource(&format!("x{}", 2 * MAX_SEEN - 1)))));
    }

    #[test]
    fn values_are_typed_bounded_and_deduplicated() {
        let mut acc = Acc::default();
        for i in 0..(MAX_VALUES_PER_TAG as i64 + 10) {
            acc.add(&AttrValue::Int(i % (MAX_VALUES_PER_TAG as i64 + 5)));
        }
        acc.add(&AttrValue::Str("x".repeat(MAX_VALUE_BYTES + 1)));
        let values = acc.finish();
        assert_eq!(values.values.len(), MAX_VALUES_PER_TAG);
        assert!(values.truncated);
        let mut acc = Acc::default();
        acc.add(&AttrValue::Array(vec![
            AttrValue::Str("a".into()),
            AttrValue::Int(1),
            AttrValue::Str("a".into()),
            AttrValue::Bool(true),
        ]));
        acc.add(&AttrValue::Double(1.5));
        let got: Vec<(String, String)> = acc
            .finish()
            .values
            .into_iter()
            .map(|v| (v.ty, v.value))
            .collect();
        assert_eq!(
            got,
            [
                ("bool".into(), "true".into()),
                ("float".into(), "1.5".into()),
                ("int".into(), "1".into()),
                ("string".into(), "a".into()),
            ]
        );
    }
}
