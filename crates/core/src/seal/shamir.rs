//! Shamir mode (DESIGN §3.2): the key ceremony that splits a new MasterKey into M-of-N shares, each encrypted to
//! its holder with age and carrying a header signed by the cluster's ceremony key; the signed ceremony manifest;
//! and the unseal rules that turn M submitted shares back into the MasterKey.
//!
//! A share file (`share-<i>.age`) is an armored age file. Decrypted, it is a small JSON document:
//! `{"format":"openkcm-share-v1","header":{…},"signature":"<hex>","share":"<hex of y ‖ x>"}`. The header names the
//! cluster (by fingerprint), the share index, M, N and the recipient's fingerprint; the signature covers the header,
//! not the share, so a corrupted share body is caught by the check value rather than at submission. The `share`
//! bytes are in the Vault/OpenBao layout and combine with that ecosystem's tools.
//!
//! Nothing here writes a file or logs a share: the caller stores the manifest and hands out the share files.

use super::SealError;
use openkcm_crypto::derived::{self, CeremonyKey};
use openkcm_crypto::{sha256, shamir, SecretBytes, SecretKey, KEY_LEN};
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use zeroize::Zeroize;

/// Format tag of the decrypted share document.
pub const SHARE_FORMAT: &str = "openkcm-share-v1";
/// Format tag of the ceremony manifest.
pub const MANIFEST_FORMAT: &str = "openkcm-ceremony-manifest-v1";
/// Length of one share: the 32 y bytes of the MasterKey, then x.
pub const SHARE_LEN: usize = KEY_LEN + 1;

/// What a ceremony is asked to do.
#[derive(Debug, Clone)]
pub struct CeremonyRequest {
    /// The cluster's id.
    pub cluster_id: String,
    /// The cluster's region.
    pub region: String,
    /// N: how many shares to make (one per recipient).
    pub shares: usize,
    /// M: how many shares rebuild the MasterKey.
    pub threshold: usize,
    /// One age X25519 (`age1…`), `ssh-ed25519` or `ssh-rsa` public key per share, in share order.
    pub recipients: Vec<String>,
    /// What the shares unseal: `shamir` (the node's seal) or `recovery` (auto-unseal recovery shares).
    pub purpose: String,
}

/// One share as listed in the manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ManifestShare {
    /// Share index, 1 to N (the file number; not the Shamir x, which is random).
    pub index: usize,
    /// The recipient public key the share was encrypted to.
    pub recipient: String,
    /// Fingerprint of that recipient (first 16 bytes of SHA-256 of the key text, hex).
    pub recipient_fingerprint: String,
    /// File name of the encrypted share.
    pub file: String,
    /// SHA-256 of the armored encrypted share file, hex.
    pub sha256: String,
}

/// The manifest fields the signature covers, in a fixed order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ManifestBody {
    /// [`MANIFEST_FORMAT`].
    pub format: String,
    /// `shamir` or `recovery`.
    pub purpose: String,
    /// Cluster id.
    pub cluster_id: String,
    /// Region.
    pub region: String,
    /// Cluster fingerprint (names the cluster in share headers).
    pub cluster_fingerprint: String,
    /// M.
    pub threshold: usize,
    /// N.
    pub shares: usize,
    /// The ceremony public key (Ed25519, hex).
    pub ceremony_public_key: String,
    /// The MasterKey check value (hex): AES-GCM of a fixed string under a key derived from MK.
    pub check_value: String,
    /// The shares.
    pub share_list: Vec<ManifestShare>,
    /// When the ceremony ran (RFC 3339, UTC).
    pub created_at: String,
}

/// The ceremony manifest: the body and the ceremony key's signature over its canonical JSON.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    /// The signed fields.
    #[serde(flatten)]
    pub body: ManifestBody,
    /// Ed25519 signature (hex) over the JSON of `body`.
    pub signature: String,
}

/// The signed header of one share.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ShareHeader {
    /// Cluster id (for people; the fingerprint is what is checked).
    pub cluster_id: String,
    /// Cluster fingerprint.
    pub cluster_fingerprint: String,
    /// Share index, 1 to N.
    pub index: usize,
    /// M.
    pub threshold: usize,
    /// N.
    pub shares: usize,
    /// The recipient's fingerprint.
    pub recipient_fingerprint: String,
}

/// The decrypted content of a share file. `Debug` does not show the share.
#[derive(Clone, Serialize, Deserialize)]
pub struct ShareDocument {
    /// [`SHARE_FORMAT`].
    pub format: String,
    /// The signed header.
    pub header: ShareHeader,
    /// Ed25519 signature (hex) over the JSON of the header.
    pub signature: String,
    /// y ‖ x, hex.
    pub share: String,
}

impl std::fmt::Debug for ShareDocument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareDocument")
            .field("header", &self.header)
            .field("share", &"[redacted]")
            .finish()
    }
}

impl Drop for ShareDocument {
    fn drop(&mut self) {
        self.share.zeroize();
    }
}

/// A ceremony's result: the MasterKey, the signed manifest and the armored share files, in share order.
pub struct CeremonyOutput {
    /// The new MasterKey.
    pub mk: SecretKey,
    /// The signed manifest.
    pub manifest: Manifest,
    /// `(file name, armored age file)` per share.
    pub share_files: Vec<(String, String)>,
}

