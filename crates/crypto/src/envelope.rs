//! The wrapped-key envelope of DESIGN §2.1 (the "hard header").
//!
//! ```text
//! magic "OKCM" | format u8 (=1) | layer u8 | alg u8 (1 = AES-256-GCM)
//! | tenant (u16 BE len + utf8) | wrapped key id (u16 BE len + utf8) | parent key id (u16 BE len + utf8)
//! | parent version u32 BE | nonce 12 | ciphertext ‖ tag 16
//! ```
//!
//! The AAD is every byte before the nonce, so moving a blob to another tenant, key id, layer,
//! parent or parent version makes it fail to authenticate. [`WrappedKey`] can only be built by
//! [`wrap`], by [`WrappedKey::from_parts`] (a remote party did the AES-GCM with this header as
//! AAD) or by [`WrappedKey::from_stored`] (validated before any crypto runs), so storage that
//! accepts only `WrappedKey` can never receive plaintext key material.

use std::fmt;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use zeroize::Zeroize;

use crate::error::CryptoError;
use crate::secret::{SecretKey, KEY_LEN};

/// The four bytes every envelope starts with.
pub const MAGIC: [u8; 4] = *b"OKCM";
/// The envelope format version written by this crate.
pub const FORMAT_VERSION: u8 = 1;
/// Algorithm identifier for AES-256-GCM with a 96-bit nonce and a 128-bit tag.
pub const ALG_AES_256_GCM: u8 = 1;
/// Nonce length in bytes.
pub const NONCE_LEN: usize = 12;
/// Authentication tag length in bytes.
pub const TAG_LEN: usize = 16;
/// Length of ciphertext ‖ tag in every envelope: a 256-bit key plus the 16-byte tag.
///
/// Every value this project wraps is a 32-byte AES-256 key (the MasterKey included), so any other
/// length is a truncated or padded blob and is rejected before cryptography runs.
pub const CIPHERTEXT_AND_TAG_LEN: usize = KEY_LEN + TAG_LEN;

const WRONG_CT_LEN: &str =
    "its ciphertext and tag are not the 48 bytes of a wrapped 256-bit key (truncated or extended)";

/// Largest managed object an L4 envelope carries (data keys of any algorithm, secret data, opaque objects).
pub const MAX_L4_LEN: usize = 64 << 10;

const WRONG_L4_LEN: &str =
    "its ciphertext and tag do not hold 1 to 65536 bytes of wrapped object plus the 16-byte tag";

/// Checks the length of ciphertext ‖ tag for `layer`: exactly a 256-bit key for the hierarchy's own keys, 1 byte
/// to [`MAX_L4_LEN`] for L4 objects (which may be keys of other lengths, secret data or opaque objects).
fn check_ct_len(layer: Layer, len: usize) -> Result<(), CryptoError> {
    let ok = if layer == Layer::L4 {
        (TAG_LEN + 1..=TAG_LEN + MAX_L4_LEN).contains(&len)
    } else {
        len == CIPHERTEXT_AND_TAG_LEN
    };
    if ok {
        Ok(())
    } else {
        Err(CryptoError::MalformedEnvelope {
            reason: if layer == Layer::L4 {
                WRONG_L4_LEN
            } else {
                WRONG_CT_LEN
            },
        })
    }
}

/// Which level of the key hierarchy (DESIGN §2) a wrapped key belongs to.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layer {
    /// The MasterKey sealed by a seal provider's data key.
    MasterKeySealed = 0,
    /// An internal versioned key, wrapped by the MasterKey.
    Ivk = 1,
    /// A tenant (system) key, wrapped by an IVK (the active binding).
    L2 = 2,
    /// A service key, wrapped by an L2 version.
    L3 = 3,
    /// A data key, wrapped by an L3 version.
    L4 = 4,
}

impl Layer {
    /// The byte written in the envelope.
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

impl TryFrom<u8> for Layer {
    type Error = CryptoError;

