//! Bounded TTLV decoder.

use crate::item::{Item, ItemType, Value};

/// Length of the tag-type-length prefix of every item.
pub const HEADER_LEN: usize = 8;

/// Limits enforced while decoding, before allocating anything the peer asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest whole message, prefix included (default 1 MiB).
    pub max_message_bytes: usize,
    /// Deepest nesting of structures; the outermost item is depth 1 (default 32).
    pub max_depth: usize,
    /// Most items in one message, structures included (default 65 536).
    pub max_items: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 1 << 20,
            max_depth: 32,
            max_items: 65_536,
        }
    }
}

/// Why bytes could not be decoded. Offsets count from the start of the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than an item header or a declared length needs.
    #[error("TTLV message truncated at offset {offset}: {needed} more bytes needed")]
    Truncated {
        /// Where the missing bytes start.
        offset: usize,
        /// How many more bytes the structure declared.
        needed: usize,
    },
    /// The message is larger than [`Limits::max_message_bytes`].
    #[error("TTLV message of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The declared total length.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// Structures nest deeper than [`Limits::max_depth`].
    #[error("TTLV structures nest deeper than the limit of {max} (at offset {offset})")]
    TooDeep {
        /// Where the too-deep item starts.
        offset: usize,
        /// The configured limit.
        max: usize,
    },
    /// More items than [`Limits::max_items`].
    #[error("TTLV message holds more than the limit of {max} items")]
    TooManyItems {
        /// The configured limit.
        max: usize,
    },
    /// An item type byte that TTLV does not define.
    #[error("unknown TTLV item type 0x{code:02X} at offset {offset}")]
    UnknownType {
        /// Where the item starts.
        offset: usize,
        /// The type byte.
        code: u8,
    },
    /// A length that the item type does not allow (e.g. an Integer that is not 4 bytes).
    #[error("TTLV {ty} at offset {offset} has invalid length {len}")]
    BadLength {
        /// Where the item starts.
        offset: usize,
        /// The type name.
        ty: &'static str,
        /// The declared length.
        len: u32,
    },
    /// A Text String that is not UTF-8.
    #[error("TTLV text string at offset {offset} is not valid UTF-8")]
    BadUtf8 {
        /// Where the item starts.
        offset: usize,
    },
    /// A Boolean whose value is neither 0 nor 1.
    #[error("TTLV boolean at offset {offset} is neither 0 nor 1")]
    BadBoolean {
        /// Where the item starts.
        offset: usize,
    },
    /// Bytes left over after the outermost item.
    #[error("{extra} unexpected bytes after the TTLV message")]
    TrailingBytes {
        /// How many bytes followed the message.
        extra: usize,
    },
}

/// The tag-type-length prefix of an item, for framing a stream before the body has arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The 24-bit tag.
    pub tag: u32,
    /// The raw type byte.
    pub type_code: u8,
    /// The declared value length (without padding).
    pub len: u32,
}

impl Header {
    /// Total bytes of the item on the wire: prefix, value and padding.
    pub fn total_len(&self) -> usize {
        let len = self.len as usize;
        HEADER_LEN + len.div_ceil(8) * 8
    }
}

/// Reads the 8-byte prefix of an item.
pub fn decode_header(bytes: &[u8; HEADER_LEN]) -> Header {
    let [t0, t1, t2, type_code, l0, l1, l2, l3] = *bytes;
    Header {
        tag: u32::from_be_bytes([0, t0, t1, t2]),
        type_code,
        len: u32::from_be_bytes([l0, l1, l2, l3]),
    }
}

/// Decodes one complete message: exactly one outermost item, nothing after it.
pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Item, DecodeError> {
    if bytes.len() > limits.max_message_bytes {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            max: limits.max_message_bytes,
        });
    }
    let mut d = Decoder {
        bytes,
        limits,
        items: 0,
    };
    let (item, end) = d.item(0, 1)?;
    if end != bytes.len() {
        return Err(DecodeError::TrailingBytes {
            extra: bytes.len() - end,
        });
    }
    Ok(item)
}