/// The fingerprint naming a cluster in share headers: SHA-256 of the cluster id and ceremony public key, 16 bytes.
pub fn cluster_fingerprint(cluster_id: &str, ceremony_public_key: &[u8]) -> String {
    let mut input = b"openkcm cluster\0".to_vec();
    input.extend_from_slice(cluster_id.as_bytes());
    input.push(0);
    input.extend_from_slice(ceremony_public_key);
    hex::encode(&sha256(&input)[..16])
}

/// The fingerprint of a recipient public key: SHA-256 of its text, 16 bytes.
pub fn recipient_fingerprint(recipient: &str) -> String {
    hex::encode(&sha256(recipient.trim().as_bytes())[..16])
}

/// Parses a recipient: an age X25519 key (`age1…`) or an SSH public key (`ssh-ed25519 …`, `ssh-rsa …`).
pub fn parse_recipient(text: &str) -> Result<Box<dyn age::Recipient + Send>, SealError> {
    let text = text.trim();
    if looks_private(text) {
        return Err(SealError::Invalid(
            "a recipient is a PRIVATE key (AGE-SECRET-KEY-… or a private key file): give each holder's public key \
             (`age-keygen -y KEYFILE`, or the .pub file of an SSH key); the private key was not used or shown"
                .into(),
        ));
    }
    if text.starts_with("age1") {
        return age::x25519::Recipient::from_str(text)
            .map(|r| Box::new(r) as Box<dyn age::Recipient + Send>)
            .map_err(|e| {
                SealError::Invalid(format!(
                    "recipient {text:?} is not a valid age public key: {e}"
                ))
            });
    }
    if text.starts_with("ssh-") {
        return age::ssh::Recipient::from_str(text)
            .map(|r| Box::new(r) as Box<dyn age::Recipient + Send>)
            .map_err(|e| {
                SealError::Invalid(format!(
                    "recipient {:?} is not a usable SSH public key (ssh-ed25519 or ssh-rsa): {e:?}",
                    short(text)
                ))
            });
    }
    Err(SealError::Invalid(format!(
        "recipient {:?} is neither an age public key (age1…) nor an SSH public key (ssh-ed25519 …, ssh-rsa …)",
        short(text)
    )))
}

/// Whether `text` is (or holds) a private key: an age identity or a PEM/OpenSSH private key.
pub fn looks_private(text: &str) -> bool {
    let upper = text.to_ascii_uppercase();
    upper.contains("AGE-SECRET-KEY") || upper.contains("PRIVATE KEY")
}

/// The first characters of a nonce a caller sent, enough to tell two nonces apart; never more (a share pasted into
/// the nonce field by mistake must not be echoed into answers and logs).
fn nonce_hint(text: &str) -> String {
    let mut s: String = text.chars().take(8).collect();
    if text.chars().count() > 8 {
        s.push('…');
    }
    s
}