    fn try_from(value: u8) -> Result<Layer, CryptoError> {
        match value {
            0 => Ok(Layer::MasterKeySealed),
            1 => Ok(Layer::Ivk),
            2 => Ok(Layer::L2),
            3 => Ok(Layer::L3),
            4 => Ok(Layer::L4),
            _ => Err(CryptoError::MalformedEnvelope {
                reason: "its layer byte names no known layer",
            }),
        }
    }
}

/// The authenticated header of a wrapped key: who it belongs to and which parent key wraps it.
///
/// ```
/// use openkcm_crypto::{EnvelopeHeader, Layer};
/// let header = EnvelopeHeader {
///     layer: Layer::L4,
///     tenant: "acme".into(),
///     key_id: "k1".into(),
///     parent_id: "svc".into(),
///     parent_version: 3,
/// };
/// let aad = header.encode()?;
/// let (parsed, len) = EnvelopeHeader::parse(&aad)?;
/// assert_eq!((parsed, len), (header, aad.len()));
/// # Ok::<(), openkcm_crypto::CryptoError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EnvelopeHeader {
    /// Hierarchy level of the wrapped key.
    pub layer: Layer,
    /// Tenant the key belongs to; never empty.
    pub tenant: String,
    /// Identifier of the wrapped key itself; never empty.
    pub key_id: String,
    /// Identifier of the key that wraps it (may be empty where there is no named parent).
    pub parent_id: String,
    /// Version of the parent key used, so rotation never has to guess.
    pub parent_version: u32,
}

fn push_str(out: &mut Vec<u8>, field: &'static str, value: &str) -> Result<(), CryptoError> {
    let len = u16::try_from(value.len()).map_err(|_| CryptoError::InvalidHeaderField {
        field,
        reason: "it is longer than 65535 bytes",
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(value.as_bytes());
    Ok(())
}

impl EnvelopeHeader {
    /// Encodes the header: exactly the AAD bytes, everything before the nonce.
    ///
    /// Fails when the tenant or key id is empty or any string is longer than 65535 bytes.
    pub fn encode(&self) -> Result<Vec<u8>, CryptoError> {
        if self.tenant.is_empty() {
            return Err(CryptoError::InvalidHeaderField {
                field: "tenant",
                reason: "it is empty",
            });
        }
        if self.key_id.is_empty() {
            return Err(CryptoError::InvalidHeaderField {
                field: "key_id",
                reason: "it is empty",
            });
        }
        let mut out = Vec::with_capacity(
            4 + 3 + 6 + 4 + self.tenant.len() + self.key_id.len() + self.parent_id.len(),
        );
        out.extend_from_slice(&MAGIC);
        out.push(FORMAT_VERSION);
        out.push(self.layer.as_u8());
        out.push(ALG_AES_256_GCM);
        push_str(&mut out, "tenant", &self.tenant)?;
        push_str(&mut out, "key_id", &self.key_id)?;
        push_str(&mut out, "parent_id", &self.parent_id)?;
        out.extend_from_slice(&self.parent_version.to_be_bytes());
        Ok(out)
    }

    /// Parses a header from the start of `bytes`; returns it and its encoded length.
    ///
    /// Bytes after the header (nonce, ciphertext) are ignored. Never panics on any input.
    pub fn parse(bytes: &[u8]) -> Result<(EnvelopeHeader, usize), CryptoError> {
        let mut r = Reader { bytes, pos: 0 };
        if r.take(4, "it is shorter than the OKCM magic")? != MAGIC {
            return Err(CryptoError::MalformedEnvelope {
                reason: "it does not start with the OKCM magic",
            });
        }
        if r.u8()? != FORMAT_VERSION {
            return Err(CryptoError::MalformedEnvelope {
                reason: "its format version is not 1",
            });
        }
        let layer = Layer::try_from(r.u8()?)?;
        if r.u8()? != ALG_AES_256_GCM {
            return Err(CryptoError::MalformedEnvelope {
                reason: "its algorithm byte names no known algorithm",
            });
        }
        let tenant = r.string()?;
        let key_id = r.string()?;
        let parent_id = r.string()?;
        let v = r.take(4, "it ends inside the header")?;
        let parent_version = u32::from_be_bytes([
            v.first().copied().unwrap_or(0),
            v.get(1).copied().unwrap_or(0),
            v.get(2).copied().unwrap_or(0),
            v.get(3).copied().unwrap_or(0),
        ]);
        if tenant.is_empty() {
            return Err(CryptoError::MalformedEnvelope {
                reason: "its tenant is empty",
            });
        }
        if key_id.is_empty() {
            return Err(CryptoError::MalformedEnvelope {
                reason: "its key id is empty",
            });
        }
        Ok((
            EnvelopeHeader {
                layer,
                tenant,
                key_id,
                parent_id,
                parent_version,
            },
            r.pos,
        ))
    }
}

/// A bounds-checked cursor over untrusted bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, reason: &'static str) -> Result<&'a [u8], CryptoError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(CryptoError::MalformedEnvelope { reason })?;
        let out = self
            .bytes
            .get(self.pos..end)
            .ok_or(CryptoError::MalformedEnvelope { reason })?;
        self.pos = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, CryptoError> {
        let b = self.take(1, "it ends inside the header")?;
        Ok(b.first().copied().unwrap_or(0))
    }

    fn string(&mut self) -> Result<String, CryptoError> {
        let l = self.take(2, "it ends inside the header")?;
        let len = u16::from_be_bytes([
            l.first().copied().unwrap_or(0),
            l.get(1).copied().unwrap_or(0),
        ]);
        let raw = self.take(usize::from(len), "it ends inside a header string")?;
        String::from_utf8(raw.to_vec()).map_err(|_| CryptoError::MalformedEnvelope {
            reason: "a header string is not valid UTF-8",
        })
    }
}

/// A key wrapped under the §2.1 envelope. It holds no plaintext, so it may be stored and cloned.
///
/// ```
/// use openkcm_crypto::{wrap, unwrap, EnvelopeHeader, Layer, SecretKey, WrappedKey};
/// let kek = SecretKey::generate()?;
/// let dek = SecretKey::generate()?;
/// let header = EnvelopeHeader {
///     layer: Layer::L4, tenant: "acme".into(), key_id: "k1".into(),
///     parent_id: "svc".into(), parent_version: 1,
/// };
/// let wrapped = wrap(&kek, &header, &dek)?;
/// let restored = WrappedKey::from_stored(wrapped.as_bytes().to_vec())?;
/// assert_eq!(unwrap(&kek, &restored, &header)?.expose(), dek.expose());
/// # Ok::<(), openkcm_crypto::CryptoError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey {
    bytes: Vec<u8>,
    header: EnvelopeHeader,
    header_len: usize,
    nonce: [u8; NONCE_LEN],
}

