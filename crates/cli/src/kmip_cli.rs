//! `openkcm kmip`: a small KMIP client. Every command prints one JSON object on success; failures print the
//! server's result reason and message and exit non-zero.

use anyhow::{anyhow, bail, Context};
use openkcm_kmip::attributes::{self, Attribute};
use openkcm_kmip::enums::{block_cipher_mode, operation as op, padding_method, revocation_reason};
use openkcm_kmip::payload::{
    self, CipherRequest, CipherResponse, CryptoParams, LocateRequest, RevokeRequest,
};
use openkcm_kmip::{tags as t, KmipError, ProtocolVersion, RequestMessage, ResponseMessage};
use openkcm_net::tls::{self, TlsFiles};
use openkcm_net::KmipClient;
use openkcm_ttlv::{Item, Value};
use serde_json::json;
use std::path::PathBuf;

/// Connection options shared by every `openkcm kmip` command.
#[derive(clap::Args)]
pub struct KmipArgs {
    /// Server address (host:port).
    #[arg(
        long,
        env = "OPENKCM_KMIP_ADDR",
        default_value = "127.0.0.1:5696",
        global = true
    )]
    addr: String,
    /// CA certificate that signed the server's certificate.
    #[arg(
        long,
        env = "OPENKCM_KMIP_CA",
        default_value = "./openkcm-data/pki/ca.crt",
        global = true
    )]
    ca: PathBuf,
    /// Client certificate (names tenant and service).
    #[arg(
        long,
        env = "OPENKCM_KMIP_CERT",
        default_value = "./openkcm-data/pki/demo-default.crt",
        global = true
    )]
    cert: PathBuf,
    /// Client private key.
    #[arg(
        long,
        env = "OPENKCM_KMIP_KEY",
        default_value = "./openkcm-data/pki/demo-default.key",
        global = true
    )]
    key: PathBuf,
    /// Server name to verify in its certificate.
    #[arg(long, default_value = "localhost", global = true)]
    server_name: String,
    /// KMIP protocol version to speak (1.0-1.4, 2.0, 2.1).
    #[arg(long = "kmip-version", default_value = "1.4", global = true)]
    version: String,
    /// Also print the request and response messages in the KMIP XML encoding on stderr (byte strings are shown
    /// as their length; add --xml-secrets to print them in hex, key material included).
    #[arg(long, global = true)]
    xml: bool,
    /// With --xml, print byte strings (keys, ciphertexts) in full.
    #[arg(long, global = true, requires = "xml")]
    xml_secrets: bool,
    #[command(subcommand)]
    command: KmipCommand,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Mode {
    Cbc,
    Gcm,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Reason {
    Unspecified,
    KeyCompromise,
    CessationOfOperation,
    Superseded,
}

#[derive(clap::Subcommand)]
enum KmipCommand {
    /// Create an AES-256 key; prints its unique identifier.
    Create {
        /// Name attribute for Locate.
        #[arg(long)]
        name: Option<String>,
        /// Make it Active at once (Activation Date = now).
        #[arg(long)]
        activate: bool,
    },
    /// Activate a Pre-Active key.
    Activate { uid: String },
    /// Get a key; prints its bytes as hex.
    Get { uid: String },
    /// Print a key's attributes.
    Attributes { uid: String },
    /// Encrypt data with a key.
    Encrypt {
        uid: String,
        /// Plaintext as hex.
        #[arg(long, conflicts_with = "text")]
        data_hex: Option<String>,
        /// Plaintext as UTF-8 text.
        #[arg(long)]
        text: Option<String>,
        /// Cipher mode [default: gcm with KMIP 1.4 and later, cbc before (GCM needs 1.4's tag field)].
        #[arg(long, value_enum)]
        mode: Option<Mode>,
        /// IV/nonce as hex (the server generates one when omitted).
        #[arg(long)]
        iv: Option<String>,
        /// GCM additional authenticated data as hex.
        #[arg(long)]
        aad: Option<String>,
    },
    /// Decrypt data with a key.
    Decrypt {
        uid: String,
        /// Ciphertext as hex.
        #[arg(long)]
        data_hex: String,
        /// Cipher mode [default: gcm with KMIP 1.4 and later, cbc before (GCM needs 1.4's tag field)].
        #[arg(long, value_enum)]
        mode: Option<Mode>,
        /// IV/nonce as hex.
        #[arg(long)]
        iv: String,
        /// GCM tag as hex.
        #[arg(long)]
        tag: Option<String>,
        /// GCM additional authenticated data as hex.
        #[arg(long)]
        aad: Option<String>,
    },
    /// Locate keys by name.
    Locate {
        /// The Name to find (all keys of this identity when omitted).
        #[arg(long)]
        name: Option<String>,
        /// Find this application's service keys (`l3-…`, held by the Crypto Core), the current version first.
        #[arg(long)]
        service_keys: bool,
    },
    /// Revoke a key.
    Revoke {
        uid: String,
        /// Why: a compromise makes the key Compromised, any other reason Deactivated.
        #[arg(long, value_enum, default_value = "cessation-of-operation")]
        reason: Reason,
        /// Free text kept with the revocation.
        #[arg(long)]
        message: Option<String>,
    },
    /// Destroy a key; an Active key is refused (revoke it first).
    Destroy { uid: String },
    /// Re-key: a new key replacing this one (for a data key: fresh bytes, same attributes; for the service's current
    /// service key, an `l3-…` identifier: a new service key version, DESIGN §5.1). Prints the new identifier.
    Rekey {
        uid: String,
        /// Seconds from now until the new key becomes active (KMIP Offset); for a service key, the current version
        /// keeps wrapping until then.
        #[arg(long)]
        offset: Option<u32>,
    },
    /// Ask the server which versions it speaks.
    DiscoverVersions,
}

pub(crate) fn parse_version(s: &str) -> anyhow::Result<ProtocolVersion> {
    let (maj, min) = s
        .split_once('.')
        .ok_or_else(|| anyhow!("--kmip-version must look like 1.4 or 2.1"))?;
    let v = ProtocolVersion::new(maj.parse()?, min.parse()?);
    if !openkcm_kmip::SUPPORTED_VERSIONS.contains(&v) {
        bail!("KMIP version {v} is not supported; use one of 1.0, 1.1, 1.2, 1.3, 1.4, 2.0, 2.1");
    }
    Ok(v)
}

fn unhex(s: &str, what: &str) -> anyhow::Result<Vec<u8>> {
    hex::decode(s).with_context(|| format!("{what} is not valid hex"))
}

fn mode_params(mode: Option<Mode>, version: ProtocolVersion) -> CryptoParams {
    let mode = mode.unwrap_or(if version.has_aead_fields() {
        Mode::Gcm
    } else {
        Mode::Cbc
    });
    match mode {
        Mode::Cbc => CryptoParams {
            mode: Some(block_cipher_mode::CBC),
            padding: Some(padding_method::PKCS5),
            ..CryptoParams::default()
        },
        Mode::Gcm => CryptoParams {
            mode: Some(block_cipher_mode::GCM),
            ..CryptoParams::default()
        },
    }
}

fn uid_req(uid: &str) -> Item {
    payload::uid_payload(t::REQUEST_PAYLOAD, uid)
}

pub async fn run(args: KmipArgs) -> anyhow::Result<()> {
    tls::install_default_provider();
    let version = parse_version(&args.version)?;
    let files = TlsFiles {
        ca: args.ca.clone(),
        cert: args.cert.clone(),
        key: args.key.clone(),
    };
    let config =
        tls::client_config(&files).context("loading the TLS files (--ca, --cert, --key)")?;
    let mut client = KmipClient::connect(&args.addr, config, &args.server_name).await?;
    let (operation, request) = match &args.command {
        KmipCommand::Create { name, activate } => {
            let mut attrs = vec![
                Attribute::new(
                    "Cryptographic Algorithm",
                    Value::Enumeration(openkcm_kmip::enums::algorithm::AES),
                ),
                Attribute::new("Cryptographic Length", Value::Integer(256)),
                Attribute::new(
                    "Cryptographic Usage Mask",
                    Value::Integer(
                        openkcm_kmip::enums::usage_mask::ENCRYPT
                            | openkcm_kmip::enums::usage_mask::DECRYPT,
                    ),
                ),
            ];
            if let Some(n) = name {
                attrs.push(Attribute::name_value(n));
            }
            if *activate {
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                attrs.push(Attribute::new("Activation Date", Value::DateTime(now)));
            }
            (op::CREATE, payload::create_request(version, &attrs))
        }
        KmipCommand::Activate { uid } => (op::ACTIVATE, uid_req(uid)),
        KmipCommand::Get { uid } => (op::GET, uid_req(uid)),
        KmipCommand::Attributes { uid } => (op::GET_ATTRIBUTES, uid_req(uid)),
        KmipCommand::Destroy { uid } => (op::DESTROY, uid_req(uid)),
        KmipCommand::Rekey { uid, offset } => {
            let mut req = uid_req(uid);
            if let (Some(secs), Value::Structure(children)) = (offset, &mut req.value) {
                children.push(Item::new(t::OFFSET, Value::Interval(*secs)));
            }
            (op::REKEY, req)
        }
        KmipCommand::DiscoverVersions => (
            op::DISCOVER_VERSIONS,
            Item::structure(t::REQUEST_PAYLOAD, vec![]),
        ),
        KmipCommand::Encrypt {
            uid,
            data_hex,
            text,
            mode,
            iv,
            aad,
        } => {
            let data = match (data_hex, text) {
                (Some(h), _) => unhex(h, "--data-hex")?,
                (None, Some(s)) => s.as_bytes().to_vec(),
                (None, None) => bail!("give the plaintext with --data-hex or --text"),
            };
            if aad.is_some() && matches!(mode, Some(Mode::Cbc)) {
                bail!("--aad applies to GCM only; CBC has no additional authenticated data");
            }
            let req = CipherRequest {
                uid: Some(uid.clone()),
                params: Some(mode_params(*mode, version)),
                data,
                iv: iv.as_deref().map(|v| unhex(v, "--iv")).transpose()?,
                aad: aad.as_deref().map(|v| unhex(v, "--aad")).transpose()?,
                tag: None,
            };
            (op::ENCRYPT, req.to_item())
        }
        KmipCommand::Decrypt {
            uid,
            data_hex,
            mode,
            iv,
            tag,
            aad,
        } => {
            if (aad.is_some() || tag.is_some()) && matches!(mode, Some(Mode::Cbc)) {
                bail!("--aad and --tag apply to GCM only");
            }
            let req = CipherRequest {
                uid: Some(uid.clone()),
                params: Some(mode_params(*mode, version)),
                data: unhex(data_hex, "--data-hex")?,
                iv: Some(unhex(iv, "--iv")?),
                aad: aad.as_deref().map(|v| unhex(v, "--aad")).transpose()?,
                tag: tag.as_deref().map(|v| unhex(v, "--tag")).transpose()?,
            };
            (op::DECRYPT, req.to_item())
        }
        KmipCommand::Locate { name, service_keys } => {
            let mut attributes: Vec<Attribute> =
                name.iter().map(|n| Attribute::name_value(n)).collect();
            if *service_keys {
                attributes.push(Attribute::new(
                    openkcm_kmip::attributes::ATTR_SERVICE_KEY,
                    Value::Boolean(true),
                ));
            }
            let req = LocateRequest {
                max_items: None,
                offset_items: None,
                attributes,
            };
            (op::LOCATE, req.to_item(version))
        }
        KmipCommand::Revoke {
            uid,
            reason,
            message,
        } => {
            let code = match reason {
                Reason::Unspecified => revocation_reason::UNSPECIFIED,
                Reason::KeyCompromise => revocation_reason::KEY_COMPROMISE,
                Reason::Superseded => 5,
                Reason::CessationOfOperation => 6,
            };
            (
                op::REVOKE,
                RevokeRequest {
                    code,
                    message: message.clone(),
                    // KMIP wants the moment of compromise with a compromise reason; the CLI records "now".
                    compromise_occurrence: (code == revocation_reason::KEY_COMPROMISE)
                        .then(|| time::OffsetDateTime::now_utc().unix_timestamp()),
                }
                .to_item(uid),
            )
        }
    };
    let message = RequestMessage::new(version, vec![(operation, request)]).into_item();
    let dump = |label: &str, item: &Item| {
        if args.xml {
            let text = if args.xml_secrets {
                openkcm_kmip::xml::to_xml(item)
            } else {
                openkcm_kmip::xml::to_xml_redacted(item)
            };
            eprintln!("<!-- {label} -->\n{text}");
        }
    };
    dump("request", &message);
    let reply = client.call(&message).await.map_err(|e| {
        let hint = if e.to_string().contains("alert") {
            " (the server rejected this client's certificate: is it issued by the server's CA and still valid?)"
        } else {
            ""
        };
        anyhow!("{e}{hint}")
    })?;
    dump("response", &reply);
    let response = ResponseMessage::parse(&reply)?;
    let result = response
        .items
        .into_iter()
        .next()
        .map(|i| i.result)
        .unwrap_or_else(|| Err(KmipError::general("the server returned no batch item")));
    let payload = match result {
        Ok(p) => p,
        Err(e) => bail!(
            "the server refused the {} request: {} (result reason 0x{:X}): {}",
            op::name(operation),
            openkcm_kmip::enums::result_reason::name(e.reason),
            e.reason,
            e.message
        ),
    };
    let uid = payload
        .child(t::UNIQUE_IDENTIFIER)
        .and_then(Item::as_text)
        .unwrap_or_default()
        .to_owned();
    let out = match &args.command {
        KmipCommand::Get { .. } => {
            let key = payload::object_bytes(&payload).ok_or_else(|| {
                anyhow!("the response holds no key material (a key registered without its value?)")
            })?;
            json!({ "unique_identifier": uid, "key_hex": hex::encode(key) })
        }
        KmipCommand::Encrypt { .. } | KmipCommand::Decrypt { .. } => {
            let r = CipherResponse::parse(&payload)?;
            let text = match &args.command {
                KmipCommand::Decrypt { .. } => std::str::from_utf8(&r.data).ok().map(str::to_owned),
                _ => None,
            };
            json!({
                "unique_identifier": r.uid,
                "data_hex": hex::encode(&r.data),
                "text": text,
                "iv_hex": r.iv.map(hex::encode),
                "tag_hex": r.tag.map(hex::encode),
            })
        }
        KmipCommand::Locate { .. } => json!({ "unique_identifiers": payload::uids(&payload) }),
        KmipCommand::Attributes { .. } => {
            let attrs = attributes::from_payload(&payload)?;
            let map: serde_json::Map<String, serde_json::Value> = attrs
                .iter()
                .map(|a| (a.name.clone(), attribute_json(&a.value)))
                .collect();
            json!({ "unique_identifier": uid, "attributes": map })
        }
        KmipCommand::DiscoverVersions => {
            let versions: Vec<String> = payload
                .children_with(t::PROTOCOL_VERSION)
                .filter_map(|v| ProtocolVersion::from_item(v).ok())
                .map(|v| v.to_string())
                .collect();
            json!({ "versions": versions })
        }
        _ => json!({ "unique_identifier": uid }),
    };
    let mut out = out;
    if let Some(map) = out.as_object_mut() {
        map.retain(|_, v| !v.is_null());
    }
    // A closed pipe (`openkcm kmip locate | head`) ends the output quietly; println! would panic.
    {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        match writeln!(stdout, "{out}").and_then(|()| stdout.flush()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
            _ => {}
        }
    }
    Ok(())
}

fn attribute_json(item: &Item) -> serde_json::Value {
    match &item.value {
        Value::Structure(children) => serde_json::Value::Object(
            children
                .iter()
                .map(|c| {
                    (
                        openkcm_kmip::tags::name(c.tag)
                            .unwrap_or("Unknown")
                            .to_owned(),
                        attribute_json(c),
                    )
                })
                .collect(),
        ),
        Value::Integer(v) => json!(v),
        Value::LongInteger(v) | Value::DateTime(v) | Value::DateTimeExtended(v) => json!(v),
        Value::Enumeration(v) | Value::Interval(v) => json!(v),
        Value::Boolean(v) => json!(v),
        Value::TextString(s) => json!(s),
        Value::ByteString(b) | Value::BigInteger(b) => json!(hex::encode(b)),
    }
}
