//! Managed objects the edge keeps as L4s: symmetric keys of every algorithm KMIP defines, Secret Data and Opaque
//! Objects. Key *management* (generate, register, store, return) covers all of them; cryptographic operations are
//! decided elsewhere ([`crate::ops`]) and limited to AES and HMAC-SHA-2 unless `legacy_crypto` is on.

use openkcm_crypto::SecretBytes;
use openkcm_kmip::enums::{key_format_type, object_type};
use openkcm_kmip::{tags as t, KmipError};
use openkcm_ttlv::{Item, Value};
use serde::{Deserialize, Serialize};

/// How a Split Key object was split (KMIP Split Key fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitInfo {
    /// Split Key Parts: how many parts the key was split into.
    pub parts: i32,
    /// Key Part Identifier of this part (1-based).
    pub part: i32,
    /// Split Key Threshold: how many parts join the key.
    pub threshold: i32,
    /// Split Key Method.
    pub method: u32,
    /// Which split the part belongs to (set by Create Split Key; registered parts have none): parts of two splits
    /// of one key have the same parameters but never join.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_id: Option<String>,
}

/// Cryptographic Algorithm values (KMIP 1.0–2.1) the edge handles by number.
#[allow(missing_docs)]
pub mod alg {
    pub const DES: u32 = 0x01;
    pub const TRIPLE_DES: u32 = 0x02;
    pub const AES: u32 = 0x03;
    pub const HMAC_SHA1: u32 = 0x07;
    pub const HMAC_SHA224: u32 = 0x08;
    pub const HMAC_SHA256: u32 = 0x09;
    pub const HMAC_SHA384: u32 = 0x0A;
    pub const HMAC_SHA512: u32 = 0x0B;
    pub const HMAC_MD5: u32 = 0x0C;
    pub const SKIPJACK: u32 = 0x18;
}

/// Symmetric algorithms (keys this edge generates and stores); everything else KMIP names is asymmetric or a hash.
const SYMMETRIC: &[u32] = &[
    0x01, 0x02, 0x03, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16,
    0x17, 0x18, 0x19, 0x1B, 0x1C, 0x1D, 0x1E, 0x23, 0x24, 0x25, 0x26, 0x29, 0x2A, 0x2D,
];

/// Whether `algorithm` is a symmetric algorithm whose keys the edge can manage.
pub fn is_symmetric(algorithm: u32) -> bool {
    SYMMETRIC.contains(&algorithm)
}

/// The key size in bytes for `algorithm` at `bits`, or why that combination is refused.
pub fn key_bytes(algorithm: u32, bits: i32) -> Result<usize, KmipError> {
    let bad = |allowed: &str| {
        Err(KmipError::invalid_field(format!(
            "Cryptographic Length {bits} is not valid for this algorithm (allowed: {allowed})"
        )))
    };
    match algorithm {
        alg::AES => match bits {
            128 | 192 | 256 => Ok(bits as usize / 8),
            _ => bad("128, 192 or 256"),
        },
        // 3DES: two-key (112 effective bits, 128 with parity) or three-key (168 effective, 192 with parity).
        alg::TRIPLE_DES => match bits {
            112 | 128 => Ok(16),
            168 | 192 => Ok(24),
            _ => bad("112, 128, 168 or 192"),
        },
        alg::DES => match bits {
            56 | 64 => Ok(8),
            _ => bad("56 or 64"),
        },
        alg::SKIPJACK => match bits {
            80 => Ok(10),
            _ => bad("80"),
        },
        a if is_symmetric(a) => {
            if (8..=4096).contains(&bits) && bits % 8 == 0 {
                Ok(bits as usize / 8)
            } else {
                bad("a multiple of 8 from 8 to 4096")
            }
        }
        _ => Err(KmipError::invalid_field(format!(
            "Cryptographic Algorithm 0x{algorithm:X} is not a symmetric algorithm; this server creates and registers \
             symmetric keys, Secret Data and Opaque Objects"
        ))),
    }
}

