//! The attributes and lifecycle state of one L4, as stored (JSON) next to its wrapped key in the vault.

use crate::objects::SplitInfo;
use openkcm_kmip::attributes::Attribute;
use openkcm_kmip::enums::{algorithm, object_type, state};
use openkcm_kmip::tags as t;
use openkcm_kmip::ProtocolVersion;
use openkcm_ttlv::{Item, Value};
use serde::{Deserialize, Serialize};

/// A client-supplied attribute the edge keeps but does not interpret.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExtraAttr {
    /// Attribute name.
    pub name: String,
    /// TTLV encoding of the value (hex).
    pub value_ttlv: String,
}

/// Stored attributes of an L4 (field names follow the KMIP attributes they hold). Empty and false fields are left
/// out of the stored JSON (they read back as their defaults), which keeps a million keys small (DESIGN §15).
#[allow(missing_docs)]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct L4Meta {
    pub service: String,
    /// Object Type (Symmetric Key, Secret Data, Opaque Object).
    #[serde(default = "default_object_type")]
    pub object_type: u32,
    /// The Key Format Type a registered object came in (returned by Get unless another is asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_format: Option<u32>,
    /// Secret Data Type or Opaque Data Type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_type: Option<u32>,
    /// SHA-256 of the object's bytes (the Digest attribute), hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Fresh: not yet served to a client by Get (KMIP 1.1).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fresh: bool,
    /// Whether the server generated the key material (then the Random Number Generator attribute applies).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub server_generated: bool,
    /// Original Creation Date (KMIP 1.2): when the object first existed, kept across Re-key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_creation_date: Option<i64>,
    /// The Key Wrapping Data (TTLV, hex) of a key registered wrapped: Get with Key Wrap Type As Registered wraps
    /// it the same way again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_wrapping: Option<String>,
    /// Sensitive (KMIP 1.4): the key leaves the server only wrapped.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
    /// Not Extractable (KMIP 1.4 Extractable false): the key never leaves the server, even wrapped.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not_extractable: bool,
    /// Always Sensitive: Sensitive since the object was made.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub always_sensitive: bool,
    /// Never Extractable: not extractable since the object was made.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub never_extractable: bool,
    /// The credential principal that created the object (`username:Fred`), if it was created under one: only that
    /// principal may use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// False for a key registered without its Key Value (KMIP 1.2 Key Value Present).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub key_value_absent: bool,
    /// When Locate last handed this object out as a Group Member Default (round robin), in nanoseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_located_nanos: Option<u64>,
    pub state: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    pub algorithm: u32,
    pub length: i32,
    pub usage_mask: i32,
    pub initial_date: i64,
    /// Creation time in nanoseconds, for ordering keys created within the same second.
    #[serde(default)]
    pub created_nanos: u64,
    pub last_change_date: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_date: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deactivation_date: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compromise_date: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compromise_occurrence_date: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destroy_date: Option<i64>,
    /// Archive Date: set while the object is in archival storage (Archive; Recover clears it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_date: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_reason: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_message: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra: Vec<ExtraAttr>,
    /// A Split Key object: how it was split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitInfo>,
    /// A Template object (KMIP 1.x): the attributes it gives the objects created or registered with it (its own
    /// Names are in `names`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub template: Vec<ExtraAttr>,
}

impl ExtraAttr {
    /// A kept attribute.
    pub fn of(a: &Attribute) -> Self {
        Self {
            name: a.name.clone(),
            value_ttlv: hex::encode(openkcm_ttlv::encode(&a.value)),
        }
    }

    /// The attribute back, or None if its stored encoding is damaged.
    pub fn attribute(&self) -> Option<Attribute> {
        let bytes = hex::decode(&self.value_ttlv).ok()?;
        let item = openkcm_ttlv::decode(&bytes, &openkcm_ttlv::Limits::default()).ok()?;
        Some(Attribute::new(&self.name, item.value))
    }
}

