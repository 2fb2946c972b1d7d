//! Typed readers and builders for the request and response payloads this project serves and sends.

use crate::attributes::{self, Attribute};
use crate::enums::{algorithm, key_format_type, object_type};
use crate::error::KmipError;
use crate::tags as t;
use crate::ProtocolVersion;
use openkcm_ttlv::{Item, Value};

fn text(tag: u32, v: &str) -> Item {
    Item::new(tag, Value::TextString(v.to_owned()))
}

fn bytes(tag: u32, v: &[u8]) -> Item {
    Item::new(tag, Value::ByteString(v.to_vec()))
}

fn opt_bytes(payload: &Item, tag: u32, what: &str) -> Result<Option<Vec<u8>>, KmipError> {
    match payload.child(tag) {
        None => Ok(None),
        Some(i) => i
            .as_bytes()
            .map(|b| Some(b.to_vec()))
            .ok_or_else(|| KmipError::invalid_field(format!("{what} must be a Byte String"))),
    }
}

fn opt_enum(item: &Item, tag: u32, what: &str) -> Result<Option<u32>, KmipError> {
    match item.child(tag) {
        None => Ok(None),
        Some(i) => i
            .as_enum()
            .map(Some)
            .ok_or_else(|| KmipError::invalid_field(format!("{what} must be an Enumeration"))),
    }
}

/// The Cryptographic Parameters fields this server uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CryptoParams {
    /// Block Cipher Mode.
    pub mode: Option<u32>,
    /// Padding Method.
    pub padding: Option<u32>,
    /// Cryptographic Algorithm.
    pub algorithm: Option<u32>,
    /// Random IV: the server generates the IV.
    pub random_iv: Option<bool>,
    /// Tag Length in bytes (GCM).
    pub tag_length: Option<i32>,
    /// IV Length in bits, for an IV the server generates.
    pub iv_length: Option<i32>,
}

impl CryptoParams {
    /// Reads the Cryptographic Parameters of a payload (all fields optional).
    pub fn parse(payload: &Item) -> Result<Option<Self>, KmipError> {
        let Some(p) = payload.child(t::CRYPTOGRAPHIC_PARAMETERS) else {
            return Ok(None);
        };
        Ok(Some(Self {
            mode: opt_enum(p, t::BLOCK_CIPHER_MODE, "Block Cipher Mode")?,
            padding: opt_enum(p, t::PADDING_METHOD, "Padding Method")?,
            algorithm: opt_enum(p, t::CRYPTOGRAPHIC_ALGORITHM, "Cryptographic Algorithm")?,
            random_iv: p.child(t::RANDOM_IV).and_then(Item::as_bool),
            tag_length: p.child(t::TAG_LENGTH).and_then(Item::as_i32),
            iv_length: p.child(t::IV_LENGTH).and_then(Item::as_i32),
        }))
    }

    /// Encodes a Cryptographic Parameters structure.
    pub fn to_item(&self) -> Item {
        let mut c = Vec::new();
        if let Some(m) = self.mode {
            c.push(Item::new(t::BLOCK_CIPHER_MODE, Value::Enumeration(m)));
        }
        if let Some(p) = self.padding {
            c.push(Item::new(t::PADDING_METHOD, Value::Enumeration(p)));
        }
        if let Some(a) = self.algorithm {
            c.push(Item::new(t::CRYPTOGRAPHIC_ALGORITHM, Value::Enumeration(a)));
        }
        if let Some(r) = self.random_iv {
            c.push(Item::new(t::RANDOM_IV, Value::Boolean(r)));
        }
        if let Some(l) = self.iv_length {
            c.push(Item::new(t::IV_LENGTH, Value::Integer(l)));
        }
        if let Some(l) = self.tag_length {
            c.push(Item::new(t::TAG_LENGTH, Value::Integer(l)));
        }
        Item::structure(t::CRYPTOGRAPHIC_PARAMETERS, c)
    }
}