/// Checks that `n` bytes of key material fit `algorithm` (AES 16/24/32, Triple DES 16/24, DES 8, SKIPJACK 10; any
/// non-empty length for other symmetric algorithms).
pub fn check_material_len(algorithm: u32, n: usize) -> Result<(), KmipError> {
    let ok = match algorithm {
        alg::AES => matches!(n, 16 | 24 | 32),
        alg::TRIPLE_DES => matches!(n, 16 | 24),
        alg::DES => n == 8,
        alg::SKIPJACK => n == 10,
        _ => n > 0,
    };
    if ok {
        Ok(())
    } else {
        Err(KmipError::invalid_field(format!(
            "{n} bytes of key material do not make a key of this algorithm (AES keys are 16, 24 or 32 bytes; Triple \
             DES 16 or 24; DES 8; SKIPJACK 10)"
        )))
    }
}

/// Sets odd parity in every byte (DES and 3DES keys).
pub fn set_des_parity(key: &mut [u8]) {
    for b in key.iter_mut() {
        let ones = (*b & 0xFE).count_ones();
        *b = (*b & 0xFE) | u8::from(ones % 2 == 0);
    }
}

/// Fresh key material for `algorithm` at `bits`.
pub fn generate(algorithm: u32, bits: i32) -> Result<SecretBytes, KmipError> {
    let n = key_bytes(algorithm, bits)?;
    let mut buf = vec![0u8; n];
    openkcm_crypto::aes::fill_random(&mut buf).map_err(|e| KmipError::crypto(e.to_string()))?;
    if matches!(algorithm, alg::DES | alg::TRIPLE_DES) {
        set_des_parity(&mut buf);
    }
    Ok(SecretBytes::new(buf))
}

/// The Digest value of an object: SHA-256 over the key material in the format it is kept in (Raw bytes, or the
/// TTLV encoding of the Transparent Symmetric Key's Key Material structure).
pub fn digest(object_type: u32, format: Option<u32>, material: &[u8]) -> [u8; 32] {
    if object_type == object_type::SYMMETRIC_KEY
        && format == Some(key_format_type::TRANSPARENT_SYMMETRIC_KEY)
    {
        let km = Item::structure(
            t::KEY_MATERIAL,
            vec![Item::new(t::KEY, Value::ByteString(material.to_vec()))],
        );
        let mut bytes = openkcm_ttlv::encode(&km);
        let d = openkcm_crypto::aes::sha256(&bytes);
        zeroize::Zeroize::zeroize(&mut bytes);
        return d;
    }
    openkcm_crypto::aes::sha256(material)
}

/// How a key is (to be) wrapped: KMIP Key Wrapping Specification or Key Wrapping Data.
pub struct WrapSpec {
    /// The wrapping key.
    pub kek_uid: String,
    /// RFC 5649 (AES Key Wrap with Padding) rather than RFC 3394 (NIST Key Wrap).
    pub padded: bool,
    /// The Key Wrapping Data to return with the wrapped key.
    pub data: Item,
}

/// Block Cipher Mode: AES Key Wrap with Padding (RFC 5649).
const MODE_KWP: u32 = 0x0C;
/// Block Cipher Mode: NIST Key Wrap (RFC 3394).
const MODE_KW: u32 = 0x0D;