fn short(text: &str) -> String {
    if looks_private(text) {
        return "[a private key, not shown]".into();
    }
    let mut s: String = text.chars().take(40).collect();
    if text.chars().count() > 40 {
        s.push('…');
    }
    s
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Checks the share count, threshold and recipients of a ceremony.
pub fn check_parameters(
    shares: usize,
    threshold: usize,
    recipients: &[String],
) -> Result<(), SealError> {
    if recipients.is_empty() {
        return Err(SealError::Invalid(
            "no recipients: give one public key per share (--recipient or --recipients-file)"
                .into(),
        ));
    }
    if threshold < 1 {
        return Err(SealError::Invalid(format!(
            "the threshold must be at least 1, not {threshold}"
        )));
    }
    if shares > shamir::MAX_SHARES {
        return Err(SealError::Invalid(format!(
            "at most {} shares can be made, not {shares}",
            shamir::MAX_SHARES
        )));
    }
    if shares < threshold {
        return Err(SealError::Invalid(format!(
            "the share count {shares} is below the threshold {threshold}: the MasterKey could never be rebuilt"
        )));
    }
    if recipients.len() != shares {
        return Err(SealError::Invalid(format!(
            "{} for {}: give exactly one public key per share",
            plural(recipients.len(), "recipient"),
            plural(shares, "share")
        )));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, r) in recipients.iter().enumerate() {
        if !seen.insert(r.trim()) {
            return Err(SealError::Invalid(format!(
                "recipient {} is the same public key as an earlier one: one holder would get two shares, which \
                 defeats M-of-N; give each share to a different holder",
                i + 1
            )));
        }
    }
    Ok(())
}

fn signed_bytes<T: Serialize>(value: &T) -> Result<Vec<u8>, SealError> {
    serde_json::to_vec(value).map_err(|e| SealError::Invalid(format!("cannot encode: {e}")))
}

/// Runs the ceremony: a new MasterKey, split M-of-N, each share encrypted to its recipient, and the manifest.
pub fn run_ceremony(req: &CeremonyRequest) -> Result<CeremonyOutput, SealError> {
    run_ceremony_for(req, SecretKey::generate()?)
}

/// Runs the ceremony for an existing MasterKey `mk` (recovery shares of an auto-unseal node).
pub fn run_ceremony_for(req: &CeremonyRequest, mk: SecretKey) -> Result<CeremonyOutput, SealError> {
    check_parameters(req.shares, req.threshold, &req.recipients)?;
    let recipients = req
        .recipients
        .iter()
        .map(|r| parse_recipient(r))
        .collect::<Result<Vec<_>, _>>()?;
    let shares = split(&mk, req.shares, req.threshold)?;
    let ceremony = CeremonyKey::derive(&mk)?;
    let public = ceremony.public_key();
    let fingerprint = cluster_fingerprint(&req.cluster_id, &public);
    let mut share_files = Vec::with_capacity(req.shares);
    let mut share_list = Vec::with_capacity(req.shares);
    for (i, (share, (recipient, text))) in shares
        .iter()
        .zip(recipients.iter().zip(&req.recipients))
        .enumerate()
    {
        let index = i + 1;
        let header = ShareHeader {
            cluster_id: req.cluster_id.clone(),
            cluster_fingerprint: fingerprint.clone(),
            index,
            threshold: req.threshold,
            shares: req.shares,
            recipient_fingerprint: recipient_fingerprint(text),
        };
        let signature = hex::encode(ceremony.sign(&signed_bytes(&header)?));
        let doc = ShareDocument {
            format: SHARE_FORMAT.into(),
            header,
            signature,
            share: hex::encode(share.expose()),
        };
        let plaintext = SecretBytes::new(signed_bytes(&doc)?);
        drop(doc);
        let armored = encrypt_armored(recipient.as_ref(), plaintext.expose())?;
        let file = if req.purpose == "recovery" {
            format!("recovery-share-{index}.age")
        } else {
            format!("share-{index}.age")
        };
        share_list.push(ManifestShare {
            index,
            recipient: text.trim().to_owned(),
            recipient_fingerprint: recipient_fingerprint(text),
            file: file.clone(),
            sha256: hex::encode(sha256(armored.as_bytes())),
        });
        share_files.push((file, armored));
    }
    let body = ManifestBody {
        format: MANIFEST_FORMAT.into(),
        purpose: req.purpose.clone(),
        cluster_id: req.cluster_id.clone(),
        region: req.region.clone(),
        cluster_fingerprint: fingerprint,
        threshold: req.threshold,
        shares: req.shares,
        ceremony_public_key: hex::encode(public),
        check_value: hex::encode(derived::check_value(&mk)?),
        share_list,
        created_at: crate::rfc3339_now(),
    };
    let signature = hex::encode(ceremony.sign(&signed_bytes(&body)?));
    Ok(CeremonyOutput {
        mk,
        manifest: Manifest { body, signature },
        share_files,
    })
}

/// Splits MK into `n` shares (y ‖ x); with M = 1 every share's y is MK itself, under distinct random x.
fn split(mk: &SecretKey, n: usize, m: usize) -> Result<Vec<SecretBytes>, SealError> {
    let shamir_err = |e: shamir::ShamirError| SealError::Invalid(e.to_string());
    if m >= shamir::MIN_THRESHOLD {
        return shamir::split(mk.expose(), n, m).map_err(shamir_err);
    }
    let xs = shamir::random_distinct_x(n).map_err(shamir_err)?;
    Ok(xs
        .into_iter()
        .map(|x| {
            let mut v = Vec::with_capacity(SHARE_LEN);
            v.extend_from_slice(mk.expose());
            v.push(x);
            SecretBytes::new(v)
        })
        .collect())
}

fn encrypt_armored(recipient: &dyn age::Recipient, plaintext: &[u8]) -> Result<String, SealError> {
    use std::io::Write;
    let fail = |e: String| SealError::Invalid(format!("cannot encrypt a share with age: {e}"));
    let encryptor = age::Encryptor::with_recipients(std::iter::once(recipient))
        .map_err(|e| fail(e.to_string()))?;
    let mut out = Vec::new();
    let armor = age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor)
        .map_err(|e| fail(e.to_string()))?;
    let mut writer = encryptor
        .wrap_output(armor)
        .map_err(|e| fail(e.to_string()))?;
    writer
        .write_all(plaintext)
        .and_then(|()| writer.finish())
        .and_then(|armor| armor.finish())
        .map_err(|e| fail(e.to_string()))?;
    String::from_utf8(out).map_err(|e| fail(e.to_string()))
}

/// Decrypts an armored (or binary) age share file with the holder's identities (age X25519 identity file or an
/// unencrypted SSH private key). The plaintext stays in zeroizing memory.
pub fn decrypt_share_file(
    encrypted: &[u8],
    identities: &[Box<dyn age::Identity>],
) -> Result<SecretBytes, SealError> {
    use std::io::Read;
    let decryptor = age::Decryptor::new_buffered(age::armor::ArmoredReader::new(encrypted))
        .map_err(|e| SealError::Invalid(format!("the share file is not an age file: {e}")))?;
    let mut reader = decryptor
        .decrypt(identities.iter().map(|i| i.as_ref()))
        .map_err(|e| {
            SealError::Invalid(format!(
                "the share file cannot be decrypted with the given identity (is it this holder's share?): {e}"
            ))
        })?;
    let mut out = Vec::with_capacity(1024);
    let read = reader.read_to_end(&mut out);
    let out = SecretBytes::new(out);
    read.map_err(|e| SealError::Invalid(format!("the share file is corrupt: {e}")))?;
    Ok(out)
}

