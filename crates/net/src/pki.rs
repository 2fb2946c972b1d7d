//! The development PKI of `openkcm dev`: a local CA, server certificates for `localhost` and `127.0.0.1`, an edge
//! certificate, and one client certificate per `(tenant, service)`. Files are PEM under one directory:
//! `ca.crt`/`ca.key`, `server.crt`/`server.key`, `edge.crt`/`edge.key`, `<tenant>-<service>.crt`/`.key`.
//! Keys are written with mode 0600. This CA is for development; production deployments bring their own PKI.

use crate::identity::valid_name;
use crate::tls::TlsFiles;
use crate::NetError;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

const CA_CN: &str = "OpenKCM development CA";

fn pki_err(what: &str) -> impl Fn(rcgen::Error) -> NetError + '_ {
    move |e| NetError::Pki(format!("cannot {what}: {e}"))
}

/// The development CA and the files it issued.
pub struct DevPki {
    dir: PathBuf,
    ca_key: KeyPair,
    ca_cert: rcgen::Certificate,
}

/// Writes `contents` to `path` so that a crash leaves either the old file or the complete new one: a temporary file
/// is written and synced, then renamed into place.
fn write_atomic(path: &Path, contents: &str, mode: u32) -> Result<(), NetError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |e| NetError::io(format!("cannot write {}", path.display()), e);
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(contents.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(err)?;
    }
    Ok(())
}

fn write_private(path: &Path, contents: &str) -> Result<(), NetError> {
    write_atomic(path, contents, 0o600)
}

fn write_public(path: &Path, contents: &str) -> Result<(), NetError> {
    write_atomic(path, contents, 0o644)
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_CN);
    dn.push(DnType::OrganizationName, "OpenKCM");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = OffsetDateTime::now_utc() - Duration::hours(1);
    params.not_after = OffsetDateTime::now_utc() + Duration::days(3650);
    params
}