/// Reads a Key Wrapping Specification (Get) or Key Wrapping Data (Register): method Encrypt with an AES key
/// wrap key, no MAC/signature key, Encoding Option No Encoding.
pub fn parse_wrapping(item: &Item) -> Result<WrapSpec, KmipError> {
    let unsupported = |m: &str| {
        KmipError::new(
            openkcm_kmip::enums::result_reason::FEATURE_NOT_SUPPORTED,
            m.to_string(),
        )
    };
    let method = item
        .child(t::WRAPPING_METHOD)
        .and_then(Item::as_enum)
        .ok_or_else(|| KmipError::missing("Wrapping Method"))?;
    if method != 1 {
        return Err(unsupported(
            "only the Wrapping Method Encrypt is supported (AES key wrap)",
        ));
    }
    if item.child(t::MAC_SIGNATURE_KEY_INFORMATION).is_some() {
        return Err(unsupported(
            "MAC/Signature Key Information is not supported; wrap with Encrypt only",
        ));
    }
    if item
        .child(t::ENCODING_OPTION)
        .and_then(Item::as_enum)
        .is_some_and(|e| e != 1)
    {
        return Err(unsupported("only Encoding Option No Encoding is supported"));
    }
    let info = item
        .child(t::ENCRYPTION_KEY_INFORMATION)
        .ok_or_else(|| KmipError::missing("Encryption Key Information"))?;
    let kek_uid = info
        .child(t::UNIQUE_IDENTIFIER)
        .and_then(Item::as_text)
        .ok_or_else(|| KmipError::missing("Unique Identifier of the wrapping key"))?
        .to_owned();
    let mode = info
        .child(t::CRYPTOGRAPHIC_PARAMETERS)
        .and_then(|p| p.child(t::BLOCK_CIPHER_MODE))
        .and_then(Item::as_enum);
    let padded = match mode {
        None | Some(MODE_KW) => false,
        Some(MODE_KWP) => true,
        Some(m) => {
            return Err(unsupported(&format!(
                "Block Cipher Mode 0x{m:X} cannot wrap keys here; use NIST Key Wrap (RFC 3394) or AES Key Wrap with Padding (RFC 5649)"
            )))
        }
    };
    // The Key Wrapping Data returned: method, key information and encoding option as given.
    let mut data = vec![
        Item::new(t::WRAPPING_METHOD, Value::Enumeration(method)),
        info.clone(),
    ];
    if let Some(e) = item.child(t::ENCODING_OPTION) {
        data.push(e.clone());
    }
    Ok(WrapSpec {
        kek_uid,
        padded,
        data: Item::structure(t::KEY_WRAPPING_DATA, data),
    })
}

/// The object of a Register request.
pub struct Registered {
    /// Object Type.
    pub object_type: u32,
    /// The object's bytes (key material, secret data or opaque value).
    pub material: SecretBytes,
    /// Cryptographic Algorithm and Length from the Key Block (symmetric keys).
    pub algorithm: Option<u32>,
    /// Cryptographic Length from the Key Block.
    pub length: Option<i32>,
    /// The Key Format Type the client used.
    pub key_format: Option<u32>,
    /// Secret Data Type or Opaque Data Type.
    pub data_type: Option<u32>,
    /// The Key Wrapping Data of a Key Block registered wrapped (then `material` is the wrapped bytes).
    pub wrapping: Option<Item>,
    /// Whether the wrapped Key Value came as a structure with Key Material (rather than bare bytes).
    pub wrapped_in_key_material: bool,
    /// False for a key registered without its Key Value (kept elsewhere, see Key Value Location).
    pub value_present: bool,
    /// A Split Key: how it was split.
    pub split: Option<SplitInfo>,
}