struct Decoder<'a> {
    bytes: &'a [u8],
    limits: &'a Limits,
    items: usize,
}

impl Decoder<'_> {
    fn take(&self, offset: usize, n: usize) -> Result<&[u8], DecodeError> {
        let available = self.bytes.len().saturating_sub(offset);
        offset
            .checked_add(n)
            .and_then(|end| self.bytes.get(offset..end))
            .ok_or(DecodeError::Truncated {
                offset: offset.min(self.bytes.len()),
                needed: n - available.min(n),
            })
    }

    fn fixed<const N: usize>(&self, offset: usize) -> Result<[u8; N], DecodeError> {
        let s = self.take(offset, N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// Decodes the item at `offset`; returns it and the offset just after it (padding included).
    fn item(&mut self, offset: usize, depth: usize) -> Result<(Item, usize), DecodeError> {
        self.items += 1;
        if self.items > self.limits.max_items {
            return Err(DecodeError::TooManyItems {
                max: self.limits.max_items,
            });
        }
        let header = decode_header(&self.fixed::<HEADER_LEN>(offset)?);
        let ty = ItemType::from_code(header.type_code).ok_or(DecodeError::UnknownType {
            offset,
            code: header.type_code,
        })?;
        let len = header.len as usize;
        let body = offset + HEADER_LEN;
        // The whole padded value must be present before anything is allocated for it.
        let padded = len.div_ceil(8) * 8;
        self.take(body, padded)?;
        let bad_len = || DecodeError::BadLength {
            offset,
            ty: ty.name(),
            len: header.len,
        };
        let fixed_len = |want: usize| if len == want { Ok(()) } else { Err(bad_len()) };
        let value = match ty {
            ItemType::Structure => {
                if depth >= self.limits.max_depth {
                    return Err(DecodeError::TooDeep {
                        offset,
                        max: self.limits.max_depth,
                    });
                }
                if !len.is_multiple_of(8) {
                    return Err(bad_len());
                }
                let end = body + len;
                let mut children = Vec::new();
                let mut at = body;
                while at < end {
                    let (child, next) = self.item(at, depth + 1)?;
                    if next > end {
                        return Err(bad_len());
                    }
                    children.push(child);
                    at = next;
                }
                Value::Structure(children)
            }
            ItemType::Integer => {
                fixed_len(4)?;
                Value::Integer(i32::from_be_bytes(self.fixed(body)?))
            }
            ItemType::Enumeration => {
                fixed_len(4)?;
                Value::Enumeration(u32::from_be_bytes(self.fixed(body)?))
            }
            ItemType::Interval => {
                fixed_len(4)?;
                Value::Interval(u32::from_be_bytes(self.fixed(body)?))
            }
            ItemType::LongInteger => {
                fixed_len(8)?;
                Value::LongInteger(i64::from_be_bytes(self.fixed(body)?))
            }
            ItemType::DateTime => {
                fixed_len(8)?;
                Value::DateTime(i64::from_be_bytes(self.fixed(body)?))
            }
            ItemType::DateTimeExtended => {
                fixed_len(8)?;
                Value::DateTimeExtended(i64::from_be_bytes(self.fixed(body)?))
            }
            ItemType::Boolean => {
                fixed_len(8)?;
                match u64::from_be_bytes(self.fixed(body)?) {
                    0 => Value::Boolean(false),
                    1 => Value::Boolean(true),
                    _ => return Err(DecodeError::BadBoolean { offset }),
                }
            }
            ItemType::BigInteger => {
                if len == 0 || !len.is_multiple_of(8) {
                    return Err(bad_len());
                }
                Value::BigInteger(self.take(body, len)?.to_vec())
            }
            ItemType::TextString => {
                let raw = self.take(body, len)?;
                let s = std::str::from_utf8(raw).map_err(|_| DecodeError::BadUtf8 { offset })?;
                Value::TextString(s.to_owned())
            }
            ItemType::ByteString => Value::ByteString(self.take(body, len)?.to_vec()),
        };
        Ok((
            Item {
                tag: header.tag,
                value,
            },
            body + padded,
        ))
    }
}
