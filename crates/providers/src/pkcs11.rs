//! The `pkcs11` driver: an AES key in a hardware security module, through PKCS#11 (`cryptoki`). Tested against
//! SoftHSM2.
//!
//! Encrypt wraps the plaintext with **AES key wrap with padding** (RFC 5649, `CKM_AES_KEY_WRAP_PAD`) under the HSM
//! key: the plaintext, prefixed by the SHA-256 of the canonical context, becomes a short-lived session object that
//! `C_WrapKey` wraps; decrypt unwraps into a session object, reads it, destroys it, and checks the context prefix
//! in constant time, so a ciphertext only decrypts with the same context. The key wrap's integrity check refuses
//! any altered ciphertext.
//!
//! Sessions are pooled and logged in once (the login belongs to the application, not the session); key handles are
//! looked up once per label and cached, so an operation costs no object search. PKCS#11 calls block: they run on
//! tokio's blocking threads.

use crate::{KeyDescription, KeyProvider, KeyRef, ProviderError};
use async_trait::async_trait;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use openkcm_crypto::SecretBytes;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

/// Driver name.
pub const NAME: &str = "pkcs11";
/// Sessions kept open for reuse.
const POOL: usize = 4;

/// How to reach the HSM.
#[derive(Clone)]
pub struct Pkcs11Config {
    /// The PKCS#11 module (e.g. `/usr/lib/softhsm/libsofthsm2.so`).
    pub module: PathBuf,
    /// Label of the token holding the keys.
    pub token_label: String,
    /// User PIN.
    pub pin: Zeroizing<String>,
}

impl std::fmt::Debug for Pkcs11Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Config")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("pin", &"[redacted]")
            .finish()
    }
}

struct Inner {
    ctx: Pkcs11,
    slot: Slot,
    pin: Zeroizing<String>,
    sessions: Mutex<Vec<Session>>,
    handles: Mutex<HashMap<String, ObjectHandle>>,
}

/// A token of a PKCS#11 module.
pub struct Pkcs11Provider {
    inner: Arc<Inner>,
}

fn p11(what: &str, e: P11Error) -> ProviderError {
    let detail = format!("PKCS#11 {what}: {e}");
    match &e {
        P11Error::Pkcs11(rv, _) => match rv {
            RvError::PinIncorrect
            | RvError::PinExpired
            | RvError::PinLocked
            | RvError::UserNotLoggedIn
            | RvError::KeyFunctionNotPermitted
            | RvError::KeyNotWrappable
            | RvError::KeyUnextractable => ProviderError::Denied(detail),
            RvError::KeyHandleInvalid | RvError::ObjectHandleInvalid => {
                ProviderError::NotFound(detail)
            }
            RvError::DeviceError
            | RvError::DeviceMemory
            | RvError::DeviceRemoved
            | RvError::TokenNotPresent
            | RvError::TokenNotRecognized
            | RvError::SessionClosed
            | RvError::SessionHandleInvalid
            | RvError::SessionCount
            | RvError::GeneralError
            | RvError::HostMemory => ProviderError::Unavailable(detail),
            _ => ProviderError::Invalid(detail),
        },
        P11Error::LibraryLoading(_) => ProviderError::Unavailable(detail),
        _ => ProviderError::Invalid(detail),
    }
}