impl WrappedKey {
    /// Validates bytes read from storage (or a peer) and wraps them in the newtype.
    ///
    /// Checks magic, format, layer, algorithm, string lengths and UTF-8, the nonce, and that
    /// exactly one wrapped 256-bit key plus its 16-byte tag follow (48 bytes; for L4, 1 to
    /// [`MAX_L4_LEN`] bytes plus the tag). No cryptography
    /// runs here, so an empty, truncated or extended blob never reaches AES-GCM.
    pub fn from_stored(bytes: Vec<u8>) -> Result<WrappedKey, CryptoError> {
        let (header, header_len) = EnvelopeHeader::parse(&bytes)?;
        let rest = bytes.get(header_len..).unwrap_or(&[]);
        let Some((nonce, ct)) = rest.split_first_chunk::<NONCE_LEN>() else {
            return Err(CryptoError::MalformedEnvelope {
                reason: "it ends before the nonce is complete",
            });
        };
        check_ct_len(header.layer, ct.len())?;
        let nonce = *nonce;
        Ok(WrappedKey {
            bytes,
            header,
            header_len,
            nonce,
        })
    }

    /// Assembles an envelope from a header and the output of an AES-256-GCM encryption of a
    /// 32-byte key done elsewhere (for example by the Core over KMIP) with `header.encode()` as
    /// AAD. `ciphertext_and_tag` must be 48 bytes (for L4: 17 to [`MAX_L4_LEN`] + 16).
    pub fn from_parts(
        header: &EnvelopeHeader,
        nonce: [u8; NONCE_LEN],
        ciphertext_and_tag: &[u8],
    ) -> Result<WrappedKey, CryptoError> {
        check_ct_len(header.layer, ciphertext_and_tag.len())?;
        let mut bytes = header.encode()?;
        let header_len = bytes.len();
        bytes.reserve_exact(NONCE_LEN + ciphertext_and_tag.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(ciphertext_and_tag);
        Ok(WrappedKey {
            bytes,
            header: header.clone(),
            header_len,
            nonce,
        })
    }

    /// The whole envelope, as stored.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The parsed header (a copy; see [`WrappedKey::header_ref`] to borrow it).
    pub fn header(&self) -> EnvelopeHeader {
        self.header.clone()
    }

    /// The parsed header, borrowed.
    pub fn header_ref(&self) -> &EnvelopeHeader {
        &self.header
    }

    /// The 96-bit nonce.
    pub fn nonce(&self) -> [u8; NONCE_LEN] {
        self.nonce
    }

    /// Ciphertext followed by the 16-byte tag.
    pub fn ciphertext_and_tag(&self) -> &[u8] {
        self.bytes
            .get(self.header_len.saturating_add(NONCE_LEN)..)
            .unwrap_or(&[])
    }

    /// The authenticated header bytes: everything before the nonce.
    pub fn aad(&self) -> &[u8] {
        self.bytes.get(..self.header_len).unwrap_or(&[])
    }
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrappedKey")
            .field("header", &self.header)
            .field("len", &self.bytes.len())
            .finish()
    }
}

