//! The TTLV item tree.

/// The item type byte of a TTLV item (KMIP 1.x defines 0x01–0x0A; KMIP 2.0 adds 0x0B).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ItemType {
    /// 0x01: a container of items.
    Structure = 0x01,
    /// 0x02: 32-bit signed integer.
    Integer = 0x02,
    /// 0x03: 64-bit signed integer.
    LongInteger = 0x03,
    /// 0x04: two's complement big-endian integer, length a multiple of 8.
    BigInteger = 0x04,
    /// 0x05: 32-bit unsigned enumeration value.
    Enumeration = 0x05,
    /// 0x06: 64-bit boolean (0 or 1).
    Boolean = 0x06,
    /// 0x07: UTF-8 text.
    TextString = 0x07,
    /// 0x08: opaque bytes.
    ByteString = 0x08,
    /// 0x09: seconds since the Unix epoch, 64-bit signed.
    DateTime = 0x09,
    /// 0x0A: 32-bit unsigned number of seconds.
    Interval = 0x0A,
    /// 0x0B (KMIP 2.0): microseconds since the Unix epoch, 64-bit signed.
    DateTimeExtended = 0x0B,
}

impl ItemType {
    /// Maps the wire byte to a type, or `None` for an unknown code.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0x01 => Self::Structure,
            0x02 => Self::Integer,
            0x03 => Self::LongInteger,
            0x04 => Self::BigInteger,
            0x05 => Self::Enumeration,
            0x06 => Self::Boolean,
            0x07 => Self::TextString,
            0x08 => Self::ByteString,
            0x09 => Self::DateTime,
            0x0A => Self::Interval,
            0x0B => Self::DateTimeExtended,
            _ => return None,
        })
    }

    /// The KMIP name of the type, as used by the XML and JSON encodings.
    pub fn name(self) -> &'static str {
        match self {
            Self::Structure => "Structure",
            Self::Integer => "Integer",
            Self::LongInteger => "LongInteger",
            Self::BigInteger => "BigInteger",
            Self::Enumeration => "Enumeration",
            Self::Boolean => "Boolean",
            Self::TextString => "TextString",
            Self::ByteString => "ByteString",
            Self::DateTime => "DateTime",
            Self::Interval => "Interval",
            Self::DateTimeExtended => "DateTimeExtended",
        }
    }
}

/// The value of an item. Byte strings may carry key material: callers that put secrets here are responsible
/// for zeroizing the tree (see [`Item::zeroize_bytes`]).
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    /// Child items, in order.
    Structure(Vec<Item>),
    /// 32-bit signed integer.
    Integer(i32),
    /// 64-bit signed integer.
    LongInteger(i64),
    /// Big-endian two's complement bytes (the encoder sign-extends to a multiple of 8).
    BigInteger(Vec<u8>),
    /// Enumeration value.
    Enumeration(u32),
    /// Boolean.
    Boolean(bool),
    /// UTF-8 text.
    TextString(String),
    /// Opaque bytes.
    ByteString(Vec<u8>),
    /// Seconds since the epoch.
    DateTime(i64),
    /// Seconds.
    Interval(u32),
    /// Microseconds since the epoch (KMIP 2.0).
    DateTimeExtended(i64),
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Structure(items) => f.debug_list().entries(items).finish(),
            Self::Integer(v) => write!(f, "Integer({v})"),
            Self::LongInteger(v) => write!(f, "LongInteger({v})"),
            Self::BigInteger(v) => write!(f, "BigInteger({} bytes)", v.len()),
            Self::Enumeration(v) => write!(f, "Enumeration({v:#x})"),
            Self::Boolean(v) => write!(f, "Boolean({v})"),
            Self::TextString(v) => write!(f, "TextString({v:?})"),
            // Byte strings may be key material: never print their contents.
            Self::ByteString(v) => write!(f, "ByteString({} bytes)", v.len()),
            Self::DateTime(v) => write!(f, "DateTime({v})"),
            Self::Interval(v) => write!(f, "Interval({v})"),
            Self::DateTimeExtended(v) => write!(f, "DateTimeExtended({v})"),
        }
    }
}