/// An Encrypt or Decrypt request payload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CipherRequest {
    /// The key's Unique Identifier (None: use the ID Placeholder).
    pub uid: Option<String>,
    /// Cryptographic Parameters.
    pub params: Option<CryptoParams>,
    /// Data to encrypt or decrypt.
    pub data: Vec<u8>,
    /// IV/Counter/Nonce.
    pub iv: Option<Vec<u8>>,
    /// Authenticated Encryption Additional Data (1.4+).
    pub aad: Option<Vec<u8>>,
    /// Authenticated Encryption Tag (Decrypt, 1.4+).
    pub tag: Option<Vec<u8>>,
}

impl CipherRequest {
    /// Reads an Encrypt/Decrypt request payload.
    pub fn parse(payload: &Item) -> Result<Self, KmipError> {
        Ok(Self {
            uid: match payload.child(t::UNIQUE_IDENTIFIER) {
                None => None,
                Some(u) => Some(
                    u.as_text()
                        .ok_or_else(|| {
                            KmipError::invalid_field("Unique Identifier must be a Text String")
                        })?
                        .to_owned(),
                ),
            },
            params: CryptoParams::parse(payload)?,
            // A streamed request (Init/Final Indicator, Correlation Value) may carry no Data.
            data: match opt_bytes(payload, t::DATA, "Data")? {
                Some(d) => d,
                None if [t::INIT_INDICATOR, t::FINAL_INDICATOR, t::CORRELATION_VALUE]
                    .iter()
                    .any(|tag| payload.child(*tag).is_some()) =>
                {
                    Vec::new()
                }
                None => return Err(KmipError::missing("Data")),
            },
            iv: opt_bytes(payload, t::IV_COUNTER_NONCE, "IV/Counter/Nonce")?,
            aad: opt_bytes(
                payload,
                t::AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA,
                "Authenticated Encryption Additional Data",
            )?,
            tag: opt_bytes(
                payload,
                t::AUTHENTICATED_ENCRYPTION_TAG,
                "Authenticated Encryption Tag",
            )?,
        })
    }

    /// Encodes a copy of the request payload.
    pub fn to_item(&self) -> Item {
        self.clone().into_item()
    }

    /// Encodes the request payload, moving the data (which may be key material) into the tree.
    pub fn into_item(self) -> Item {
        let mut c = Vec::new();
        if let Some(u) = self.uid {
            c.push(Item::new(t::UNIQUE_IDENTIFIER, Value::TextString(u)));
        }
        if let Some(p) = &self.params {
            c.push(p.to_item());
        }
        c.push(Item::new(t::DATA, Value::ByteString(self.data)));
        let optional = [
            (t::IV_COUNTER_NONCE, self.iv),
            (t::AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA, self.aad),
            (t::AUTHENTICATED_ENCRYPTION_TAG, self.tag),
        ];
        c.extend(
            optional
                .into_iter()
                .filter_map(|(tag, v)| v.map(|v| Item::new(tag, Value::ByteString(v)))),
        );
        Item::structure(t::REQUEST_PAYLOAD, c)
    }
}

/// An Encrypt or Decrypt response payload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CipherResponse {
    /// The key used.
    pub uid: String,
    /// Result data.
    pub data: Vec<u8>,
    /// The IV the server generated (Encrypt without a client IV).
    pub iv: Option<Vec<u8>>,
    /// The GCM tag (Encrypt, 1.4+).
    pub tag: Option<Vec<u8>>,
}

impl CipherResponse {
    /// Encodes the response payload, moving the data (which may be plaintext) into the tree.
    pub fn into_item(self) -> Item {
        let mut c = vec![
            Item::new(t::UNIQUE_IDENTIFIER, Value::TextString(self.uid)),
            Item::new(t::DATA, Value::ByteString(self.data)),
        ];
        let optional = [
            (t::IV_COUNTER_NONCE, self.iv),
            (t::AUTHENTICATED_ENCRYPTION_TAG, self.tag),
        ];
        c.extend(
            optional
                .into_iter()
                .filter_map(|(tag, v)| v.map(|v| Item::new(tag, Value::ByteString(v)))),
        );
        Item::structure(t::RESPONSE_PAYLOAD, c)
    }