fn key_block_material(block: &Item) -> Result<(Vec<u8>, u32), KmipError> {
    let format = block
        .child(t::KEY_FORMAT_TYPE)
        .and_then(Item::as_enum)
        .ok_or_else(|| KmipError::missing("Key Format Type"))?;
    if block.child(t::KEY_COMPRESSION_TYPE).is_some() {
        return Err(KmipError::invalid_field(
            "Key Compression Type applies to elliptic-curve keys only",
        ));
    }
    let value = block
        .child(t::KEY_VALUE)
        .ok_or_else(|| KmipError::missing("Key Value"))?;
    // A wrapped Key Value is the wrapped bytes (No Encoding), directly or as its Key Material.
    if block.child(t::KEY_WRAPPING_DATA).is_some() {
        let wrapped = match &value.value {
            Value::ByteString(b) => Some(b),
            _ => value.child(t::KEY_MATERIAL).and_then(|m| match &m.value {
                Value::ByteString(b) => Some(b),
                _ => None,
            }),
        };
        return match wrapped {
            Some(b) => Ok((b.clone(), format)),
            None => Err(KmipError::new(
                openkcm_kmip::enums::result_reason::FEATURE_NOT_SUPPORTED,
                "a wrapped Key Value must be the wrapped bytes (Encoding Option No Encoding)",
            )),
        };
    }
    let material = value
        .child(t::KEY_MATERIAL)
        .ok_or_else(|| KmipError::missing("Key Material"))?;
    let bytes = match (format, &material.value) {
        (key_format_type::RAW | key_format_type::OPAQUE, Value::ByteString(b)) => b.clone(),
        (key_format_type::TRANSPARENT_SYMMETRIC_KEY, Value::Structure(_)) => material
            .child(t::KEY)
            .and_then(Item::as_bytes)
            .ok_or_else(|| KmipError::missing("Key (in the Transparent Symmetric Key material)"))?
            .to_vec(),
        (key_format_type::RAW | key_format_type::OPAQUE, _) => {
            return Err(KmipError::invalid_field(
                "the Key Material of a Raw or Opaque key is a Byte String",
            ))
        }
        (key_format_type::TRANSPARENT_SYMMETRIC_KEY, _) => {
            return Err(KmipError::invalid_field(
                "the Key Material of a Transparent Symmetric Key is a structure holding the Key",
            ))
        }
        (f, _) => {
            return Err(KmipError::new(
                openkcm_kmip::enums::result_reason::KEY_FORMAT_TYPE_NOT_SUPPORTED,
                format!(
                    "Key Format Type 0x{f:X} is not supported here; use Raw, Opaque or Transparent Symmetric Key"
                ),
            ))
        }
    };
    Ok((bytes, format))
}

/// Adds the Cryptographic Algorithm and Length of a Key Block, when known (non-zero).
pub fn push_algorithm_length(block: &mut Vec<Item>, algorithm: u32, length: i32) {
    if algorithm != 0 {
        block.push(Item::new(
            t::CRYPTOGRAPHIC_ALGORITHM,
            Value::Enumeration(algorithm),
        ));
    }
    if length != 0 {
        block.push(Item::new(t::CRYPTOGRAPHIC_LENGTH, Value::Integer(length)));
    }
}

/// Whether Cryptographic Length `l` (bits) describes `n` bytes of key material of `algorithm` (DES and Triple DES
/// count their parity bits out).
pub fn length_matches(algorithm: Option<u32>, l: i32, n: usize) -> bool {
    usize::try_from(l).ok() == Some(n * 8)
        || (algorithm == Some(alg::TRIPLE_DES) && ((l == 168 && n == 24) || (l == 112 && n == 16)))
        || (algorithm == Some(alg::DES) && l == 56 && n == 8)
}

/// Split Key Method: XOR.
pub const SPLIT_XOR: u32 = 0x01;
/// Split Key Method: Polynomial Sharing GF(2^8).
pub const SPLIT_GF256: u32 = 0x04;

/// The split method `method` (KMIP Split Key Method), if this server implements it.
pub fn split_method(method: u32) -> Result<openkcm_crypto::split_key::Method, KmipError> {
    match method {
        SPLIT_XOR => Ok(openkcm_crypto::split_key::Method::Xor),
        SPLIT_GF256 => Ok(openkcm_crypto::split_key::Method::PolynomialGf256),
        other => Err(KmipError::new(
            openkcm_kmip::enums::result_reason::FEATURE_NOT_SUPPORTED,
            format!(
                "Split Key Method 0x{other:X} is not supported; this server splits with XOR and Polynomial Sharing GF(2^8)"
            ),
        )),
    }
}