/// Parses an age identity file or an unencrypted SSH private key (ssh-ed25519 or ssh-rsa).
pub fn parse_identities(text: &str) -> Result<Vec<Box<dyn age::Identity>>, SealError> {
    if text.contains("-----BEGIN OPENSSH PRIVATE KEY-----")
        || text.contains("-----BEGIN RSA PRIVATE KEY-----")
    {
        let id = age::ssh::Identity::from_buffer(text.as_bytes(), None)
            .map_err(|e| SealError::Invalid(format!("the SSH private key cannot be read: {e}")))?;
        if matches!(id, age::ssh::Identity::Encrypted(_)) {
            return Err(SealError::Invalid(
                "the SSH private key is passphrase-protected; decrypt and pipe the share, so that it never touches the disk: `age -d -i KEY share-<i>.age | openkcm operator unseal …`".into(),
            ));
        }
        if matches!(id, age::ssh::Identity::Unsupported(_)) {
            return Err(SealError::Invalid(
                "the SSH private key type is not supported (use ssh-ed25519 or ssh-rsa)".into(),
            ));
        }
        return Ok(vec![Box::new(id)]);
    }
    let file = age::IdentityFile::from_buffer(text.as_bytes())
        .map_err(|e| SealError::Invalid(format!("the identity file cannot be read: {e}")))?;
    let ids = file
        .into_identities()
        .map_err(|e| SealError::Invalid(format!("the identity file cannot be used: {e}")))?;
    if ids.is_empty() {
        return Err(SealError::Invalid(
            "the identity file holds no identity (expected AGE-SECRET-KEY-1… or an SSH private key)".into(),
        ));
    }
    Ok(ids)
}

impl Manifest {
    /// Parses a manifest and checks its signature against the public key it names and its internal consistency.
    pub fn parse_verified(text: &[u8]) -> Result<Self, SealError> {
        let m: Manifest = serde_json::from_slice(text).map_err(|e| {
            SealError::Invalid(format!("the ceremony manifest is not valid JSON: {e}"))
        })?;
        m.verify()?;
        Ok(m)
    }

    /// Checks the signature and that the fields agree with each other.
    pub fn verify(&self) -> Result<(), SealError> {
        let b = &self.body;
        let bad = |what: &str| SealError::Invalid(format!("the ceremony manifest {what}"));
        if b.format != MANIFEST_FORMAT {
            return Err(bad(&format!(
                "has format {:?}, expected {MANIFEST_FORMAT:?}",
                b.format
            )));
        }
        let pk = hex::decode(&b.ceremony_public_key)
            .map_err(|_| bad("has a malformed ceremony public key"))?;
        let sig = hex::decode(&self.signature).map_err(|_| bad("has a malformed signature"))?;
        if !derived::verify_signature(&pk, &signed_bytes(b)?, &sig) {
            return Err(bad("signature does not verify: the file was altered"));
        }
        if cluster_fingerprint(&b.cluster_id, &pk) != b.cluster_fingerprint {
            return Err(bad(
                "cluster fingerprint does not match its cluster id and key",
            ));
        }
        if b.threshold < 1 || b.threshold > b.shares || b.share_list.len() != b.shares {
            return Err(bad("has inconsistent share counts"));
        }
        Ok(())
    }

    fn check_value(&self) -> Vec<u8> {
        hex::decode(&self.body.check_value).unwrap_or_default()
    }

    fn public_key(&self) -> Vec<u8> {
        hex::decode(&self.body.ceremony_public_key).unwrap_or_default()
    }

    /// Whether `mk` is this ceremony's MasterKey.
    pub fn matches(&self, mk: &SecretKey) -> bool {
        derived::verify_check_value(mk, &self.check_value())
    }
}

/// Why a submitted share was refused. All are the caller's to fix (client-class), and none names share bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsealError {
    /// The nonce quoted is not the current one.
    #[error("the nonce {given:?} is not the current unseal nonce: another operator reset the unseal, or it completed; read /v1/sys/seal-status and submit again")]
    StaleNonce {
        /// The nonce given.
        given: String,
    },
    /// The share is not a share document.
    #[error("the share is malformed: {0}")]
    Malformed(String),
    /// The share belongs to another cluster.
    #[error(
        "the share belongs to another cluster (fingerprint {given}, this cluster is {expected})"
    )]
    ForeignCluster {
        /// The fingerprint the share names.
        given: String,
        /// This cluster's.
        expected: String,
    },
    /// The header signature does not verify.
    #[error(
        "the share header is not signed by this cluster's ceremony key: it was altered or forged"
    )]
    BadSignature,
    /// The share has the wrong length.
    #[error("the share is {actual} bytes long, expected {expected}")]
    WrongLength {
        /// Expected length.
        expected: usize,
        /// Actual length.
        actual: usize,
    },
    /// x = 0.
    #[error("the share has x = 0, which no valid share has")]
    ZeroX,
    /// Another share with the same x but different y was submitted.
    #[error("a different share with the same x was already submitted (share {other_index}): one of them is corrupt or from another ceremony; progress kept, submit another share or reset")]
    ConflictingX {
        /// Index (header) of the share submitted earlier.
        other_index: usize,
    },
    /// The combined key does not match the check value.
    #[error("the {} do not rebuild this cluster's MasterKey (check value mismatch): at least one share is corrupt or belongs to another manifest; progress was reset, the node stays sealed", plural(*.threshold, "share"))]
    CheckFailed {
        /// M.
        threshold: usize,
    },
    /// The shares cannot be combined (reported by the Shamir layer).
    #[error("the shares cannot be combined: {0}; progress was reset")]
    Combine(String),
}

