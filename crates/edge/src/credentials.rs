//! KMIP request credentials (Authentication in the request header): Username and Password, or Device credentials.
//!
//! Clients are authenticated by their certificate; a credential adds a principal inside the certificate's
//! `(tenant, service)`. The operator lists the accepted credentials in a JSON file (`--kmip-credentials`), each with
//! a salted PBKDF2-HMAC-SHA-256 hash of its password, never the password. A request with a credential the file
//! does not accept is refused with Authentication Not Successful. Objects created under a principal belong to it:
//! other principals (and requests without a credential) are refused with Permission Denied.

use openkcm_kmip::enums::result_reason as rr;
use openkcm_kmip::{tags as t, KmipError};
use openkcm_ttlv::Item;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;

/// PBKDF2 iterations of newly hashed passwords.
pub const ITERATIONS: u32 = 100_000;

/// One accepted credential as stored in the credentials file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CredentialEntry {
    /// `username` or `device`.
    pub kind: String,
    /// The Username, or the Device Serial Number.
    pub name: String,
    /// Salt (hex).
    pub salt: String,
    /// PBKDF2-HMAC-SHA-256 of the password (hex).
    pub hash: String,
    /// PBKDF2 iterations.
    pub iterations: u32,
}

impl CredentialEntry {
    /// A new entry for `kind`/`name` with a fresh salt (the password itself is not kept).
    pub fn new(kind: &str, name: &str, password: &str) -> Result<Self, KmipError> {
        let mut salt = [0u8; 16];
        openkcm_crypto::aes::fill_random(&mut salt)
            .map_err(|e| KmipError::crypto(e.to_string()))?;
        let hash = openkcm_crypto::aes::pbkdf2_sha256(password.as_bytes(), &salt, ITERATIONS);
        Ok(Self {
            kind: kind.into(),
            name: name.into(),
            salt: hex::encode(salt),
            hash: hex::encode(hash),
            iterations: ITERATIONS,
        })
    }
}

/// The credentials file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CredentialsFile {
    /// Accepted credentials.
    pub credentials: Vec<CredentialEntry>,
}

/// The accepted credentials, with a cache of passwords already verified (by their SHA-256, so that PBKDF2 runs
/// once per credential, not per request).
pub struct KmipCredentials {
    entries: Vec<CredentialEntry>,
    verified: Mutex<HashMap<(String, String), [u8; 32]>>,
}

impl std::fmt::Debug for KmipCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KmipCredentials({} accepted)", self.entries.len())
    }
}