impl Pkcs11Provider {
    /// Loads the module, finds the token by label and logs in.
    pub fn open(config: &Pkcs11Config) -> Result<Self, ProviderError> {
        // A module that is missing or cannot be loaded is a configuration error: retrying does not help.
        let ctx = Pkcs11::new(&config.module).map_err(|e| {
            ProviderError::Invalid(format!(
                "cannot load the PKCS#11 module {}: {e}",
                config.module.display()
            ))
        })?;
        match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(P11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => return Err(p11("C_Initialize", e)),
        }
        let mut slot = None;
        for s in ctx
            .get_slots_with_token()
            .map_err(|e| p11("C_GetSlotList", e))?
        {
            let info = ctx
                .get_token_info(s)
                .map_err(|e| p11("C_GetTokenInfo", e))?;
            if info.label().trim() == config.token_label {
                slot = Some(s);
                break;
            }
        }
        let slot = slot.ok_or_else(|| {
            ProviderError::NotFound(format!(
                "no token labelled {:?} in {}",
                config.token_label,
                config.module.display()
            ))
        })?;
        let inner = Arc::new(Inner {
            ctx,
            slot,
            pin: config.pin.clone(),
            sessions: Mutex::new(Vec::new()),
            handles: Mutex::new(HashMap::new()),
        });
        // One session now: it logs the application in (and proves the PIN).
        let session = inner.session()?;
        inner.give_back(session);
        Ok(Self { inner })
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T, ProviderError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, ProviderError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| ProviderError::Unavailable(format!("the PKCS#11 task failed: {e}")))?
    }

    fn check_ref(key: &KeyRef) -> Result<(), ProviderError> {
        crate::check_provider(key, NAME)?;
        if key.key_id.is_empty() || key.key_id.len() > 128 {
            return Err(ProviderError::Invalid(
                "a PKCS#11 key label must be 1 to 128 characters".into(),
            ));
        }
        Ok(())
    }

    /// Lookups of key labels in the token so far (the cache makes it one per label).
    pub fn lookups(&self) -> usize {
        self.inner.lookups()
    }
}

impl Inner {
    fn session(&self) -> Result<Session, ProviderError> {
        if let Some(s) = self.sessions.lock().ok().and_then(|mut p| p.pop()) {
            return Ok(s);
        }
        let session = self
            .ctx
            .open_rw_session(self.slot)
            .map_err(|e| p11("C_OpenSession", e))?;
        let pin = AuthPin::new(self.pin.as_str().to_owned().into());
        match session.login(UserType::User, Some(&pin)) {
            Ok(()) | Err(P11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
            Err(e) => Err(p11("C_Login", e)),
        }
    }

    fn give_back(&self, session: Session) {
        if let Ok(mut pool) = self.sessions.lock() {
            if pool.len() < POOL {
                pool.push(session);
            }
        }
    }

    fn lookups(&self) -> usize {
        self.handles.lock().map(|h| h.len()).unwrap_or(0)
    }

    /// The handle of the secret key labelled `label`, cached after the first lookup.
    fn key(&self, session: &Session, label: &str) -> Result<ObjectHandle, ProviderError> {
        if let Some(h) = self.handles.lock().ok().and_then(|h| h.get(label).copied()) {
            return Ok(h);
        }
        let found = session
            .find_objects(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::Label(label.as_bytes().to_vec()),
            ])
            .map_err(|e| p11("C_FindObjects", e))?;
        let handle = match found.as_slice() {
            [h] => *h,
            [] => {
                return Err(ProviderError::NotFound(format!(
                    "no secret key labelled {label:?} on the token"
                )))
            }
            _ => {
                return Err(ProviderError::Invalid(format!(
                    "{} secret keys are labelled {label:?}: the label must name one key",
                    found.len()
                )))
            }
        };
        if let Ok(mut h) = self.handles.lock() {
            h.insert(label.to_owned(), handle);
        }
        Ok(handle)
    }

    /// Runs `f` with a pooled session and the key's handle. A handle that went stale (the key was deleted and the
    /// cache still named it) is looked up once more.
    fn with_key<T>(
        &self,
        label: &str,
        f: impl Fn(&Session, ObjectHandle) -> Result<T, ProviderError>,
    ) -> Result<T, ProviderError> {
        let session = self.session()?;
        let result = self.key(&session, label).and_then(|h| f(&session, h));
        let result = match result {
            Err(ProviderError::NotFound(_)) if self.forget(label) => {
                self.key(&session, label).and_then(|h| f(&session, h))
            }
            other => other,
        };
        // A session the token closed is not returned to the pool.
        if !matches!(result, Err(ProviderError::Unavailable(_))) {
            self.give_back(session);
        }
        result
    }

    fn forget(&self, label: &str) -> bool {
        self.handles
            .lock()
            .map(|mut h| h.remove(label).is_some())
            .unwrap_or(false)
    }
}

fn secret_template(value: Vec<u8>) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::Token(false),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
        Attribute::Value(value),
    ]
}

#[async_trait]
impl KeyProvider for Pkcs11Provider {
    fn name(&self) -> &str {
        NAME
    }