    /// Reads a response payload.
    pub fn parse(payload: &Item) -> Result<Self, KmipError> {
        Ok(Self {
            uid: payload
                .child(t::UNIQUE_IDENTIFIER)
                .and_then(Item::as_text)
                .unwrap_or_default()
                .to_owned(),
            data: opt_bytes(payload, t::DATA, "Data")?.unwrap_or_default(),
            iv: opt_bytes(payload, t::IV_COUNTER_NONCE, "IV/Counter/Nonce")?,
            tag: opt_bytes(
                payload,
                t::AUTHENTICATED_ENCRYPTION_TAG,
                "Authenticated Encryption Tag",
            )?,
        })
    }
}

/// A payload holding only a Unique Identifier (Get, Activate, Destroy requests and many responses).
pub fn uid_payload(tag: u32, uid: &str) -> Item {
    Item::structure(tag, vec![text(t::UNIQUE_IDENTIFIER, uid)])
}

/// The Create request payload for a symmetric key with `attrs`, encoded for `version`.
pub fn create_request(version: ProtocolVersion, attrs: &[Attribute]) -> Item {
    let mut c = vec![Item::new(
        t::OBJECT_TYPE,
        Value::Enumeration(object_type::SYMMETRIC_KEY),
    )];
    if version.is_v2() {
        c.extend(attributes::to_payload_items(attrs, version));
    } else {
        c.push(Item::structure(
            t::TEMPLATE_ATTRIBUTE,
            attrs.iter().map(Attribute::to_v1).collect(),
        ));
    }
    Item::structure(t::REQUEST_PAYLOAD, c)
}

/// The Get response payload for a raw AES key.
pub fn symmetric_key_response(uid: &str, key: &[u8], format: u32) -> Result<Item, KmipError> {
    let material = match format {
        key_format_type::RAW => bytes(t::KEY_MATERIAL, key),
        key_format_type::TRANSPARENT_SYMMETRIC_KEY => Item::structure(t::KEY_MATERIAL, vec![bytes(t::KEY, key)]),
        other => {
            return Err(KmipError::new(
                crate::enums::result_reason::KEY_FORMAT_TYPE_NOT_SUPPORTED,
                format!("key format type 0x{other:X} is not supported for symmetric keys; use Raw or Transparent Symmetric Key"),
            ))
        }
    };
    let block = Item::structure(
        t::KEY_BLOCK,
        vec![
            Item::new(t::KEY_FORMAT_TYPE, Value::Enumeration(format)),
            Item::structure(t::KEY_VALUE, vec![material]),
            Item::new(
                t::CRYPTOGRAPHIC_ALGORITHM,
                Value::Enumeration(algorithm::AES),
            ),
            Item::new(
                t::CRYPTOGRAPHIC_LENGTH,
                Value::Integer((key.len() * 8) as i32),
            ),
        ],
    );
    Ok(Item::structure(
        t::RESPONSE_PAYLOAD,
        vec![
            Item::new(
                t::OBJECT_TYPE,
                Value::Enumeration(object_type::SYMMETRIC_KEY),
            ),
            text(t::UNIQUE_IDENTIFIER, uid),
            Item::structure(t::SYMMETRIC_KEY, vec![block]),
        ],
    ))
}

/// The bytes of a Get response payload: a symmetric key (Raw or Transparent Symmetric Key format), Secret Data, or
/// an Opaque Object's value.
pub fn object_bytes(payload: &Item) -> Option<Vec<u8>> {
    if let Some(v) = key_material(payload) {
        return Some(v);
    }
    if let Some(m) = payload
        .child(t::SECRET_DATA)
        .and_then(|o| o.child(t::KEY_BLOCK))
        .and_then(|b| b.child(t::KEY_VALUE))
        .and_then(|v| v.child(t::KEY_MATERIAL))
        .and_then(Item::as_bytes)
    {
        return Some(m.to_vec());
    }
    payload
        .child(t::OPAQUE_OBJECT)
        .and_then(|o| o.child(t::OPAQUE_DATA_VALUE))
        .and_then(Item::as_bytes)
        .map(<[u8]>::to_vec)
}

