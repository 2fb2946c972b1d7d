//! TTLV encoder.

use crate::item::{Item, Value};

fn padded(len: usize) -> usize {
    len.div_ceil(8) * 8
}

fn big_integer_len(b: &[u8]) -> usize {
    padded(b.len().max(1))
}

fn value_len(value: &Value) -> usize {
    match value {
        Value::Structure(items) => items.iter().map(encoded_len).sum(),
        Value::Integer(_) | Value::Enumeration(_) | Value::Interval(_) => 4,
        Value::LongInteger(_)
        | Value::Boolean(_)
        | Value::DateTime(_)
        | Value::DateTimeExtended(_) => 8,
        Value::BigInteger(b) => big_integer_len(b),
        Value::TextString(s) => s.len(),
        Value::ByteString(b) => b.len(),
    }
}

/// The number of bytes [`encode`] produces for `item`, padding included.
pub fn encoded_len(item: &Item) -> usize {
    8 + padded(value_len(&item.value))
}

/// Encodes `item` into a new buffer.
pub fn encode(item: &Item) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_len(item));
    encode_into(item, &mut out);
    out
}

/// Appends the encoding of `item` to `out`.
///
/// Lengths are written as 32-bit values; a text or byte string longer than 4 GiB cannot be represented in TTLV
/// and is a programming error of the caller (the decoder's limits keep such values from ever being received).
pub fn encode_into(item: &Item, out: &mut Vec<u8>) {
    let len = value_len(&item.value);
    let tag = item.tag.to_be_bytes();
    out.extend_from_slice(&tag[1..4]);
    out.push(item.value.item_type() as u8);
    out.extend_from_slice(&(len as u32).to_be_bytes());
    match &item.value {
        Value::Structure(items) => items.iter().for_each(|i| encode_into(i, out)),
        Value::Integer(v) => out.extend_from_slice(&v.to_be_bytes()),
        Value::Enumeration(v) | Value::Interval(v) => out.extend_from_slice(&v.to_be_bytes()),
        Value::LongInteger(v) | Value::DateTime(v) | Value::DateTimeExtended(v) => {
            out.extend_from_slice(&v.to_be_bytes())
        }
        Value::Boolean(v) => out.extend_from_slice(&u64::from(*v).to_be_bytes()),
        Value::BigInteger(b) => {
            let fill = if b.first().is_some_and(|x| x & 0x80 != 0) {
                0xFF
            } else {
                0x00
            };
            let total = big_integer_len(b);
            out.extend(std::iter::repeat_n(fill, total - b.len()));
            out.extend_from_slice(b);
        }
        Value::TextString(s) => out.extend_from_slice(s.as_bytes()),
        Value::ByteString(b) => out.extend_from_slice(b),
    }
    let pad = padded(len) - len;
    if !matches!(item.value, Value::Structure(_) | Value::BigInteger(_)) {
        out.extend(std::iter::repeat_n(0u8, pad));
    }
}