/// Lease Time every object carries: how long a client may use a key it obtained before asking again.
pub const LEASE_TIME_SECS: u32 = 3600;
const RNG_ALGORITHM_DRBG: u32 = 0x03;
const DRBG_ALGORITHM_CTR: u32 = 0x05;

/// The Usage Limits structure: total, count left, unit.
pub fn usage_limits_item(total: i64, count: i64, unit: u32) -> Item {
    Item::structure(
        t::ATTRIBUTE_VALUE,
        vec![
            Item::new(t::USAGE_LIMITS_TOTAL, Value::LongInteger(total)),
            Item::new(t::USAGE_LIMITS_COUNT, Value::LongInteger(count)),
            Item::new(t::USAGE_LIMITS_UNIT, Value::Enumeration(unit)),
        ],
    )
}

fn default_object_type() -> u32 {
    object_type::SYMMETRIC_KEY
}

impl L4Meta {
    /// The state now: a Pre-Active key whose Activation Date has arrived is Active (KMIP's time-driven transition).
    /// Likewise a Pre-Active or Active key whose Deactivation Date has arrived is Deactivated.
    pub fn effective_state(&self, now: i64) -> u32 {
        let active = match (self.state, self.activation_date) {
            (state::PRE_ACTIVE, Some(at)) if at <= now => state::ACTIVE,
            (s, _) => s,
        };
        match (active, self.deactivation_date) {
            (state::PRE_ACTIVE | state::ACTIVE, Some(at)) if at <= now => state::DEACTIVATED,
            (s, _) => s,
        }
    }

    /// Every attribute of the key, as Get Attributes returns them.
    /// Every attribute of the key, as Get Attributes returns them, limited to those `version` defines.
    pub fn attributes(&self, uid: &str, now: i64) -> Vec<Attribute> {
        self.attributes_for(uid, now, ProtocolVersion::new(2, 0))
    }

    /// Every attribute of the object that exists in `version`.
    pub fn attributes_for(&self, uid: &str, now: i64, version: ProtocolVersion) -> Vec<Attribute> {
        if self.object_type == object_type::TEMPLATE {
            return self.template_object_attributes(uid);
        }
        let mut a = self.base_attributes(uid, now, version);
        let at_least = |major, minor| version >= ProtocolVersion::new(major, minor);
        a.push(Attribute::new(
            "Lease Time",
            Value::Interval(LEASE_TIME_SECS),
        ));
        if at_least(1, 1) {
            a.push(Attribute::new("Fresh", Value::Boolean(self.fresh)));
        }
        if at_least(1, 2) {
            // Set for objects the server made and for registered objects whose client gave one.
            if let Some(d) = self.original_creation_date {
                a.push(Attribute::new("Original Creation Date", Value::DateTime(d)));
            }
            if self.key_value_absent {
                a.push(Attribute::new("Key Value Present", Value::Boolean(false)));
            }
        }
        // A registered key may carry the client's description of its generator (kept with the custom attributes).
        let client_rng = self
            .extra
            .iter()
            .any(|e| e.name == "Random Number Generator");
        if at_least(1, 3) && self.server_generated && !client_rng {
            a.push(Attribute::new(
                "Random Number Generator",
                Value::Structure(vec![
                    // aws-lc's CTR_DRBG with AES-256 (NIST SP 800-90A).
                    Item::new(t::RNG_ALGORITHM, Value::Enumeration(RNG_ALGORITHM_DRBG)),
                    Item::new(
                        t::CRYPTOGRAPHIC_ALGORITHM,
                        Value::Enumeration(algorithm::AES),
                    ),
                    Item::new(t::CRYPTOGRAPHIC_LENGTH, Value::Integer(256)),
                    Item::new(t::DRBG_ALGORITHM, Value::Enumeration(DRBG_ALGORITHM_CTR)),
                ]),
            ));
        }
        if at_least(1, 4) && self.object_type == object_type::SYMMETRIC_KEY {
            a.push(Attribute::new("Sensitive", Value::Boolean(self.sensitive)));
            a.push(Attribute::new(
                "Always Sensitive",
                Value::Boolean(self.always_sensitive),
            ));
            a.push(Attribute::new(
                "Extractable",
                Value::Boolean(!self.not_extractable),
            ));
            a.push(Attribute::new(
                "Never Extractable",
                Value::Boolean(self.never_extractable),
            ));
        }
        // Version discipline: a client never sees an attribute its protocol version does not define (a 1.4 client's
        // Description is kept but not shown to a 1.2 client; Operation Policy Name is not shown to 2.x clients).
        a.retain(|attr| openkcm_kmip::attribute_names::defined_in(&attr.name, version));
        a
    }