/// The key bytes of a Get response payload (Raw or Transparent Symmetric Key format).
pub fn key_material(payload: &Item) -> Option<Vec<u8>> {
    let material = payload
        .child(t::SYMMETRIC_KEY)?
        .child(t::KEY_BLOCK)?
        .child(t::KEY_VALUE)?
        .child(t::KEY_MATERIAL)?;
    material
        .as_bytes()
        .or_else(|| material.child(t::KEY).and_then(Item::as_bytes))
        .map(<[u8]>::to_vec)
}

/// The Key Format Type a Get request asks for (Raw when absent); a Key Wrapping Specification is refused (for
/// servers that do not wrap).
pub fn requested_key_format(payload: &Item) -> Result<u32, KmipError> {
    if payload.child(t::KEY_WRAPPING_SPECIFICATION).is_some() {
        return Err(KmipError::new(
            crate::enums::result_reason::FEATURE_NOT_SUPPORTED,
            "Get with a Key Wrapping Specification is not supported by this server",
        ));
    }
    Ok(requested_key_format_opt(payload)?.unwrap_or(key_format_type::RAW))
}

/// The Key Format Type a Get asks for, if any.
pub fn requested_key_format_opt(payload: &Item) -> Result<Option<u32>, KmipError> {
    if payload.child(t::KEY_COMPRESSION_TYPE).is_some() {
        return Err(KmipError::new(
            crate::enums::result_reason::FEATURE_NOT_SUPPORTED,
            "key compression does not apply to symmetric keys",
        ));
    }
    opt_enum(payload, t::KEY_FORMAT_TYPE, "Key Format Type")
}

/// The revocation request: reason code, optional message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokeRequest {
    /// Revocation Reason Code.
    pub code: u32,
    /// Revocation Message.
    pub message: Option<String>,
    /// Compromise Occurrence Date (seconds since the epoch).
    pub compromise_occurrence: Option<i64>,
}

impl RevokeRequest {
    /// Reads a Revoke request payload.
    pub fn parse(payload: &Item) -> Result<Self, KmipError> {
        let reason = payload
            .child(t::REVOCATION_REASON)
            .ok_or_else(|| KmipError::missing("Revocation Reason"))?;
        let code = opt_enum(reason, t::REVOCATION_REASON_CODE, "Revocation Reason Code")?
            .ok_or_else(|| KmipError::missing("Revocation Reason Code"))?;
        Ok(Self {
            code,
            message: reason
                .child(t::REVOCATION_MESSAGE)
                .and_then(Item::as_text)
                .map(str::to_owned),
            compromise_occurrence: payload
                .child(t::COMPROMISE_OCCURRENCE_DATE)
                .and_then(Item::as_datetime),
        })
    }

    /// Encodes a Revoke request payload for `uid`.
    pub fn to_item(&self, uid: &str) -> Item {
        let mut reason = vec![Item::new(
            t::REVOCATION_REASON_CODE,
            Value::Enumeration(self.code),
        )];
        if let Some(m) = &self.message {
            reason.push(text(t::REVOCATION_MESSAGE, m));
        }
        let mut c = vec![
            text(t::UNIQUE_IDENTIFIER, uid),
            Item::structure(t::REVOCATION_REASON, reason),
        ];
        if let Some(d) = self.compromise_occurrence {
            c.push(Item::new(t::COMPROMISE_OCCURRENCE_DATE, Value::DateTime(d)));
        }
        Item::structure(t::REQUEST_PAYLOAD, c)
    }
}

/// A Locate request: the attributes to match and paging.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocateRequest {
    /// Maximum Items.
    pub max_items: Option<i32>,
    /// Offset Items (1.3+).
    pub offset_items: Option<i32>,
    /// Attributes every result must match.
    pub attributes: Vec<Attribute>,
}

impl LocateRequest {
    /// Reads a Locate request payload.
    pub fn parse(payload: &Item) -> Result<Self, KmipError> {
        let non_negative = |tag: u32, what: &str| -> Result<Option<i32>, KmipError> {
            match payload.child(tag) {
                None => Ok(None),
                Some(i) => match i.as_i32() {
                    Some(v) if v >= 0 => Ok(Some(v)),
                    _ => Err(KmipError::invalid_field(format!(
                        "{what} must be a non-negative Integer"
                    ))),
                },
            }
        };
        Ok(Self {
            max_items: non_negative(t::MAXIMUM_ITEMS, "Maximum Items")?,
            offset_items: non_negative(t::OFFSET_ITEMS, "Offset Items")?,
            attributes: attributes::from_payload(payload)?,
        })
    }