/// The Split Key fields of a Split Key object (Register) and their consistency.
fn parse_split(obj: &Item) -> Result<SplitInfo, KmipError> {
    let int = |tag, what: &str| {
        obj.child(tag)
            .and_then(Item::as_i32)
            .ok_or_else(|| KmipError::missing(what))
    };
    let split = SplitInfo {
        parts: int(t::SPLIT_KEY_PARTS, "Split Key Parts")?,
        part: int(t::KEY_PART_IDENTIFIER, "Key Part Identifier")?,
        threshold: int(t::SPLIT_KEY_THRESHOLD, "Split Key Threshold")?,
        method: obj
            .child(t::SPLIT_KEY_METHOD)
            .and_then(Item::as_enum)
            .ok_or_else(|| KmipError::missing("Split Key Method"))?,
        split_id: None,
    };
    if split.method == SPLIT_XOR && split.threshold != split.parts {
        return Err(KmipError::invalid_field(
            "a Split Key of the XOR method needs every part: Split Key Threshold = Split Key Parts",
        ));
    }
    split_method(split.method)?;
    if !(1..=split.parts).contains(&split.threshold)
        || !(1..=split.parts).contains(&split.part)
        || split.parts > 255
    {
        return Err(KmipError::invalid_field(format!(
            "a Split Key needs 1 ≤ Split Key Threshold ≤ Split Key Parts ≤ 255 and 1 ≤ Key Part Identifier ≤ Split Key Parts (got parts {}, threshold {}, part {})",
            split.parts, split.threshold, split.part
        )));
    }
    Ok(split)
}

/// The Split Key object of a Get response.
pub fn split_key_object(split: &SplitInfo, material: &[u8], algorithm: u32, length: i32) -> Item {
    let mut block = vec![
        Item::new(t::KEY_FORMAT_TYPE, Value::Enumeration(key_format_type::RAW)),
        Item::structure(
            t::KEY_VALUE,
            vec![Item::new(
                t::KEY_MATERIAL,
                Value::ByteString(material.to_vec()),
            )],
        ),
    ];
    push_algorithm_length(&mut block, algorithm, length);
    Item::structure(
        t::SPLIT_KEY,
        vec![
            Item::new(t::SPLIT_KEY_PARTS, Value::Integer(split.parts)),
            Item::new(t::KEY_PART_IDENTIFIER, Value::Integer(split.part)),
            Item::new(t::SPLIT_KEY_THRESHOLD, Value::Integer(split.threshold)),
            Item::new(t::SPLIT_KEY_METHOD, Value::Enumeration(split.method)),
            Item::structure(t::KEY_BLOCK, block),
        ],
    )
}