    /// A Template's own attributes: it has no key, no usage and no lifecycle, only its identity and names (the
    /// attributes it carries for other objects are returned by Get, inside the Template).
    fn template_object_attributes(&self, uid: &str) -> Vec<Attribute> {
        let mut a = vec![
            Attribute::new("Unique Identifier", Value::TextString(uid.into())),
            Attribute::new("Object Type", Value::Enumeration(self.object_type)),
            Attribute::new("Initial Date", Value::DateTime(self.initial_date)),
            Attribute::new("Last Change Date", Value::DateTime(self.last_change_date)),
            Attribute::new("Lease Time", Value::Interval(LEASE_TIME_SECS)),
        ];
        for (i, n) in self.names.iter().enumerate() {
            let mut name = Attribute::name_value(n);
            name.index = (i > 0).then_some(i as i32);
            a.push(name);
        }
        a.extend(self.extra.iter().filter_map(ExtraAttr::attribute));
        a
    }

    /// The attributes a Template gives the objects made with it, in the order they were registered.
    pub fn template_attributes(&self) -> Vec<Attribute> {
        self.template
            .iter()
            .filter_map(ExtraAttr::attribute)
            .collect()
    }

    fn base_attributes(&self, uid: &str, now: i64, version: ProtocolVersion) -> Vec<Attribute> {
        let mut a = vec![
            Attribute::new("Unique Identifier", Value::TextString(uid.into())),
            Attribute::new("Object Type", Value::Enumeration(self.object_type)),
        ];
        if self.algorithm != 0 {
            a.push(Attribute::new(
                "Cryptographic Algorithm",
                Value::Enumeration(self.algorithm),
            ));
        }
        if self.length != 0 {
            a.push(Attribute::new(
                "Cryptographic Length",
                Value::Integer(self.length),
            ));
        }
        if let Some(d) = self.digest.as_deref().and_then(|d| hex::decode(d).ok()) {
            // SHA-256 over the object in the format it is kept in; the Key Format Type field exists from 1.1.
            let mut digest = vec![
                Item::new(t::HASHING_ALGORITHM, Value::Enumeration(6)),
                Item::new(t::DIGEST_VALUE, Value::ByteString(d)),
            ];
            if version >= ProtocolVersion::new(1, 1)
                && self.object_type != object_type::OPAQUE_OBJECT
            {
                digest.push(Item::new(
                    t::KEY_FORMAT_TYPE,
                    Value::Enumeration(self.key_format.unwrap_or(1)),
                ));
            }
            a.push(Attribute::new("Digest", Value::Structure(digest)));
        }
        a.extend([
            Attribute::new("Cryptographic Usage Mask", Value::Integer(self.usage_mask)),
            Attribute::new("State", Value::Enumeration(self.effective_state(now))),
            Attribute::new("Initial Date", Value::DateTime(self.initial_date)),
            Attribute::new("Last Change Date", Value::DateTime(self.last_change_date)),
        ]);
        for (i, n) in self.names.iter().enumerate() {
            let mut name = Attribute::name_value(n);
            name.index = (i > 0).then_some(i as i32);
            a.push(name);
        }
        let dates = [
            ("Activation Date", self.activation_date),
            ("Deactivation Date", self.deactivation_date),
            ("Compromise Date", self.compromise_date),
            (
                "Compromise Occurrence Date",
                self.compromise_occurrence_date,
            ),
            ("Destroy Date", self.destroy_date),
            ("Archive Date", self.archive_date),
        ];
        for (name, d) in dates {
            if let Some(d) = d {
                a.push(Attribute::new(name, Value::DateTime(d)));
            }
        }
        if let Some(code) = self.revocation_reason {
            let mut r = vec![Item::new(
                t::REVOCATION_REASON_CODE,
                Value::Enumeration(code),
            )];
            if let Some(m) = &self.revocation_message {
                r.push(Item::new(
                    t::REVOCATION_MESSAGE,
                    Value::TextString(m.clone()),
                ));
            }
            a.push(Attribute::new("Revocation Reason", Value::Structure(r)));
        }
        // A second instance of an attribute carries its Attribute Index (1.x).
        let mut seen: std::collections::HashMap<&str, i32> = std::collections::HashMap::new();
        for e in &self.extra {
            if let Some(mut attr) = e.attribute() {
                let before = seen.entry(e.name.as_str()).or_insert(0);
                attr.index = (*before > 0).then_some(*before);
                *before = before.saturating_add(1);
                a.push(attr);
            }
        }
        a
    }