fn aead_key(kek: &SecretKey) -> Result<LessSafeKey, CryptoError> {
    let unbound =
        UnboundKey::new(&AES_256_GCM, kek.expose()).map_err(|_| CryptoError::Internal {
            operation: "load an AES-256-GCM key",
        })?;
    Ok(LessSafeKey::new(unbound))
}

/// Wraps `key` under `kek` with AES-256-GCM, a fresh random nonce, and `header` as AAD.
pub fn wrap(
    kek: &SecretKey,
    header: &EnvelopeHeader,
    key: &SecretKey,
) -> Result<WrappedKey, CryptoError> {
    let aead = aead_key(kek)?;
    let nonce = crate::aes::random_bytes::<NONCE_LEN>()?;
    let mut bytes = header.encode()?;
    let header_len = bytes.len();
    // Reserve everything up front: the plaintext key is written once and never reallocated.
    bytes.reserve_exact(NONCE_LEN + KEY_LEN + TAG_LEN);
    bytes.extend_from_slice(&nonce);
    bytes.extend_from_slice(key.expose());
    let (aad, rest) = bytes.split_at_mut(header_len);
    let in_out = rest.get_mut(NONCE_LEN..).unwrap_or(&mut []);
    let sealed = aead.seal_in_place_separate_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(&*aad),
        in_out,
    );
    match sealed {
        Ok(tag) => {
            bytes.extend_from_slice(tag.as_ref());
            Ok(WrappedKey {
                bytes,
                header: header.clone(),
                header_len,
                nonce,
            })
        }
        Err(_) => {
            bytes.zeroize();
            Err(CryptoError::Internal {
                operation: "encrypt with AES-256-GCM",
            })
        }
    }
}

/// Unwraps after checking that the blob's header is exactly `expected`.
///
/// A differing field is reported as [`CryptoError::HeaderMismatch`] before any cryptography runs;
/// a failed AES-GCM check is [`CryptoError::AuthenticationFailed`].
pub fn unwrap(
    kek: &SecretKey,
    wrapped: &WrappedKey,
    expected: &EnvelopeHeader,
) -> Result<SecretKey, CryptoError> {
    let h = wrapped.header_ref();
    let field = if h.layer != expected.layer {
        Some("layer")
    } else if h.tenant != expected.tenant {
        Some("tenant")
    } else if h.key_id != expected.key_id {
        Some("key_id")
    } else if h.parent_id != expected.parent_id {
        Some("parent_id")
    } else if h.parent_version != expected.parent_version {
        Some("parent_version")
    } else {
        None
    };
    if let Some(field) = field {
        return Err(CryptoError::HeaderMismatch { field });
    }
    unwrap_unchecked_header(kek, wrapped)
}

/// Unwraps without comparing the header to an expectation: for callers that inspected
/// [`WrappedKey::header`] themselves. The header is still authenticated as AAD.
pub fn unwrap_unchecked_header(
    kek: &SecretKey,
    wrapped: &WrappedKey,
) -> Result<SecretKey, CryptoError> {
    // The constructors guarantee 48 bytes; checked again rather than indexed.
    let ct_tag = wrapped.ciphertext_and_tag();
    let (ciphertext, tag) = match ct_tag.split_at_checked(KEY_LEN) {
        Some((c, t)) if t.len() == TAG_LEN => (c, t),
        _ => {
            return Err(CryptoError::MalformedEnvelope {
                reason: WRONG_CT_LEN,
            })
        }
    };
    let aead = aead_key(kek)?;
    // Decrypt straight into locked memory; on failure the buffer is zeroized by drop.
    let mut out = SecretKey::empty_locked();
    aead.open_separate_gather(
        Nonce::assume_unique_for_key(wrapped.nonce()),
        Aad::from(wrapped.aad()),
        ciphertext,
        tag,
        out.expose_mut(),
    )
    .map_err(|_| CryptoError::AuthenticationFailed)?;
    Ok(out)
}