/// Parses the managed object of a Register payload.
pub fn parse_register(payload: &Item) -> Result<Registered, KmipError> {
    let ot = payload
        .child(t::OBJECT_TYPE)
        .and_then(Item::as_enum)
        .ok_or_else(|| KmipError::missing("Object Type"))?;
    let too_big = |n: usize| {
        if n == 0 || n > openkcm_crypto::MAX_L4_LEN {
            Err(KmipError::invalid_field(format!(
                "the object has {n} bytes; this server keeps objects of 1 to 65536 bytes"
            )))
        } else {
            Ok(())
        }
    };
    match ot {
        object_type::SYMMETRIC_KEY => {
            let obj = payload.child(t::SYMMETRIC_KEY).ok_or_else(|| KmipError::missing("Symmetric Key"))?;
            let block = obj.child(t::KEY_BLOCK).ok_or_else(|| KmipError::missing("Key Block"))?;
            // A Key Block without a Key Value registers a key kept elsewhere (KMIP 1.2 Key Value Location).
            let value_present = block.child(t::KEY_VALUE).is_some();
            let (bytes, format) = if value_present {
                key_block_material(block)?
            } else {
                let format = block
                    .child(t::KEY_FORMAT_TYPE)
                    .and_then(Item::as_enum)
                    .ok_or_else(|| KmipError::missing("Key Format Type"))?;
                (Vec::new(), format)
            };
            if value_present {
                too_big(bytes.len())?;
            }
            let algorithm = block.child(t::CRYPTOGRAPHIC_ALGORITHM).and_then(Item::as_enum);
            let length = block.child(t::CRYPTOGRAPHIC_LENGTH).and_then(Item::as_i32);
            if let Some(a) = algorithm {
                if !is_symmetric(a) {
                    return Err(KmipError::invalid_field(format!(
                        "Cryptographic Algorithm 0x{a:X} is not a symmetric algorithm"
                    )));
                }
            }
            if let (Some(l), false, true) = (length, block.child(t::KEY_WRAPPING_DATA).is_some(), value_present) {
                if !length_matches(algorithm, l, bytes.len()) {
                    return Err(KmipError::invalid_field(format!(
                        "Cryptographic Length {l} does not match the {} bytes of key material",
                        bytes.len()
                    )));
                }
            }
            Ok(Registered {
                object_type: ot,
                material: SecretBytes::new(bytes),
                algorithm,
                length,
                key_format: Some(format),
                data_type: None,
                wrapping: block.child(t::KEY_WRAPPING_DATA).cloned(),
                wrapped_in_key_material: block.child(t::KEY_VALUE).is_some_and(|v| v.child(t::KEY_MATERIAL).is_some()),
                value_present: block.child(t::KEY_VALUE).is_some(),
                split: None,
            })
        }
        object_type::SECRET_DATA => {
            let obj = payload.child(t::SECRET_DATA).ok_or_else(|| KmipError::missing("Secret Data"))?;
            let kind = obj
                .child(t::SECRET_DATA_TYPE)
                .and_then(Item::as_enum)
                .ok_or_else(|| KmipError::missing("Secret Data Type"))?;
            let block = obj.child(t::KEY_BLOCK).ok_or_else(|| KmipError::missing("Key Block"))?;
            let (bytes, format) = key_block_material(block)?;
            too_big(bytes.len())?;
            Ok(Registered {
                object_type: ot,
                material: SecretBytes::new(bytes),
                algorithm: None,
                length: None,
                key_format: Some(format),
                data_type: Some(kind),
                wrapping: block.child(t::KEY_WRAPPING_DATA).cloned(),
                wrapped_in_key_material: block.child(t::KEY_VALUE).is_some_and(|v| v.child(t::KEY_MATERIAL).is_some()),
                value_present: block.child(t::KEY_VALUE).is_some(),
                split: None,
            })
        }
        object_type::OPAQUE_OBJECT => {
            let obj = payload.child(t::OPAQUE_OBJECT).ok_or_else(|| KmipError::missing("Opaque Object"))?;
            let kind = obj
                .child(t::OPAQUE_DATA_TYPE)
                .and_then(Item::as_enum)
                .ok_or_else(|| KmipError::missing("Opaque Data Type"))?;
            let bytes = obj
                .child(t::OPAQUE_DATA_VALUE)
                .and_then(Item::as_bytes)
                .ok_or_else(|| KmipError::missing("Opaque Data Value"))?
                .to_vec();
            too_big(bytes.len())?;
            Ok(Registered {
                object_type: ot,
                material: SecretBytes::new(bytes),
                algorithm: None,
                length: None,
                key_format: None,
                data_type: Some(kind),
                wrapping: None,
                wrapped_in_key_material: false,
                value_present: true,
                split: None,
            })
        }
        object_type::SPLIT_KEY => {
            let obj = payload.child(t::SPLIT_KEY).ok_or_else(|| KmipError::missing("Split Key"))?;
            let split = parse_split(obj)?;
            let block = obj.child(t::KEY_BLOCK).ok_or_else(|| KmipError::missing("Key Block"))?;
            let (bytes, format) = key_block_material(block)?;
            too_big(bytes.len())?;
            Ok(Registered {
                object_type: ot,
                material: SecretBytes::new(bytes),
                algorithm: block.child(t::CRYPTOGRAPHIC_ALGORITHM).and_then(Item::as_enum),
                length: block.child(t::CRYPTOGRAPHIC_LENGTH).and_then(Item::as_i32),
                key_format: Some(format),
                data_type: None,
                wrapping: block.child(t::KEY_WRAPPING_DATA).cloned(),
                wrapped_in_key_material: block.child(t::KEY_VALUE).is_some_and(|v| v.child(t::KEY_MATERIAL).is_some()),
                value_present: true,
                split: Some(split),
            })
        }
        other => Err(KmipError::invalid_field(format!(
            "Object Type 0x{other:X} cannot be registered here: this server keeps symmetric keys, Secret Data and \
             Opaque Objects (asymmetric keys and certificates are not supported yet)"
        ))),
    }
}