    /// The value of the first stored client attribute called `name` (the attributes kept as TTLV).
    pub fn extra_value(&self, name: &str) -> Option<Item> {
        let e = self.extra.iter().find(|e| e.name == name)?;
        hex::decode(&e.value_ttlv)
            .ok()
            .and_then(|b| openkcm_ttlv::decode(&b, &openkcm_ttlv::Limits::default()).ok())
    }

    /// The Usage Limits attribute as (total, count left, unit), if the object has one.
    pub fn usage_limits(&self) -> Option<(i64, i64, u32)> {
        let item = self.extra_value("Usage Limits")?;
        let total = item.child(t::USAGE_LIMITS_TOTAL).and_then(Item::as_i64)?;
        let count = item
            .child(t::USAGE_LIMITS_COUNT)
            .and_then(Item::as_i64)
            .unwrap_or(total);
        let unit = item
            .child(t::USAGE_LIMITS_UNIT)
            .and_then(Item::as_enum)
            .unwrap_or(0);
        Some((total, count, unit))
    }

    /// Stores Usage Limits with `count` left.
    pub fn set_usage_limits(&mut self, total: i64, count: i64, unit: u32) {
        let item = usage_limits_item(total, count, unit);
        let value_ttlv = hex::encode(openkcm_ttlv::encode(&item));
        match self.extra.iter_mut().find(|e| e.name == "Usage Limits") {
            Some(e) => e.value_ttlv = value_ttlv,
            None => self.extra.push(ExtraAttr {
                name: "Usage Limits".into(),
                value_ttlv,
            }),
        }
    }

    /// A new Pre-Active (or Active) AES key's attributes.
    pub fn new_aes(service: &str, now: i64) -> Self {
        Self {
            service: service.into(),
            object_type: object_type::SYMMETRIC_KEY,
            key_format: None,
            data_type: None,
            digest: None,
            fresh: true,
            server_generated: false,
            original_creation_date: Some(now),
            registered_wrapping: None,
            last_located_nanos: None,
            key_value_absent: false,
            owner: None,
            sensitive: false,
            not_extractable: false,
            always_sensitive: false,
            never_extractable: false,
            state: state::PRE_ACTIVE,
            names: Vec::new(),
            algorithm: algorithm::AES,
            length: 256,
            usage_mask: openkcm_kmip::enums::usage_mask::ENCRYPT
                | openkcm_kmip::enums::usage_mask::DECRYPT,
            initial_date: now,
            created_nanos: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
                .unwrap_or(0),
            last_change_date: now,
            activation_date: None,
            deactivation_date: None,
            compromise_date: None,
            compromise_occurrence_date: None,
            destroy_date: None,
            archive_date: None,
            revocation_reason: None,
            revocation_message: None,
            extra: Vec::new(),
            template: Vec::new(),
            split: None,
        }
    }
}
