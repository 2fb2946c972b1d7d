//! Who is on the other end of a connection, from the client certificate alone (DESIGN §10).
//!
//! Applications are named `(tenant, service)`: URI SAN `spiffe://openkcm/tenant/<tenant>/service/<service>`,
//! else CN `<tenant>/<service>`. Edges present `spiffe://openkcm/edge/<name>`, operators
//! `spiffe://openkcm/operator/<name>`.

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The authenticated identity of a peer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PeerIdentity {
    /// An application of a tenant's service.
    Application {
        /// Tenant name.
        tenant: String,
        /// Service name inside the tenant.
        service: String,
    },
    /// A Crypto Edge node, trusted by the Core to act on behalf of applications it authenticated.
    Edge {
        /// Edge name.
        name: String,
    },
    /// A human operator (or their automation) using the Core's operator API: init, unseal, seal. Operators have
    /// no access to keys; the KMIP listeners refuse them.
    Operator {
        /// Operator name.
        name: String,
    },
}

impl std::fmt::Display for PeerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Application { tenant, service } => write!(f, "{tenant}/{service}"),
            Self::Edge { name } => write!(f, "edge:{name}"),
            Self::Operator { name } => write!(f, "operator:{name}"),
        }
    }
}

/// Whether `s` is a valid tenant, service or edge name: 1–63 characters of `a-z`, `0-9` and `-`, not starting
/// with `-`. Names appear in file names and storage keys, so nothing else is allowed.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && !s.starts_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl PeerIdentity {
    /// Parses `tenant/service` (the on-behalf-of form and the CN form).
    pub fn application_from_str(s: &str) -> Option<Self> {
        let (tenant, service) = s.split_once('/')?;
        (valid_name(tenant) && valid_name(service)).then(|| Self::Application {
            tenant: tenant.to_owned(),
            service: service.to_owned(),
        })
    }

    fn from_spiffe(uri: &str) -> Option<Self> {
        let path = uri.strip_prefix("spiffe://openkcm/")?;
        let parts: Vec<&str> = path.split('/').collect();
        match parts.as_slice() {
            ["tenant", tenant, "service", service] if valid_name(tenant) && valid_name(service) => {
                Some(Self::Application {
                    tenant: (*tenant).to_owned(),
                    service: (*service).to_owned(),
                })
            }
            ["edge", name] if valid_name(name) => Some(Self::Edge {
                name: (*name).to_owned(),
            }),
            ["operator", name] if valid_name(name) => Some(Self::Operator {
                name: (*name).to_owned(),
            }),
            _ => None,
        }
    }

    /// The identity a DER certificate names, or `None` when it names none this product recognises.
    ///
    /// A certificate must name exactly one identity: several different OpenKCM URIs, or several common names
    /// when no URI names one, are ambiguous and give `None`.
    pub fn from_certificate(der: &[u8]) -> Option<Self> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let mut from_uris: Vec<Self> = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                if let GeneralName::URI(uri) = name {
                    if let Some(id) = Self::from_spiffe(uri) {
                        if !from_uris.contains(&id) {
                            from_uris.push(id);
                        }
                    }
                }
            }
        }
        match from_uris.len() {
            1 => return from_uris.pop(),
            0 => {}
            _ => return None,
        }
        let mut cns = cert.subject().iter_common_name();
        let cn = cns.next()?.as_str().ok()?;
        if cns.next().is_some() {
            return None;
        }
        Self::application_from_str(cn)
    }
}