impl DevPki {
    /// Opens the CA under `dir`, creating the directory and a new CA if none exists.
    pub fn open_or_create(dir: &Path) -> Result<Self, NetError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| NetError::io(format!("cannot create {}", dir.display()), e))?;
        let key_path = dir.join("ca.key");
        if !key_path.exists() && dir.join("ca.crt").exists() {
            return Err(NetError::Pki(format!(
                "{} is missing but {} exists: restore the CA key, or remove the whole {} folder to issue a new \
                 development PKI (every client certificate then changes)",
                key_path.display(),
                dir.join("ca.crt").display(),
                dir.display()
            )));
        }
        let ca_key = if key_path.exists() {
            let pem = std::fs::read_to_string(&key_path)
                .map_err(|e| NetError::io(format!("cannot read {}", key_path.display()), e))?;
            KeyPair::from_pem(&pem).map_err(|e| {
                NetError::Pki(format!(
                    "cannot read the development CA key {}: {e}",
                    key_path.display()
                ))
            })?
        } else {
            // A new CA: certificates issued by an earlier one would no longer verify, so they are reissued.
            for entry in std::fs::read_dir(dir)
                .map_err(|e| NetError::io(format!("cannot list {}", dir.display()), e))?
            {
                let path = entry
                    .map_err(|e| NetError::io(format!("cannot list {}", dir.display()), e))?
                    .path();
                if path.extension().is_some_and(|x| x == "crt" || x == "key") {
                    std::fs::remove_file(&path).map_err(|e| {
                        NetError::io(format!("cannot remove the stale {}", path.display()), e)
                    })?;
                }
            }
            let key = KeyPair::generate().map_err(pki_err("generate the CA key"))?;
            write_private(&key_path, &key.serialize_pem())?;
            key
        };
        // The issuer object is rebuilt from the fixed CA name and the stored key, so certificates issued after a
        // restart chain to the same ca.crt.
        let ca_cert = ca_params()
            .self_signed(&ca_key)
            .map_err(pki_err("build the CA certificate"))?;
        let crt_path = dir.join("ca.crt");
        if !crt_path.exists() {
            write_public(&crt_path, &ca_cert.pem())?;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            ca_key,
            ca_cert,
        })
    }

    /// Path of the CA certificate.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    fn issue(&self, stem: &str, params: CertificateParams) -> Result<TlsFiles, NetError> {
        let files = TlsFiles {
            ca: self.ca_path(),
            cert: self.dir.join(format!("{stem}.crt")),
            key: self.dir.join(format!("{stem}.key")),
        };
        if files.cert.exists() && files.key.exists() {
            return Ok(files);
        }
        let key = KeyPair::generate().map_err(pki_err("generate a key"))?;
        let cert = params
            .signed_by(&key, &self.ca_cert, &self.ca_key)
            .map_err(pki_err("sign a certificate"))?;
        write_private(&files.key, &key.serialize_pem())?;
        write_public(&files.cert, &cert.pem())?;
        Ok(files)
    }

    fn leaf(cn: &str, sans: Vec<SanType>, eku: ExtendedKeyUsagePurpose) -> CertificateParams {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        params.distinguished_name = dn;
        params.subject_alt_names = sans;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![eku];
        params.not_before = OffsetDateTime::now_utc() - Duration::hours(1);
        params.not_after = OffsetDateTime::now_utc() + Duration::days(365);
        params
    }

    /// The server certificate (both listeners), valid for `localhost` and `127.0.0.1`.
    pub fn server(&self) -> Result<TlsFiles, NetError> {
        let sans = vec![
            SanType::DnsName("localhost".try_into().map_err(pki_err("name localhost"))?),
            SanType::IpAddress(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
        ];
        self.issue(
            "server",
            Self::leaf("localhost", sans, ExtendedKeyUsagePurpose::ServerAuth),
        )
    }

    /// The client certificate of edge `name` (URI SAN `spiffe://openkcm/edge/<name>`).
    pub fn edge(&self, name: &str) -> Result<TlsFiles, NetError> {
        if !valid_name(name) {
            return Err(NetError::Pki(format!(
                "{name:?} is not a valid edge name (use a-z, 0-9 and -)"
            )));
        }
        let uri = format!("spiffe://openkcm/edge/{name}");
        let sans = vec![SanType::URI(
            uri.as_str()
                .try_into()
                .map_err(pki_err("encode the edge URI"))?,
        )];
        self.issue(
            "edge",
            Self::leaf(
                &format!("edge {name}"),
                sans,
                ExtendedKeyUsagePurpose::ClientAuth,
            ),
        )
    }

    /// The client certificate of operator `name` (URI SAN `spiffe://openkcm/operator/<name>`), at
    /// `operator-<name>.crt`: what `openkcm operator …` presents to the Core's operator API.
    pub fn operator(&self, name: &str) -> Result<TlsFiles, NetError> {
        if !valid_name(name) {
            return Err(NetError::Pki(format!(
                "{name:?} is not a valid operator name (use a-z, 0-9 and -)"
            )));
        }
        let uri = format!("spiffe://openkcm/operator/{name}");
        let sans = vec![SanType::URI(
            uri.as_str()
                .try_into()
                .map_err(pki_err("encode the operator URI"))?,
        )];
        self.issue(
            &format!("operator-{name}"),
            Self::leaf(
                &format!("operator {name}"),
                sans,
                ExtendedKeyUsagePurpose::ClientAuth,
            ),
        )
    }

    /// The client certificate of an application of `tenant`'s `service`, at `<tenant>-<service>.crt`.
    pub fn client(&self, tenant: &str, service: &str) -> Result<TlsFiles, NetError> {
        if !valid_name(tenant) || !valid_name(service) {
            return Err(NetError::Pki(format!(
                "{tenant:?}/{service:?} is not a valid tenant/service name (use a-z, 0-9 and -, at most 63 characters)"
            )));
        }
        let uri = format!("spiffe://openkcm/tenant/{tenant}/service/{service}");
        let sans = vec![SanType::URI(
            uri.as_str()
                .try_into()
                .map_err(pki_err("encode the client URI"))?,
        )];
        self.issue(
            &format!("{tenant}-{service}"),
            Self::leaf(
                &format!("{tenant}/{service}"),
                sans,
                ExtendedKeyUsagePurpose::ClientAuth,
            ),
        )
    }
}