impl KmipCredentials {
    /// Credentials from a parsed file.
    pub fn new(file: CredentialsFile) -> Result<Self, String> {
        for e in &file.credentials {
            if e.kind != "username" && e.kind != "device" {
                return Err(format!(
                    "credential {:?}: kind must be \"username\" or \"device\"",
                    e.name
                ));
            }
            if hex::decode(&e.salt).is_err()
                || hex::decode(&e.hash).map(|h| h.len()) != Ok(32)
                || e.iterations == 0
            {
                return Err(format!(
                    "credential {:?}: salt and hash must be hex (hash 32 bytes) and iterations positive",
                    e.name
                ));
            }
        }
        Ok(Self {
            entries: file.credentials,
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// The principal a request header's Authentication names, after checking its password; `None` when the
    /// request carries no credential.
    pub fn principal(&self, request: &Item) -> Result<Option<String>, KmipError> {
        let Some(cred) = request
            .child(t::REQUEST_HEADER)
            .and_then(|h| h.child(t::AUTHENTICATION))
            .and_then(|a| a.child(t::CREDENTIAL))
        else {
            return Ok(None);
        };
        let refused =
            |why: &str| KmipError::new(rr::AUTHENTICATION_NOT_SUCCESSFUL, why.to_string());
        let kind = match cred.child(t::CREDENTIAL_TYPE).and_then(Item::as_enum) {
            Some(1) => "username",
            Some(2) => "device",
            _ => {
                return Err(refused(
                    "only Username and Password or Device credentials are accepted",
                ))
            }
        };
        let value = cred
            .child(t::CREDENTIAL_VALUE)
            .ok_or_else(|| refused("the Credential has no Credential Value"))?;
        let name_tag = if kind == "username" {
            t::USERNAME
        } else {
            t::DEVICE_SERIAL_NUMBER
        };
        let name = value
            .child(name_tag)
            .and_then(Item::as_text)
            .ok_or_else(|| refused("the Credential names no user or device"))?;
        let password = value
            .child(t::PASSWORD)
            .and_then(Item::as_text)
            .unwrap_or_default();
        let digest = openkcm_crypto::aes::sha256(password.as_bytes());
        let key = (kind.to_string(), name.to_string());
        if let Ok(cache) = self.verified.lock() {
            if let Some(d) = cache.get(&key) {
                if constant_time_eq(d, &digest) {
                    return Ok(Some(format!("{kind}:{name}")));
                }
            }
        }
        let entry = self
            .entries
            .iter()
            .find(|e| e.kind == kind && e.name == name);
        let ok = entry.is_some_and(|e| {
            let salt = hex::decode(&e.salt).unwrap_or_default();
            let hash = hex::decode(&e.hash).unwrap_or_default();
            openkcm_crypto::aes::pbkdf2_sha256_verify(
                password.as_bytes(),
                &salt,
                e.iterations,
                &hash,
            )
        });
        if !ok {
            // The same answer for an unknown name and a wrong password.
            return Err(refused("the credential was not accepted"));
        }
        if let Ok(mut cache) = self.verified.lock() {
            cache.insert(key, digest);
        }
        Ok(Some(format!("{kind}:{name}")))
    }
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use openkcm_ttlv::Value;

    fn request(kind: u32, name_tag: u32, name: &str, password: &str) -> Item {
        Item::structure(
            t::REQUEST_MESSAGE,
            vec![Item::structure(
                t::REQUEST_HEADER,
                vec![Item::structure(
                    t::AUTHENTICATION,
                    vec![Item::structure(
                        t::CREDENTIAL,
                        vec![
                            Item::new(t::CREDENTIAL_TYPE, Value::Enumeration(kind)),
                            Item::structure(
                                t::CREDENTIAL_VALUE,
                                vec![
                                    Item::new(name_tag, Value::TextString(name.into())),
                                    Item::new(t::PASSWORD, Value::TextString(password.into())),
                                ],
                            ),
                        ],
                    )],
                )],
            )],
        )
    }

    #[test]
    fn passwords_are_checked_and_the_same_refusal_hides_which_part_was_wrong() {
        let creds = KmipCredentials::new(CredentialsFile {
            credentials: vec![
                CredentialEntry::new("username", "Fred", "password1").unwrap(),
                CredentialEntry::new("device", "serNum1", "secret").unwrap(),
            ],
        })
        .unwrap();
        let fred = request(1, t::USERNAME, "Fred", "password1");
        assert_eq!(
            creds.principal(&fred).unwrap().as_deref(),
            Some("username:Fred")
        );
        assert_eq!(
            creds.principal(&fred).unwrap().as_deref(),
            Some("username:Fred"),
            "cached"
        );
        let wrong = creds
            .principal(&request(1, t::USERNAME, "Fred", "password2"))
            .unwrap_err();
        let unknown = creds
            .principal(&request(1, t::USERNAME, "Wilma", "password1"))
            .unwrap_err();
        assert_eq!(wrong.reason, rr::AUTHENTICATION_NOT_SUCCESSFUL);
        assert_eq!(wrong.message, unknown.message);
        assert_eq!(
            creds
                .principal(&request(2, t::DEVICE_SERIAL_NUMBER, "serNum1", "secret"))
                .unwrap()
                .as_deref(),
            Some("device:serNum1")
        );
        assert!(creds
            .principal(&Item::structure(t::REQUEST_MESSAGE, vec![]))
            .unwrap()
            .is_none());
        // The file never holds a password.
        let json =
            serde_json::to_string(&CredentialEntry::new("username", "x", "hunter2").unwrap())
                .unwrap();
        assert!(!json.contains("hunter2"));
    }
}