    async fn describe(&self, key: &KeyRef) -> Result<KeyDescription, ProviderError> {
        Self::check_ref(key)?;
        let label = key.key_id.clone();
        self.blocking(move |inner| {
            inner.with_key(&label, |session, handle| {
                let attrs = session
                    .get_attributes(handle, &[AttributeType::Wrap, AttributeType::Unwrap])
                    .map_err(|e| p11("C_GetAttributeValue", e))?;
                let enabled = attrs
                    .iter()
                    .all(|a| !matches!(a, Attribute::Wrap(false) | Attribute::Unwrap(false)));
                Ok(KeyDescription {
                    key_id: label.clone(),
                    enabled,
                    version: None,
                })
            })
        })
        .await
    }

    async fn encrypt(
        &self,
        key: &KeyRef,
        plaintext: &[u8],
        context: &[(String, String)],
    ) -> Result<Vec<u8>, ProviderError> {
        Self::check_ref(key)?;
        let label = key.key_id.clone();
        let value = crate::context_prefixed(context, plaintext)?;
        self.blocking(move |inner| {
            inner.with_key(&label, |session, wrapping| {
                let object = session
                    .create_object(&secret_template(value.to_vec()))
                    .map_err(|e| p11("C_CreateObject", e))?;
                let wrapped = session.wrap_key(&Mechanism::AesKeyWrapPad, wrapping, object);
                let _ = session.destroy_object(object);
                wrapped.map_err(|e| p11("C_WrapKey (AES key wrap with padding)", e))
            })
        })
        .await
    }

    async fn decrypt(
        &self,
        key: &KeyRef,
        ciphertext: &[u8],
        context: &[(String, String)],
    ) -> Result<SecretBytes, ProviderError> {
        Self::check_ref(key)?;
        let label = key.key_id.clone();
        let wrapped = ciphertext.to_vec();
        let value = self
            .blocking(move |inner| {
                inner.with_key(&label, |session, wrapping| {
                    let object = session
                        .unwrap_key(
                            &Mechanism::AesKeyWrapPad,
                            wrapping,
                            &wrapped,
                            &secret_template(Vec::new())[..5],
                        )
                        .map_err(|e| match e {
                            // SoftHSM2 reports a failed integrity check of the key wrap as a general error: for
                            // an unwrap that is the ciphertext's fault, not the device's.
                            P11Error::Pkcs11(RvError::GeneralError, _) => ProviderError::Invalid(
                                "the ciphertext does not unwrap under this key: it was altered, or made under another key".into(),
                            ),
                            e => p11("C_UnwrapKey (AES key wrap with padding)", e),
                        })?;
                    let attrs = session.get_attributes(object, &[AttributeType::Value]);
                    let _ = session.destroy_object(object);
                    let attrs = attrs.map_err(|e| p11("C_GetAttributeValue", e))?;
                    attrs
                        .into_iter()
                        .find_map(|a| match a {
                            Attribute::Value(v) => Some(Zeroizing::new(v)),
                            _ => None,
                        })
                        .ok_or_else(|| ProviderError::Unavailable("the unwrapped object has no value".into()))
                })
            })
            .await?;
        crate::strip_context_prefix(context, &value)
    }

    async fn create(&self, key_id: &str) -> Result<KeyRef, ProviderError> {
        let key = KeyRef {
            provider: NAME.into(),
            key_id: key_id.to_owned(),
            region: None,
        };
        Self::check_ref(&key)?;
        let label = key_id.to_owned();
        self.blocking(move |inner| {
            let session = inner.session()?;
            let result = session
                .generate_key(
                    &Mechanism::AesKeyGen,
                    &[
                        Attribute::Token(true),
                        Attribute::Private(true),
                        Attribute::Sensitive(true),
                        Attribute::Extractable(false),
                        Attribute::Wrap(true),
                        Attribute::Unwrap(true),
                        Attribute::ValueLen(32.into()),
                        Attribute::Label(label.as_bytes().to_vec()),
                    ],
                )
                .map_err(|e| p11("C_GenerateKey", e));
            inner.give_back(session);
            result.map(|_| ())
        })
        .await?;
        Ok(key)
    }
}
