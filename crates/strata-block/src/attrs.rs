//! Building and reading the generic attribute lists (`resource_attrs`, `scope_attrs`,
//! `span_attrs`, and the attributes of events and links).

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BinaryArray, BinaryBuilder, BooleanArray, BooleanBuilder, Float64Array,
    Float64Builder, Int64Array, Int64Builder, ListArray, StringArray, StringBuilder, StructArray,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Fields};
use strata_model::{AttrValue, KeyValue};

use crate::error::{Error, Result};
use crate::read::{Cols, child};
use crate::schema::attr_fields;

/// Accumulates lists of attributes, one list per row, into a `List<Struct<attr>>` array.
#[derive(Default)]
pub(crate) struct AttrListBuilder {
    offsets: Vec<i32>,
    key: StringBuilder,
    str: StringBuilder,
    int: Int64Builder,
    double: Float64Builder,
    bool: BooleanBuilder,
    bytes: BinaryBuilder,
    json: StringBuilder,
    len: usize,
}

impl AttrListBuilder {
    /// Appends one attribute to the list being built for the current row.
    pub(crate) fn append(&mut self, kv: &KeyValue) {
        self.key.append_value(&kv.key);
        let (mut s, mut i, mut d, mut b, mut by, mut j) = (None, None, None, None, None, None);
        match &kv.value {
            AttrValue::Empty => {}
            AttrValue::Str(v) => s = Some(v.as_str()),
            AttrValue::Int(v) => i = Some(*v),
            AttrValue::Double(v) => d = Some(*v),
            AttrValue::Bool(v) => b = Some(*v),
            AttrValue::Bytes(v) => by = Some(v.as_slice()),
            complex @ (AttrValue::Array(_) | AttrValue::KvList(_)) => {
                j = Some(complex.to_otlp_json());
            }
        }
        self.str.append_option(s);
        self.int.append_option(i);
        self.double.append_option(d);
        self.bool.append_option(b);
        self.bytes.append_option(by);
        self.json.append_option(j);
        self.len += 1;
    }

    /// Ends the current row's list.
    pub(crate) fn end_row(&mut self) -> Result<()> {
        next_offset(&mut self.offsets, self.len)
    }

    /// Appends a whole list as one row.
    pub(crate) fn append_row<'a>(
        &mut self,
        attrs: impl IntoIterator<Item = &'a KeyValue>,
    ) -> Result<()> {
        for kv in attrs {
            self.append(kv);
        }
        self.end_row()
    }

    pub(crate) fn finish(&mut self) -> Result<ArrayRef> {
        let arrays: Vec<ArrayRef> = vec![
            Arc::new(self.key.finish()),
            Arc::new(self.str.finish()),
            Arc::new(self.int.finish()),
            Arc::new(self.double.finish()),
            Arc::new(self.bool.finish()),
            Arc::new(self.bytes.finish()),
            Arc::new(self.json.finish()),
        ];
        self.len = 0;
        list_array(attr_fields(), arrays, &mut self.offsets)
    }
}

/// Assembles a non-null `List<Struct<fields>>` from child arrays and row offsets, leaving
/// `offsets` empty for the next row group.
pub(crate) fn list_array(
    fields: Fields,
    arrays: Vec<ArrayRef>,
    offsets: &mut Vec<i32>,
) -> Result<ArrayRef> {
    let mut offsets = std::mem::take(offsets);
    if offsets.is_empty() {
        offsets.push(0);
    }
    let values = StructArray::try_new(fields.clone(), arrays, None).map_err(arrow_err)?;
    let list = ListArray::try_new(
        Arc::new(Field::new("element", DataType::Struct(fields), false)),
        OffsetBuffer::new(offsets.into()),
        Arc::new(values),
        None,
    )
    .map_err(arrow_err)?;
    Ok(Arc::new(list))
}

/// Closes a row of a list column whose children now hold `len` items in all.
pub(crate) fn next_offset(offsets: &mut Vec<i32>, len: usize) -> Result<()> {
    if offsets.is_empty() {
        offsets.push(0);
    }
    let end = i32::try_from(len)
        .map_err(|_| Error::Writer("more than 2^31 list items in one row group".into()))?;
    offsets.push(end);
    Ok(())
}

pub(crate) fn arrow_err(source: arrow::error::ArrowError) -> Error {
    Error::Arrow {
        block: "new".into(),
        source,
    }
}

/// Reads attribute lists back, row by row.
pub(crate) struct AttrListReader<'a> {
    list: &'a ListArray,
    key: &'a StringArray,
    str: &'a StringArray,
    int: &'a Int64Array,
    double: &'a Float64Array,
    bool: &'a BooleanArray,
    bytes: &'a BinaryArray,
    json: &'a StringArray,
    block: &'a str,
}

impl<'a> AttrListReader<'a> {
    pub(crate) fn new(list: &'a ListArray, block: &'a str) -> Result<Self> {
        let values = list
            .values()
            .as_any()
            .downcast_ref::<StructArray>()
            .ok_or_else(|| crate::error::corrupt(block, "attribute list is not a struct list"))?;
        let cols = Cols::new(values.columns(), values.column_names(), block);
        Ok(Self {
            list,
            key: cols.get("key")?,
            str: cols.get("str")?,
            int: cols.get("int")?,
            double: cols.get("double")?,
            bool: cols.get("bool")?,
            bytes: cols.get("bytes")?,
            json: cols.get("json")?,
            block,
        })
    }

    /// The attributes of row `row`.
    pub(crate) fn row(&self, row: usize) -> Result<Vec<KeyValue>> {
        let offsets = self.list.value_offsets();
        let (start, end) = child(offsets, row, self.block)?;
        if end > self.key.len() {
            return Err(crate::error::corrupt(self.block, "attribute offsets"));
        }
        (start..end).map(|i| self.attr(i)).collect()
    }

    fn attr(&self, i: usize) -> Result<KeyValue> {
        let value = if self.str.is_valid(i) {
            AttrValue::Str(self.str.value(i).to_owned())
        } else if self.int.is_valid(i) {
            AttrValue::Int(self.int.value(i))
        } else if self.double.is_valid(i) {
            AttrValue::Double(self.double.value(i))
        } else if self.bool.is_valid(i) {
            AttrValue::Bool(self.bool.value(i))
        } else if self.bytes.is_valid(i) {
            AttrValue::Bytes(self.bytes.value(i).to_vec())
        } else if self.json.is_valid(i) {
            AttrValue::from_otlp_json(self.json.value(i))
                .map_err(|e| crate::error::corrupt(self.block, format!("attribute JSON: {e}")))?
        } else {
            AttrValue::Empty
        };
        Ok(KeyValue {
            key: self.key.value(i).into(),
            value,
        })
    }
}