/// One accepted share.
struct Accepted {
    index: usize,
    share: SecretBytes,
}

/// The result of one submission.
#[derive(Debug)]
pub enum Submitted {
    /// Not yet M shares: `progress` of `threshold` (a repeated share leaves `progress` unchanged).
    Progress {
        /// Distinct shares so far.
        progress: usize,
        /// M.
        threshold: usize,
        /// Whether this share had been submitted already.
        duplicate: bool,
    },
    /// The M-th share rebuilt the MasterKey, verified against the check value.
    Complete(SecretKey),
}

/// The unseal progress of one node: the shares submitted under the current nonce.
pub struct Unsealer {
    manifest: Manifest,
    nonce: String,
    accepted: Vec<Accepted>,
}

fn new_nonce() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Unsealer {
    /// A fresh unseal under `manifest` (already verified), with a new nonce.
    pub fn new(manifest: Manifest) -> Self {
        Self {
            manifest,
            nonce: new_nonce(),
            accepted: Vec::new(),
        }
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The nonce every submission must quote.
    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// Distinct shares accepted so far.
    pub fn progress(&self) -> usize {
        self.accepted.len()
    }

    /// Clears progress and issues a new nonce.
    pub fn reset(&mut self) -> &str {
        self.accepted.clear();
        self.nonce = new_nonce();
        &self.nonce
    }

    /// Parses and checks a share document without counting it: format, cluster, signature, length, x.
    pub fn check_share(&self, document: &str) -> Result<(ShareHeader, SecretBytes), UnsealError> {
        let doc: ShareDocument = serde_json::from_str(document.trim()).map_err(|e| {
            UnsealError::Malformed(format!(
                "not an OpenKCM share document (the decrypted content of a share-<i>.age file): {}",
                // The category and position only: serde's full message can quote the input.
                json_error_position(&e)
            ))
        })?;
        if doc.format != SHARE_FORMAT {
            return Err(UnsealError::Malformed(format!(
                "format {:?}, expected {SHARE_FORMAT:?}",
                short(&doc.format)
            )));
        }
        let b = &self.manifest.body;
        if doc.header.cluster_fingerprint != b.cluster_fingerprint {
            return Err(UnsealError::ForeignCluster {
                given: short(&doc.header.cluster_fingerprint),
                expected: b.cluster_fingerprint.clone(),
            });
        }
        let sig = hex::decode(&doc.signature).map_err(|_| UnsealError::BadSignature)?;
        let header_bytes =
            serde_json::to_vec(&doc.header).map_err(|_| UnsealError::BadSignature)?;
        if !derived::verify_signature(&self.manifest.public_key(), &header_bytes, &sig) {
            return Err(UnsealError::BadSignature);
        }
        if doc.header.threshold != b.threshold || doc.header.shares != b.shares {
            return Err(UnsealError::Malformed(format!(
                "the header says {}-of-{}, this cluster is {}-of-{}",
                doc.header.threshold, doc.header.shares, b.threshold, b.shares
            )));
        }
        let share = SecretBytes::new(
            hex::decode(doc.share.trim())
                .map_err(|_| UnsealError::Malformed("the share field is not hex".into()))?,
        );
        if share.len() != SHARE_LEN {
            return Err(UnsealError::WrongLength {
                expected: SHARE_LEN,
                actual: share.len(),
            });
        }
        if share.expose().last() == Some(&0) {
            return Err(UnsealError::ZeroX);
        }
        Ok((doc.header.clone(), share))
    }

    /// Submits one share under `nonce`. The M-th distinct share rebuilds and verifies the MasterKey; on a check
    /// failure progress resets (new nonce) and the node stays sealed.
    pub fn submit(&mut self, nonce: &str, document: &str) -> Result<Submitted, UnsealError> {
        if nonce != self.nonce {
            return Err(UnsealError::StaleNonce {
                given: nonce_hint(nonce),
            });
        }
        let (header, share) = self.check_share(document)?;
        let x = share.expose().last().copied();
        let threshold = self.manifest.body.threshold;
        if let Some(seen) = self
            .accepted
            .iter()
            .find(|a| a.share.expose().last().copied() == x)
        {
            if ct_eq(seen.share.expose(), share.expose()) {
                return Ok(Submitted::Progress {
                    progress: self.accepted.len(),
                    threshold,
                    duplicate: true,
                });
            }
            return Err(UnsealError::ConflictingX {
                other_index: seen.index,
            });
        }
        self.accepted.push(Accepted {
            index: header.index,
            share,
        });
        if self.accepted.len() < threshold {
            return Ok(Submitted::Progress {
                progress: self.accepted.len(),
                threshold,
                duplicate: false,
            });
        }
        let result = self.combine();
        self.reset();
        let mk = result?;
        if !self.manifest.matches(&mk) {
            return Err(UnsealError::CheckFailed { threshold });
        }
        Ok(Submitted::Complete(mk))
    }

    fn combine(&self) -> Result<SecretKey, UnsealError> {
        let secret = if self.manifest.body.threshold == 1 {
            let y = self
                .accepted
                .first()
                .map(|a| &a.share.expose()[..KEY_LEN])
                .unwrap_or_default();
            SecretBytes::from_slice(y)
        } else {
            let shares: Vec<&[u8]> = self.accepted.iter().map(|a| a.share.expose()).collect();
            shamir::combine(&shares).map_err(|e| UnsealError::Combine(e.to_string()))?
        };
        SecretKey::from_slice(secret.expose()).map_err(|e| UnsealError::Combine(e.to_string()))
    }
}

fn json_error_position(e: &serde_json::Error) -> String {
    format!(
        "{:?} error at line {} column {}",
        e.classify(),
        e.line(),
        e.column()
    )
    .to_lowercase()
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    struct Held {
        output: CeremonyOutput,
        identities: Vec<age::x25519::Identity>,
    }

    fn ceremony(n: usize, m: usize) -> Held {
        let identities: Vec<_> = (0..n).map(|_| age::x25519::Identity::generate()).collect();
        let output = run_ceremony(&CeremonyRequest {
            cluster_id: "cluster-a".into(),
            region: "eu-1".into(),
            shares: n,
            threshold: m,
            recipients: identities
                .iter()
                .map(|i| i.to_public().to_string())
                .collect(),
            purpose: "shamir".into(),
        })
        .unwrap();
        Held { output, identities }
    }

    impl Held {
        /// The decrypted share document of share `i` (0-based), as its holder would submit it.
        fn doc(&self, i: usize) -> String {
            let id: Box<dyn age::Identity> = Box::new(self.identities[i].clone());
            let pt = decrypt_share_file(self.output.share_files[i].1.as_bytes(), &[id]).unwrap();
            String::from_utf8(pt.expose().to_vec()).unwrap()
        }
        fn unsealer(&self) -> Unsealer {
            Unsealer::new(self.output.manifest.clone())
        }
    }

    /// Rewrites the share bytes of a document (the header and its signature stay valid).
    fn with_share(doc: &str, edit: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut v: serde_json::Value = serde_json::from_str(doc).unwrap();
        let mut bytes = hex::decode(v["share"].as_str().unwrap()).unwrap();
        edit(&mut bytes);
        v["share"] = hex::encode(bytes).into();
        v.to_string()
    }

    fn progress(r: Result<Submitted, UnsealError>) -> (usize, bool) {
        match r.unwrap() {
            Submitted::Progress {
                progress,
                duplicate,
                ..
            } => (progress, duplicate),
            Submitted::Complete(_) => panic!("completed early"),
        }
    }

    fn complete(r: Result<Submitted, UnsealError>) -> SecretKey {
        match r.unwrap() {
            Submitted::Complete(mk) => mk,
            other => panic!("not complete: {other:?}"),
        }
    }

    #[test]
    fn any_threshold_subset_rebuilds_the_master_key() {
        let held = ceremony(5, 3);
        for subset in [[0, 1, 2], [4, 2, 0], [1, 3, 4]] {
            let mut u = held.unsealer();
            let nonce = u.nonce().to_owned();
            assert_eq!(progress(u.submit(&nonce, &held.doc(subset[0]))), (1, false));
            assert_eq!(progress(u.submit(&nonce, &held.doc(subset[1]))), (2, false));
            let mk = complete(u.submit(&nonce, &held.doc(subset[2])));
            assert_eq!(mk.expose(), held.output.mk.expose());
            assert_eq!(u.progress(), 0);
            assert_ne!(u.nonce(), nonce, "a completed unseal retires its nonce");
        }
    }

    #[test]
    fn unseal_rejects_wrong_length() {
        let held = ceremony(3, 2);
        let mut u = held.unsealer();
        let nonce = u.nonce().to_owned();
        for edit in [
            |b: &mut Vec<u8>| b.truncate(32),
            |b: &mut Vec<u8>| b.push(9),
            |b: &mut Vec<u8>| b.clear(),
        ] {
            let doc = with_share(&held.doc(0), edit);
            assert!(matches!(
                u.submit(&nonce, &doc),
                Err(UnsealError::WrongLength { expected: 33, .. })
            ));
        }
        assert_eq!(u.progress(), 0);
    }

    #[test]
    fn unseal_rejects_a_share_of_another_cluster() {
        let ours = ceremony(3, 2);
        let theirs = ceremony(3, 2);
        let mut u = ours.unsealer();
        let nonce = u.nonce().to_owned();
        assert!(matches!(
            u.submit(&nonce, &theirs.doc(0)),
            Err(UnsealError::ForeignCluster { .. })
        ));
        assert_eq!(u.progress(), 0);
    }

    #[test]
    fn unseal_rejects_an_altered_or_forged_header() {
        let held = ceremony(3, 2);
        let mut u = held.unsealer();
        let nonce = u.nonce().to_owned();
        let mut v: serde_json::Value = serde_json::from_str(&held.doc(0)).unwrap();
        v["header"]["index"] = 3.into();
        assert_eq!(
            u.submit(&nonce, &v.to_string()).unwrap_err(),
            UnsealError::BadSignature
        );
        let mut v: serde_json::Value = serde_json::from_str(&held.doc(0)).unwrap();
        v["signature"] = hex::encode([0u8; 64]).into();
        assert_eq!(
            u.submit(&nonce, &v.to_string()).unwrap_err(),
            UnsealError::BadSignature
        );
    }

    #[test]
    fn unseal_counts_a_repeated_share_once() {
        let held = ceremony(3, 2);
        let mut u = held.unsealer();
        let nonce = u.nonce().to_owned();
        assert_eq!(progress(u.submit(&nonce, &held.doc(1))), (1, false));
        assert_eq!(progress(u.submit(&nonce, &held.doc(1))), (1, true));
        assert_eq!(progress(u.submit(&nonce, &held.doc(1))), (1, true));
        let mk = complete(u.submit(&nonce, &held.doc(2)));
        assert_eq!(mk.expose(), held.output.mk.expose());
    }

    #[test]
    fn unseal_rejects_same_x_with_different_y() {
        let held = ceremony(3, 2);
        let mut u = held.unsealer();
        let nonce = u.nonce().to_owned();
        progress(u.submit(&nonce, &held.doc(0)));
        let twisted = with_share(&held.doc(0), |b| b[5] ^= 0x40);
        assert_eq!(
            u.submit(&nonce, &twisted).unwrap_err(),
            UnsealError::ConflictingX { other_index: 1 }
        );
        // The good share stays counted; the unseal can go on.
        assert_eq!(u.progress(), 1);
        complete(u.submit(&nonce, &held.doc(1)));
    }

    #[test]
    fn unseal_rejects_x_zero() {
        let held = ceremony(3, 2);
        let mut u = held.unsealer();
        let nonce = u.nonce().to_owned();
        let zero = with_share(&held.doc(0), |b| b[32] = 0);
        assert_eq!(u.submit(&nonce, &zero).unwrap_err(), UnsealError::ZeroX);
        assert_eq!(u.progress(), 0);
    }

    #[test]
    fn fewer_than_threshold_shares_never_combine() {
        let held = ceremony(5, 4);
        let mut u = held.unsealer();
        let nonce = u.nonce().to_owned();
        for (i, expected) in [(0, 1), (1, 2), (2, 3)] {
            assert_eq!(progress(u.submit(&nonce, &held.doc(i))), (expected, false));
        }
        // Resubmitting any of the three does not reach 4.
        for i in 0..3 {
            assert_eq!(progress(u.submit(&nonce, &held.doc(i))), (3, true));
        }
    }

    #[test]
    fn a_corrupt_share_fails_the_check_value_resets_progress_and_keeps_sealed() {
        let held = ceremony(3, 2);
        let mut u = held.unsealer();
        let nonce = u.nonce().to_owned();
        progress(u.submit(&nonce, &held.doc(0)));
        let corrupt = with_share(&held.doc(1), |b| b[0] ^= 1);
        assert_eq!(
            u.submit(&nonce, &corrupt).unwrap_err(),
            UnsealError::CheckFailed { threshold: 2 }
        );
        assert_eq!(u.progress(), 0);
        assert_ne!(u.nonce(), nonce);
        // The old nonce is now stale; with the new one, good shares unseal.
        assert!(matches!(
            u.submit(&nonce, &held.doc(0)),
            Err(UnsealError::StaleNonce { .. })
        ));
        let nonce = u.nonce().to_owned();
        progress(u.submit(&nonce, &held.doc(0)));
        complete(u.submit(&nonce, &held.doc(1)));
    }

    #[test]
    fn reset_clears_progress_and_issues_a_new_nonce_and_stale_nonces_are_refused() {
        let held = ceremony(3, 2);
        let mut u = held.unsealer();
        let first = u.nonce().to_owned();
        progress(u.submit(&first, &held.doc(0)));
        let second = u.reset().to_owned();
        assert_ne!(first, second);
        assert_eq!(u.progress(), 0);
        assert_eq!(
            u.submit(&first, &held.doc(1)).unwrap_err(),
            UnsealError::StaleNonce {
                given: nonce_hint(&first)
            }
        );
        assert_eq!(u.progress(), 0);
        assert_eq!(progress(u.submit(&second, &held.doc(1))), (1, false));
    }

    #[test]
    fn one_of_one_and_one_of_n_work_above_the_shamir_layer() {
        let held = ceremony(1, 1);
        let mut u = held.unsealer();
        let nonce = u.nonce().to_owned();
        let mk = complete(u.submit(&nonce, &held.doc(0)));
        assert_eq!(mk.expose(), held.output.mk.expose());

        let held = ceremony(3, 1);
        for i in 0..3 {
            let mut u = held.unsealer();
            let nonce = u.nonce().to_owned();
            complete(u.submit(&nonce, &held.doc(i)));
        }
        // Distinct x per share even though y is the same.
        let xs: std::collections::HashSet<String> = (0..3)
            .map(|i| {
                let v: serde_json::Value = serde_json::from_str(&held.doc(i)).unwrap();
                v["share"].as_str().unwrap()[64..].to_owned()
            })
            .collect();
        assert_eq!(xs.len(), 3);
    }

    #[test]
    fn ceremony_parameters_are_checked() {
        let r = |n: usize| -> Vec<String> {
            (0..n)
                .map(|_| age::x25519::Identity::generate().to_public().to_string())
                .collect()
        };
        let run = |n, m, recipients| {
            run_ceremony(&CeremonyRequest {
                cluster_id: "c".into(),
                region: "r".into(),
                shares: n,
                threshold: m,
                recipients,
                purpose: "shamir".into(),
            })
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
        };
        assert!(run(2, 3, r(2)).contains("below the threshold"));
        assert!(run(2, 0, r(2)).contains("at least 1"));
        assert!(run(256, 2, r(256)).contains("at most 255"));
        assert!(run(3, 2, vec![]).contains("no recipients"));
        assert!(run(3, 2, r(2)).contains("exactly one public key per share"));
        assert!(run(2, 2, vec!["age1nope".into(), r(1).remove(0)])
            .contains("not a valid age public key"));
        assert!(run(1, 1, vec!["ecdsa-sha2 AAAA".into()]).contains("neither an age public key"));
        let one = r(1).remove(0);
        assert!(
            run(2, 2, vec![one.clone(), one.clone()]).contains("same public key as an earlier one")
        );
        // A private key given by mistake is refused and never echoed.
        let secret = age::x25519::Identity::generate();
        use age::secrecy::ExposeSecret;
        let text = secret.to_string().expose_secret().to_owned();
        let e = run(1, 1, vec![text.clone()]);
        assert!(e.contains("PRIVATE key"), "{e}");
        assert!(!e.contains(&text[15..30]), "{e}");
    }

    #[test]
    fn shares_are_encrypted_to_their_holder_only_and_armored() {
        let held = ceremony(2, 2);
        let (_, armored) = &held.output.share_files[0];
        assert!(armored.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
        let wrong: Box<dyn age::Identity> = Box::new(held.identities[1].clone());
        assert!(decrypt_share_file(armored.as_bytes(), &[wrong]).is_err());
        let doc: serde_json::Value = serde_json::from_str(&held.doc(0)).unwrap();
        assert_eq!(doc["format"], SHARE_FORMAT);
        assert_eq!(doc["header"]["index"], 1);
        assert_eq!(doc["header"]["threshold"], 2);
        assert_eq!(
            doc["header"]["recipient_fingerprint"],
            recipient_fingerprint(&held.identities[0].to_public().to_string())
        );
        // The manifest lists each encrypted file's digest and recipient.
        let m = &held.output.manifest.body;
        assert_eq!(
            m.share_list[0].sha256,
            hex::encode(sha256(armored.as_bytes()))
        );
    }

    #[test]
    fn manifest_has_a_check_value_never_the_master_key_and_detects_edits() {
        let held = ceremony(3, 2);
        let m = &held.output.manifest;
        m.verify().unwrap();
        let text = serde_json::to_string(m).unwrap();
        let mk_hex = hex::encode(held.output.mk.expose());
        let hash_hex = hex::encode(sha256(held.output.mk.expose()));
        assert!(!text.contains(&mk_hex) && !text.contains(&hash_hex));
        assert!(m.matches(&held.output.mk));
        assert!(!m.matches(&SecretKey::generate().unwrap()));
        let mut edited = m.clone();
        edited.body.threshold = 1;
        assert!(edited
            .verify()
            .unwrap_err()
            .to_string()
            .contains("signature"));
        let reparsed = Manifest::parse_verified(text.as_bytes()).unwrap();
        assert_eq!(&reparsed, m);
    }

    #[test]
    fn ssh_ed25519_and_ssh_rsa_holders_can_decrypt_their_shares() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        let output = run_ceremony(&CeremonyRequest {
            cluster_id: "c".into(),
            region: "r".into(),
            shares: 2,
            threshold: 2,
            recipients: vec![read("ssh_ed25519.pub"), read("ssh_rsa.pub")],
            purpose: "shamir".into(),
        })
        .unwrap();
        let mut u = Unsealer::new(output.manifest.clone());
        let nonce = u.nonce().to_owned();
        let mut last = None;
        for (i, key) in ["ssh_ed25519", "ssh_rsa"].iter().enumerate() {
            let ids = parse_identities(&read(key)).unwrap();
            let doc = decrypt_share_file(output.share_files[i].1.as_bytes(), &ids).unwrap();
            last = Some(u.submit(&nonce, std::str::from_utf8(doc.expose()).unwrap()));
        }
        assert_eq!(complete(last.unwrap()).expose(), output.mk.expose());
    }

    #[test]
    fn errors_and_debug_never_show_share_bytes() {
        let held = ceremony(2, 2);
        let doc = held.doc(0);
        let parsed: ShareDocument = serde_json::from_str(&doc).unwrap();
        assert!(!format!("{parsed:?}").contains(&parsed.share));
        // A malformed document whose share field has the wrong type: the error quotes no input.
        let bad = doc.replace("\"share\":\"", "\"share\":[\"");
        let mut u = held.unsealer();
        let nonce = u.nonce().to_owned();
        let e = u.submit(&nonce, &bad).unwrap_err().to_string();
        assert!(!e.contains(&parsed.share[..16]), "{e}");
    }
}