/// The Get response payload for a stored object.
#[allow(clippy::too_many_arguments)]
pub fn get_response(
    uid: &str,
    object_type: u32,
    material: &[u8],
    algorithm: u32,
    length: i32,
    stored_format: Option<u32>,
    requested_format: Option<u32>,
    data_type: Option<u32>,
    wrapped: Option<(Vec<u8>, Item, bool)>,
) -> Result<Item, KmipError> {
    let wrapped_block =
        |format: u32, algorithm: u32, length: i32, wrapped: (Vec<u8>, Item, bool)| {
            let key_value = if wrapped.2 {
                Item::structure(
                    t::KEY_VALUE,
                    vec![Item::new(t::KEY_MATERIAL, Value::ByteString(wrapped.0))],
                )
            } else {
                Item::new(t::KEY_VALUE, Value::ByteString(wrapped.0))
            };
            let mut block = vec![
                Item::new(t::KEY_FORMAT_TYPE, Value::Enumeration(format)),
                key_value,
            ];
            push_algorithm_length(&mut block, algorithm, length);
            block.push(wrapped.1);
            Item::structure(t::KEY_BLOCK, block)
        };
    let bytes = |tag, b: &[u8]| Item::new(tag, Value::ByteString(b.to_vec()));
    let object = match object_type {
        object_type::SYMMETRIC_KEY if wrapped.is_some() => {
            let format = requested_format
                .or(stored_format)
                .unwrap_or(key_format_type::RAW);
            if format != key_format_type::RAW && format != key_format_type::OPAQUE {
                return Err(KmipError::new(
                    openkcm_kmip::enums::result_reason::KEY_FORMAT_TYPE_NOT_SUPPORTED,
                    "a wrapped symmetric key is returned in Raw format",
                ));
            }
            let w = wrapped.ok_or_else(|| KmipError::general("wrapping lost"))?;
            Item::structure(
                t::SYMMETRIC_KEY,
                vec![wrapped_block(format, algorithm, length, w)],
            )
        }
        object_type::SECRET_DATA if wrapped.is_some() => {
            let w = wrapped.ok_or_else(|| KmipError::general("wrapping lost"))?;
            Item::structure(
                t::SECRET_DATA,
                vec![
                    Item::new(
                        t::SECRET_DATA_TYPE,
                        Value::Enumeration(data_type.unwrap_or(1)),
                    ),
                    wrapped_block(stored_format.unwrap_or(key_format_type::OPAQUE), 0, 0, w),
                ],
            )
        }
        object_type::OPAQUE_OBJECT if wrapped.is_some() => {
            return Err(KmipError::invalid_field(
                "an Opaque Object has no Key Block and cannot be wrapped",
            ))
        }
        object_type::SYMMETRIC_KEY => {
            let format = requested_format
                .or(stored_format)
                .unwrap_or(key_format_type::RAW);
            let km = match format {
                key_format_type::RAW => bytes(t::KEY_MATERIAL, material),
                key_format_type::TRANSPARENT_SYMMETRIC_KEY => {
                    Item::structure(t::KEY_MATERIAL, vec![bytes(t::KEY, material)])
                }
                other => {
                    return Err(KmipError::new(
                        openkcm_kmip::enums::result_reason::KEY_FORMAT_TYPE_NOT_SUPPORTED,
                        format!("key format type 0x{other:X} is not supported for symmetric keys; use Raw or Transparent Symmetric Key"),
                    ))
                }
            };
            let mut block = vec![
                Item::new(t::KEY_FORMAT_TYPE, Value::Enumeration(format)),
                Item::structure(t::KEY_VALUE, vec![km]),
            ];
            push_algorithm_length(&mut block, algorithm, length);
            Item::structure(t::SYMMETRIC_KEY, vec![Item::structure(t::KEY_BLOCK, block)])
        }
        object_type::SECRET_DATA => {
            let format = stored_format.unwrap_or(key_format_type::OPAQUE);
            if requested_format.is_some_and(|f| f != format) {
                return Err(KmipError::new(
                    openkcm_kmip::enums::result_reason::KEY_FORMAT_TYPE_NOT_SUPPORTED,
                    "Secret Data is returned in the format it was registered with",
                ));
            }
            Item::structure(
                t::SECRET_DATA,
                vec![
                    Item::new(
                        t::SECRET_DATA_TYPE,
                        Value::Enumeration(data_type.unwrap_or(1)),
                    ),
                    Item::structure(
                        t::KEY_BLOCK,
                        vec![
                            Item::new(t::KEY_FORMAT_TYPE, Value::Enumeration(format)),
                            Item::structure(t::KEY_VALUE, vec![bytes(t::KEY_MATERIAL, material)]),
                        ],
                    ),
                ],
            )
        }
        object_type::OPAQUE_OBJECT => Item::structure(
            t::OPAQUE_OBJECT,
            vec![
                Item::new(
                    t::OPAQUE_DATA_TYPE,
                    Value::Enumeration(data_type.unwrap_or(0x8000_0001)),
                ),
                bytes(t::OPAQUE_DATA_VALUE, material),
            ],
        ),
        other => {
            return Err(KmipError::general(format!(
                "stored object type 0x{other:X} is unknown"
            )))
        }
    };
    Ok(Item::structure(
        t::RESPONSE_PAYLOAD,
        vec![
            Item::new(t::OBJECT_TYPE, Value::Enumeration(object_type)),
            Item::new(t::UNIQUE_IDENTIFIER, Value::TextString(uid.into())),
            object,
        ],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn des_parity_is_odd_in_every_byte() {
        let mut k = [0u8, 1, 2, 0xFE, 0xFF, 0x80, 0x7F, 0x10];
        set_des_parity(&mut k);
        assert!(k.iter().all(|b| b.count_ones() % 2 == 1), "{k:?}");
        let g = generate(alg::TRIPLE_DES, 168).unwrap();
        assert_eq!(g.len(), 24);
        assert!(g.expose().iter().all(|b| b.count_ones() % 2 == 1));
    }

    #[test]
    fn lengths_per_algorithm() {
        assert_eq!(key_bytes(alg::AES, 128).unwrap(), 16);
        assert_eq!(key_bytes(alg::AES, 192).unwrap(), 24);
        assert!(key_bytes(alg::AES, 100).is_err());
        assert_eq!(key_bytes(alg::SKIPJACK, 80).unwrap(), 10);
        assert_eq!(key_bytes(alg::HMAC_SHA256, 512).unwrap(), 64);
        assert!(key_bytes(0x04, 2048)
            .unwrap_err()
            .message
            .contains("not a symmetric"));
    }
}