impl Value {
    /// The wire type of this value.
    pub fn item_type(&self) -> ItemType {
        match self {
            Self::Structure(_) => ItemType::Structure,
            Self::Integer(_) => ItemType::Integer,
            Self::LongInteger(_) => ItemType::LongInteger,
            Self::BigInteger(_) => ItemType::BigInteger,
            Self::Enumeration(_) => ItemType::Enumeration,
            Self::Boolean(_) => ItemType::Boolean,
            Self::TextString(_) => ItemType::TextString,
            Self::ByteString(_) => ItemType::ByteString,
            Self::DateTime(_) => ItemType::DateTime,
            Self::Interval(_) => ItemType::Interval,
            Self::DateTimeExtended(_) => ItemType::DateTimeExtended,
        }
    }
}

/// One TTLV item: a 24-bit tag (stored in a `u32`, normally `0x42xxxx` or `0x54xxxx`) and a value.
#[derive(Clone, PartialEq, Eq)]
pub struct Item {
    /// The tag, e.g. `0x420078` (Request Message).
    pub tag: u32,
    /// The value.
    pub value: Value,
}

impl std::fmt::Debug for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:06X}:{:?}", self.tag, self.value)
    }
}

impl Item {
    /// A new item.
    pub fn new(tag: u32, value: Value) -> Self {
        Self { tag, value }
    }

    /// A structure item holding `children`.
    pub fn structure(tag: u32, children: Vec<Item>) -> Self {
        Self::new(tag, Value::Structure(children))
    }

    /// The children of a structure, or an empty slice for any other type.
    pub fn children(&self) -> &[Item] {
        match &self.value {
            Value::Structure(items) => items,
            _ => &[],
        }
    }

    /// The first child with `tag`.
    pub fn child(&self, tag: u32) -> Option<&Item> {
        self.children().iter().find(|i| i.tag == tag)
    }

    /// Every child with `tag`, in order.
    pub fn children_with(&self, tag: u32) -> impl Iterator<Item = &Item> {
        self.children().iter().filter(move |i| i.tag == tag)
    }

    /// The integer value, if this is an Integer.
    pub fn as_i32(&self) -> Option<i32> {
        match self.value {
            Value::Integer(v) => Some(v),
            _ => None,
        }
    }

    /// The long integer value, if this is a Long Integer.
    pub fn as_i64(&self) -> Option<i64> {
        match self.value {
            Value::LongInteger(v) => Some(v),
            _ => None,
        }
    }

    /// The enumeration value, if this is an Enumeration.
    pub fn as_enum(&self) -> Option<u32> {
        match self.value {
            Value::Enumeration(v) => Some(v),
            _ => None,
        }
    }

    /// The boolean value, if this is a Boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self.value {
            Value::Boolean(v) => Some(v),
            _ => None,
        }
    }

    /// The text, if this is a Text String.
    pub fn as_text(&self) -> Option<&str> {
        match &self.value {
            Value::TextString(v) => Some(v),
            _ => None,
        }
    }

    /// The bytes, if this is a Byte String.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match &self.value {
            Value::ByteString(v) => Some(v),
            _ => None,
        }
    }

    /// Seconds since the epoch, if this is a Date-Time (or a Date-Time Extended, truncated to seconds).
    pub fn as_datetime(&self) -> Option<i64> {
        match self.value {
            Value::DateTime(v) => Some(v),
            Value::DateTimeExtended(v) => Some(v.div_euclid(1_000_000)),
            _ => None,
        }
    }

    /// Overwrites every byte string in the tree with zeros (for trees that carried key material).
    pub fn zeroize_bytes(&mut self) {
        match &mut self.value {
            Value::ByteString(b) | Value::BigInteger(b) => zeroize::Zeroize::zeroize(b),
            Value::Structure(items) => items.iter_mut().for_each(Item::zeroize_bytes),
            _ => {}
        }
    }
}