    /// Encodes a Locate request payload for `version`.
    pub fn to_item(&self, version: ProtocolVersion) -> Item {
        let mut c = Vec::new();
        if let Some(m) = self.max_items {
            c.push(Item::new(t::MAXIMUM_ITEMS, Value::Integer(m)));
        }
        c.extend(attributes::to_payload_items(&self.attributes, version));
        Item::structure(t::REQUEST_PAYLOAD, c)
    }
}

/// A Locate response payload.
///
/// Located Items (1.3+) is included when the client paged the result (Maximum Items or Offset Items); KMIP lets a
/// server omit it otherwise, and the OASIS cases expect it omitted.
pub fn locate_response(version: ProtocolVersion, total: Option<usize>, uids: &[String]) -> Item {
    let mut c = Vec::new();
    if let (true, Some(total)) = (version.has_located_items(), total) {
        c.push(Item::new(
            t::LOCATED_ITEMS,
            Value::Integer(i32::try_from(total).unwrap_or(i32::MAX)),
        ));
    }
    c.extend(uids.iter().map(|u| text(t::UNIQUE_IDENTIFIER, u)));
    Item::structure(t::RESPONSE_PAYLOAD, c)
}

/// Every Unique Identifier in a payload.
pub fn uids(payload: &Item) -> Vec<String> {
    payload
        .children_with(t::UNIQUE_IDENTIFIER)
        .filter_map(Item::as_text)
        .map(str::to_owned)
        .collect()
}

/// The Discover Versions response: the versions both sides speak, in this server's order of preference (all of
/// this server's versions when the client lists none).
pub fn discover_versions_response(payload: &Item) -> Result<Item, KmipError> {
    let mut offered = Vec::new();
    for v in payload.children_with(t::PROTOCOL_VERSION) {
        offered.push(ProtocolVersion::from_item(v)?);
    }
    let chosen: Vec<Item> = crate::SUPPORTED_VERSIONS
        .iter()
        .filter(|v| offered.is_empty() || offered.contains(v))
        .map(|v| v.to_item())
        .collect();
    Ok(Item::structure(t::RESPONSE_PAYLOAD, chosen))
}

/// The Query response for the functions the client asked about, in `version`. Server Information carries 2.0's
/// Server Name and Server Version; 1.x defines no field for its vendor-specific content, so a 1.x client gets the
/// Vendor Identification alone.
pub fn query_response(
    version: crate::ProtocolVersion,
    payload: &Item,
    operations: &[u32],
    objects: &[u32],
) -> Result<Item, KmipError> {
    use crate::enums::query_function as q;
    let mut c = Vec::new();
    for f in payload.children_with(t::QUERY_FUNCTION) {
        match f
            .as_enum()
            .ok_or_else(|| KmipError::invalid_field("Query Function must be an Enumeration"))?
        {
            q::QUERY_OPERATIONS => c.extend(
                operations
                    .iter()
                    .map(|o| Item::new(t::OPERATION, Value::Enumeration(*o))),
            ),
            q::QUERY_OBJECTS => c.extend(
                objects
                    .iter()
                    .map(|o| Item::new(t::OBJECT_TYPE, Value::Enumeration(*o))),
            ),
            q::QUERY_SERVER_INFORMATION => {
                c.push(text(t::VENDOR_IDENTIFICATION, "OpenKCM"));
                if version.is_v2() {
                    c.push(Item::structure(
                        t::SERVER_INFORMATION,
                        vec![
                            text(t::SERVER_NAME, "openkcm"),
                            text(t::SERVER_VERSION, env!("CARGO_PKG_VERSION")),
                        ],
                    ));
                }
            }
            // Other defined query functions are answered with nothing, as KMIP allows for information a server lacks.
            4..=14 => {}
            other => {
                return Err(KmipError::invalid_field(format!(
                    "Query Function {other} is not defined"
                )))
            }
        }
    }
    Ok(Item::structure(t::RESPONSE_PAYLOAD, c))
}
