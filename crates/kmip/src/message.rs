//! Request and response messages: headers, batch items, and the server-side batch loop.

use crate::enums::{batch_error_continuation, result_reason as rr, result_status};
use crate::error::KmipError;
use crate::tags as t;
use openkcm_ttlv::{Item, Value};

/// Vendor extension tag carrying the application identity an edge acts for (`tenant/service`), in the
/// Request Header of messages an edge sends to the Core. The Core honours it only from edge identities.
pub const TAG_ON_BEHALF_OF: u32 = 0x540001;

/// Vendor extension tag (Interval, seconds) in the Core's answer to an edge's Get of a service key (L3) in `lease`
/// custody (DESIGN §6.3): how long the edge may keep and use the key before it must ask again.
pub const TAG_L3_LEASE_SECONDS: u32 = 0x540002;

/// The unique identifier an edge Gets from the Core (as itself, on behalf of no application) to learn the key of
/// its vault's sealed metadata (DESIGN §5.2, ADR-015): derived from the MasterKey for that edge's name, so a dump of
/// the vault alone shows no tenant, key name or label.
pub const EDGE_VAULT_KEY_ID: &str = "openkcm-edge-vault-key";

/// A KMIP protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProtocolVersion {
    /// Major version.
    pub major: i32,
    /// Minor version.
    pub minor: i32,
}

impl ProtocolVersion {
    /// A version.
    pub const fn new(major: i32, minor: i32) -> Self {
        Self { major, minor }
    }

    /// Whether this is KMIP 2.x (the Attributes structure replaces Template-Attribute).
    pub fn is_v2(self) -> bool {
        self.major >= 2
    }

    /// Whether the version has the Authenticated Encryption fields (1.4 and later).
    pub fn has_aead_fields(self) -> bool {
        self >= Self::new(1, 4)
    }

    /// Whether Locate responses carry Located Items (1.3 and later).
    pub fn has_located_items(self) -> bool {
        self >= Self::new(1, 3)
    }

    /// Encodes the Protocol Version structure.
    pub fn to_item(self) -> Item {
        Item::structure(
            t::PROTOCOL_VERSION,
            vec![
                Item::new(t::PROTOCOL_VERSION_MAJOR, Value::Integer(self.major)),
                Item::new(t::PROTOCOL_VERSION_MINOR, Value::Integer(self.minor)),
            ],
        )
    }

    /// Decodes a Protocol Version structure.
    pub fn from_item(item: &Item) -> Result<Self, KmipError> {
        let major = item.child(t::PROTOCOL_VERSION_MAJOR).and_then(Item::as_i32);
        let minor = item.child(t::PROTOCOL_VERSION_MINOR).and_then(Item::as_i32);
        match (major, minor) {
            (Some(major), Some(minor)) => Ok(Self { major, minor }),
            _ => Err(KmipError::new(
                rr::INVALID_MESSAGE,
                "Protocol Version lacks its major or minor number",
            )),
        }
    }
}

impl std::fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The versions this server speaks, most preferred first.
pub const SUPPORTED_VERSIONS: &[ProtocolVersion] = &[
    ProtocolVersion::new(2, 1),
    ProtocolVersion::new(2, 0),
    ProtocolVersion::new(1, 4),
    ProtocolVersion::new(1, 3),
    ProtocolVersion::new(1, 2),
    ProtocolVersion::new(1, 1),
    ProtocolVersion::new(1, 0),
];

/// The parsed Request Header fields the server acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    /// The client's protocol version.
    pub version: ProtocolVersion,
    /// Batch Error Continuation Option (default Stop).
    pub error_continuation: u32,
    /// Client Correlation Value (KMIP 1.4+), if any.
    pub client_correlation: Option<String>,
    /// The OpenKCM on-behalf-of extension, if present.
    pub on_behalf_of: Option<String>,
    /// Maximum Response Size, if any.
    pub max_response_size: Option<i32>,
    /// Asynchronous Indicator: the client accepts Operation Pending answers (then Poll or Cancel).
    pub asynchronous: bool,
}

/// One request batch item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestBatchItem {
    /// Operation enumeration value.
    pub operation: u32,
    /// Unique Batch Item ID, echoed in the response.
    pub batch_id: Option<Vec<u8>>,
    /// The Request Payload structure (an empty structure if the client sent none).
    pub payload: Item,
    /// The vendor of a Message Extension marked critical, which this server does not recognise.
    pub critical_extension: Option<String>,
}

/// A parsed Request Message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestMessage {
    /// Header.
    pub header: RequestHeader,
    /// Batch items, in order.
    pub items: Vec<RequestBatchItem>,
}

impl RequestMessage {
    /// A request in `version` with one batch item per `(operation, payload)`, no batch ids, and the
    /// Batch Error Continuation Option Stop (KMIP's default).
    pub fn new(version: ProtocolVersion, items: Vec<(u32, Item)>) -> Self {
        Self {
            header: RequestHeader {
                version,
                error_continuation: batch_error_continuation::STOP,
                client_correlation: None,
                on_behalf_of: None,
                max_response_size: None,
                asynchronous: false,
            },
            items: items
                .into_iter()
                .map(|(operation, payload)| RequestBatchItem {
                    critical_extension: None,
                    operation,
                    batch_id: None,
                    payload,
                })
                .collect(),
        }
    }

    /// Parses a decoded TTLV tree. Failures are Invalid Message errors whose text says what is wrong.
    pub fn parse(root: &Item) -> Result<Self, KmipError> {
        let invalid = |m: &str| KmipError::new(rr::INVALID_MESSAGE, m.to_string());
        if root.tag != t::REQUEST_MESSAGE {
            return Err(invalid("the message is not a KMIP Request Message"));
        }
        let h = root
            .child(t::REQUEST_HEADER)
            .ok_or_else(|| invalid("the Request Message has no Request Header"))?;
        let version = ProtocolVersion::from_item(
            h.child(t::PROTOCOL_VERSION)
                .ok_or_else(|| invalid("the Request Header has no Protocol Version"))?,
        )?;
        let batch_count = h
            .child(t::BATCH_COUNT)
            .and_then(Item::as_i32)
            .ok_or_else(|| invalid("the Request Header has no Batch Count"))?;
        let header = RequestHeader {
            version,
            error_continuation: h
                .child(t::BATCH_ERROR_CONTINUATION_OPTION)
                .and_then(Item::as_enum)
                .unwrap_or(batch_error_continuation::STOP),
            client_correlation: h
                .child(t::CLIENT_CORRELATION_VALUE)
                .and_then(Item::as_text)
                .map(str::to_owned),
            on_behalf_of: h
                .child(TAG_ON_BEHALF_OF)
                .and_then(Item::as_text)
                .map(str::to_owned),
            max_response_size: h.child(t::MAXIMUM_RESPONSE_SIZE).and_then(Item::as_i32),
            asynchronous: h.child(t::ASYNCHRONOUS_INDICATOR).and_then(Item::as_bool) == Some(true),
        };
        let mut items = Vec::new();
        for b in root.children_with(t::BATCH_ITEM) {
            let operation = b
                .child(t::OPERATION)
                .and_then(Item::as_enum)
                .ok_or_else(|| invalid("a Batch Item has no Operation"))?;
            // A Message Extension the server does not recognise is ignored unless the client marked it critical.
            let critical_extension = b
                .children_with(t::MESSAGE_EXTENSION)
                .find(|e| e.child(t::CRITICALITY_INDICATOR).and_then(Item::as_bool) == Some(true))
                .map(|e| {
                    e.child(t::VENDOR_IDENTIFICATION)
                        .and_then(Item::as_text)
                        .unwrap_or("unnamed vendor")
                        .to_owned()
                });
            items.push(RequestBatchItem {
                critical_extension,
                operation,
                batch_id: b
                    .child(t::UNIQUE_BATCH_ITEM_ID)
                    .and_then(Item::as_bytes)
                    .map(<[u8]>::to_vec),
                payload: b
                    .child(t::REQUEST_PAYLOAD)
                    .cloned()
                    .unwrap_or_else(|| Item::structure(t::REQUEST_PAYLOAD, vec![])),
            });
        }
        if items.is_empty() {
            return Err(invalid("the Request Message has no Batch Item"));
        }
        if usize::try_from(batch_count).ok() != Some(items.len()) {
            return Err(invalid(
                "the Batch Count does not match the number of Batch Items",
            ));
        }
        Ok(Self { header, items })
    }

    /// Encodes a copy of the request (used by tests; clients use [`RequestMessage::into_item`]).
    pub fn to_item(&self) -> Item {
        self.clone().into_item()
    }

    /// Encodes the request, moving the payloads into the tree (no copy of what they carry).
    pub fn into_item(self) -> Item {
        let mut header = vec![self.header.version.to_item()];
        if let Some(ms) = self.header.max_response_size {
            header.push(Item::new(t::MAXIMUM_RESPONSE_SIZE, Value::Integer(ms)));
        }
        if let Some(c) = self.header.client_correlation {
            header.push(Item::new(t::CLIENT_CORRELATION_VALUE, Value::TextString(c)));
        }
        if self.header.asynchronous {
            header.push(Item::new(t::ASYNCHRONOUS_INDICATOR, Value::Boolean(true)));
        }
        if self.header.error_continuation != batch_error_continuation::STOP {
            header.push(Item::new(
                t::BATCH_ERROR_CONTINUATION_OPTION,
                Value::Enumeration(self.header.error_continuation),
            ));
        }
        if let Some(o) = self.header.on_behalf_of {
            header.push(Item::new(TAG_ON_BEHALF_OF, Value::TextString(o)));
        }
        header.push(Item::new(
            t::BATCH_COUNT,
            Value::Integer(self.items.len() as i32),
        ));
        let mut children = vec![Item::structure(t::REQUEST_HEADER, header)];
        for b in self.items {
            let mut bi = vec![Item::new(t::OPERATION, Value::Enumeration(b.operation))];
            if let Some(id) = b.batch_id {
                bi.push(Item::new(t::UNIQUE_BATCH_ITEM_ID, Value::ByteString(id)));
            }
            if let Some(vendor) = b.critical_extension {
                bi.push(Item::structure(
                    t::MESSAGE_EXTENSION,
                    vec![
                        Item::new(t::VENDOR_IDENTIFICATION, Value::TextString(vendor)),
                        Item::new(t::CRITICALITY_INDICATOR, Value::Boolean(true)),
                        Item::structure(t::VENDOR_EXTENSION, vec![]),
                    ],
                ));
            }
            let mut payload = b.payload;
            payload.tag = t::REQUEST_PAYLOAD;
            bi.push(payload);
            children.push(Item::structure(t::BATCH_ITEM, bi));
        }
        Item::structure(t::REQUEST_MESSAGE, children)
    }
}

/// One response batch item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseBatchItem {
    /// The operation, when known.
    pub operation: Option<u32>,
    /// Echo of the Unique Batch Item ID.
    pub batch_id: Option<Vec<u8>>,
    /// Success payload, or the failure.
    pub result: Result<Item, KmipError>,
    /// The item succeeded but was rolled back because a later item failed (Batch Error Continuation Option
    /// Undo): answered with Result Status Operation Undone.
    pub undone: bool,
    /// The operation was queued (the client allowed asynchronous answers): answered Operation Pending with this
    /// Asynchronous Correlation Value, which Poll and Cancel name.
    pub pending: Option<Vec<u8>>,
}

impl ResponseBatchItem {
    /// The fields before the payload or the error, for `version`.
    fn head(&self, version: ProtocolVersion) -> Vec<Item> {
        let mut bi = Vec::with_capacity(5);
        if let Some(op) = self.operation {
            bi.push(Item::new(t::OPERATION, Value::Enumeration(op)));
        }
        if let Some(id) = &self.batch_id {
            bi.push(Item::new(
                t::UNIQUE_BATCH_ITEM_ID,
                Value::ByteString(id.clone()),
            ));
        }
        match &self.result {
            _ if self.undone => bi.push(Item::new(
                t::RESULT_STATUS,
                Value::Enumeration(result_status::OPERATION_UNDONE),
            )),
            Ok(_) if self.pending.is_some() => {
                bi.push(Item::new(
                    t::RESULT_STATUS,
                    Value::Enumeration(result_status::OPERATION_PENDING),
                ));
                bi.push(Item::new(
                    t::ASYNCHRONOUS_CORRELATION_VALUE,
                    Value::ByteString(self.pending.clone().unwrap_or_default()),
                ));
            }
            Ok(_) => bi.push(Item::new(
                t::RESULT_STATUS,
                Value::Enumeration(result_status::SUCCESS),
            )),
            Err(e) => {
                bi.push(Item::new(
                    t::RESULT_STATUS,
                    Value::Enumeration(result_status::OPERATION_FAILED),
                ));
                bi.push(Item::new(
                    t::RESULT_REASON,
                    Value::Enumeration(e.reason_for(version)),
                ));
                bi.push(Item::new(
                    t::RESULT_MESSAGE,
                    Value::TextString(e.message.clone()),
                ));
            }
        }
        bi
    }

    /// The encoded size of this batch item in `version`, computed without copying the payload.
    pub fn encoded_len(&self, version: ProtocolVersion) -> usize {
        let head = openkcm_ttlv::encoded_len(&Item::structure(t::BATCH_ITEM, self.head(version)));
        if self.undone || self.pending.is_some() {
            return head;
        }
        head + self.result.as_ref().map_or(0, openkcm_ttlv::encoded_len)
    }

    /// Encodes this batch item as `version` defines it, moving the payload into the tree.
    pub fn into_item(self, version: ProtocolVersion) -> Item {
        let mut bi = self.head(version);
        match self.result {
            // An undone operation is no longer in effect: its answer carries no payload.
            Ok(mut payload) if self.undone => payload.zeroize_bytes(),
            // A pending operation has no answer yet.
            Ok(_) if self.pending.is_some() => {}
            Ok(mut payload) => {
                payload.tag = t::RESPONSE_PAYLOAD;
                bi.push(payload);
            }
            Err(_) => {}
        }
        Item::structure(t::BATCH_ITEM, bi)
    }
}

/// A parsed or to-be-sent Response Message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseMessage {
    /// The version the response is written in.
    pub version: ProtocolVersion,
    /// Time Stamp (seconds since the epoch).
    pub timestamp: i64,
    /// Client Correlation Value echoed back (written from KMIP 1.4 on, which defines it).
    pub client_correlation: Option<String>,
    /// Server Correlation Value (KMIP 1.4+): this server's identifier of the exchange, for matching logs.
    pub server_correlation: Option<String>,
    /// Batch items.
    pub items: Vec<ResponseBatchItem>,
}

impl ResponseMessage {
    /// Encodes a copy of the response (used by tests and size estimates).
    pub fn to_item(&self) -> Item {
        self.clone().into_item()
    }

    /// Encodes the response, writing result reasons as `version` defines them and moving the payloads.
    pub fn into_item(self) -> Item {
        let mut header = vec![
            self.version.to_item(),
            Item::new(t::TIME_STAMP, Value::DateTime(self.timestamp)),
        ];
        // Both correlation values came with 1.4: an older client that sent one anyway gets no echo.
        let correlates = self.version >= ProtocolVersion::new(1, 4);
        if let Some(c) = self.client_correlation.filter(|_| correlates) {
            header.push(Item::new(t::CLIENT_CORRELATION_VALUE, Value::TextString(c)));
        }
        if let Some(c) = self.server_correlation.filter(|_| correlates) {
            header.push(Item::new(t::SERVER_CORRELATION_VALUE, Value::TextString(c)));
        }
        header.push(Item::new(
            t::BATCH_COUNT,
            Value::Integer(self.items.len() as i32),
        ));
        let mut children = vec![Item::structure(t::RESPONSE_HEADER, header)];
        let version = self.version;
        children.extend(self.items.into_iter().map(|b| b.into_item(version)));
        Item::structure(t::RESPONSE_MESSAGE, children)
    }

    /// Parses a Response Message (used by this project's KMIP clients).
    pub fn parse(root: &Item) -> Result<Self, KmipError> {
        let invalid = |m: &str| KmipError::new(rr::INVALID_MESSAGE, m.to_string());
        if root.tag != t::RESPONSE_MESSAGE {
            return Err(invalid("the message is not a KMIP Response Message"));
        }
        let h = root
            .child(t::RESPONSE_HEADER)
            .ok_or_else(|| invalid("the Response Message has no header"))?;
        let version = ProtocolVersion::from_item(
            h.child(t::PROTOCOL_VERSION)
                .ok_or_else(|| invalid("the Response Header has no Protocol Version"))?,
        )?;
        let mut items = Vec::new();
        for b in root.children_with(t::BATCH_ITEM) {
            let status = b
                .child(t::RESULT_STATUS)
                .and_then(Item::as_enum)
                .ok_or_else(|| invalid("no Result Status"))?;
            let result =
                if status == result_status::SUCCESS || status == result_status::OPERATION_PENDING {
                    Ok(b.child(t::RESPONSE_PAYLOAD)
                        .cloned()
                        .unwrap_or_else(|| Item::structure(t::RESPONSE_PAYLOAD, vec![])))
                } else {
                    Err(KmipError::new(
                        b.child(t::RESULT_REASON)
                            .and_then(Item::as_enum)
                            .unwrap_or(rr::GENERAL_FAILURE),
                        b.child(t::RESULT_MESSAGE)
                            .and_then(Item::as_text)
                            .unwrap_or("operation failed")
                            .to_string(),
                    ))
                };
            items.push(ResponseBatchItem {
                operation: b.child(t::OPERATION).and_then(Item::as_enum),
                batch_id: b
                    .child(t::UNIQUE_BATCH_ITEM_ID)
                    .and_then(Item::as_bytes)
                    .map(<[u8]>::to_vec),
                undone: b.child(t::RESULT_STATUS).and_then(Item::as_enum)
                    == Some(result_status::OPERATION_UNDONE),
                pending: (status == result_status::OPERATION_PENDING).then(|| {
                    b.child(t::ASYNCHRONOUS_CORRELATION_VALUE)
                        .and_then(Item::as_bytes)
                        .map(<[u8]>::to_vec)
                        .unwrap_or_default()
                }),
                result,
            });
        }
        Ok(Self {
            version,
            timestamp: h
                .child(t::TIME_STAMP)
                .and_then(Item::as_datetime)
                .unwrap_or(0),
            client_correlation: h
                .child(t::CLIENT_CORRELATION_VALUE)
                .and_then(Item::as_text)
                .map(str::to_owned),
            server_correlation: h
                .child(t::SERVER_CORRELATION_VALUE)
                .and_then(Item::as_text)
                .map(str::to_owned),
            items,
        })
    }
}

/// The version a response to a client speaking `requested` is written in: the requested version when this server
/// supports it, else the highest supported version below it (or the lowest, for a client older than 1.0).
pub fn negotiate(requested: ProtocolVersion) -> ProtocolVersion {
    SUPPORTED_VERSIONS
        .iter()
        .copied()
        .find(|v| *v <= requested)
        .unwrap_or(ProtocolVersion::new(1, 0))
}

/// Per-message state the handler sees for each batch item.
#[derive(Debug, Clone)]
pub struct ItemContext {
    /// The negotiated protocol version of the message.
    pub version: ProtocolVersion,
    /// The Request Header.
    pub header: RequestHeader,
    /// The ID Placeholder: the unique identifier produced by the previous successful item.
    pub id_placeholder: Option<String>,
}

impl ItemContext {
    /// The Unique Identifier of `payload`, or the ID Placeholder when the payload names none.
    pub fn uid(&self, payload: &Item) -> Result<String, KmipError> {
        match payload.child(t::UNIQUE_IDENTIFIER) {
            Some(item) => item
                .as_text()
                .map(str::to_owned)
                .ok_or_else(|| KmipError::invalid_field("Unique Identifier must be a Text String")),
            None => match self.id_placeholder.as_deref() {
                // A Locate earlier in the batch found nothing: the item has no object to act on.
                Some("") => Err(KmipError::new(
                    crate::enums::result_reason::ITEM_NOT_FOUND,
                    "no object: the Locate before this item (the ID Placeholder) found none",
                )),
                Some(uid) => Ok(uid.to_owned()),
                None => Err(KmipError::missing("Unique Identifier")),
            },
        }
    }
}

/// A server's implementation of KMIP operations. `handle` returns the Response Payload (any tag; it is re-tagged).
#[async_trait::async_trait]
pub trait OperationHandler: Send + Sync {
    /// Executes one batch item.
    async fn handle(
        &self,
        ctx: &ItemContext,
        operation: u32,
        payload: &Item,
    ) -> Result<Item, KmipError>;

    /// Asked when the client allows asynchronous answers (Asynchronous Indicator): queues `operation` and returns
    /// its Asynchronous Correlation Value, or None to answer at once. Poll then runs it ([`Self::poll`]).
    async fn defer(&self, _ctx: &ItemContext, _operation: u32, _payload: &Item) -> Option<Vec<u8>> {
        None
    }

    /// Poll: the outcome of the queued operation the payload's Asynchronous Correlation Value names, as that
    /// operation and its result. Err when the value names nothing this caller queued.
    async fn poll(
        &self,
        _ctx: &ItemContext,
        _payload: &Item,
    ) -> Result<(u32, Result<Item, KmipError>), KmipError> {
        Err(KmipError::new(
            rr::OPERATION_NOT_SUPPORTED,
            "this server answers every operation synchronously; there is nothing to poll",
        ))
    }

    /// Whether this handler can roll back the items of a batch (Batch Error Continuation Option Undo).
    fn can_undo(&self) -> bool {
        false
    }

    /// Rolls back what the items handled so far in this message did.
    async fn undo(&self) -> Result<(), KmipError> {
        Err(KmipError::new(
            rr::FEATURE_NOT_SUPPORTED,
            "this server cannot roll back a batch",
        ))
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// How far a request's Time Stamp may run ahead of the server clock.
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;

/// A Server Correlation Value: this process's start time and a counter, unique per exchange.
fn next_correlation_value() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static START: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let start = *START.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    });
    format!("{start:x}-{:x}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// The response to a message that could not be parsed at all: one failed item, Invalid Message.
pub fn error_response(version: ProtocolVersion, error: KmipError) -> Item {
    ResponseMessage {
        version,
        timestamp: now(),
        client_correlation: None,
        server_correlation: None,
        items: vec![ResponseBatchItem {
            operation: None,
            batch_id: None,
            result: Err(error),
            undone: false,
            pending: None,
        }],
    }
    .into_item()
}

/// KMIP 2.x lets a request name its object by a Unique Identifier enumeration instead of a Text String: ID
/// Placeholder, or the operation of an earlier item of the same batch whose returned identifier is meant (Create,
/// Register, Locate, Re-key …; the most recent such item that succeeded). Returns the payload with the reference
/// resolved: ID Placeholder becomes an absent Unique Identifier (the handlers' ID Placeholder rule), the others the
/// identifier that item returned. KMIP 1.x payloads, and Text String identifiers, are returned unchanged.
fn resolve_uid_reference<'p>(
    version: ProtocolVersion,
    payload: &'p Item,
    produced: &[(u32, Item)],
) -> Result<std::borrow::Cow<'p, Item>, KmipError> {
    use crate::enums::{operation as op, unique_identifier as u};
    use std::borrow::Cow;
    let Some(uid) = payload.child(t::UNIQUE_IDENTIFIER) else {
        return Ok(Cow::Borrowed(payload));
    };
    let reference = match &uid.value {
        Value::Enumeration(e) if version.is_v2() => *e,
        Value::Integer(_) if version.is_v2() => {
            return Err(KmipError::new(
                rr::FEATURE_NOT_SUPPORTED,
                "a Unique Identifier of type Integer is not supported by this server; send the identifier (Text \
                 String) or a Unique Identifier enumeration such as ID Placeholder",
            ))
        }
        _ => return Ok(Cow::Borrowed(payload)),
    };
    let rewrite = |replacement: Option<Item>| {
        let mut p = payload.clone();
        if let Value::Structure(children) = &mut p.value {
            let pos = children.iter().position(|c| c.tag == t::UNIQUE_IDENTIFIER);
            match (pos, replacement) {
                (Some(i), Some(r)) => {
                    if let Some(slot) = children.get_mut(i) {
                        *slot = r;
                    }
                }
                (Some(i), None) => {
                    children.remove(i);
                }
                (None, _) => {}
            }
        }
        Cow::Owned(p)
    };
    if reference == u::ID_PLACEHOLDER {
        return Ok(rewrite(None));
    }
    let (operation, field) = match reference {
        u::CERTIFY => (op::CERTIFY, t::UNIQUE_IDENTIFIER),
        u::CREATE => (op::CREATE, t::UNIQUE_IDENTIFIER),
        u::CREATE_KEY_PAIR => (op::CREATE_KEY_PAIR, t::UNIQUE_IDENTIFIER),
        u::CREATE_KEY_PAIR_PRIVATE_KEY => (op::CREATE_KEY_PAIR, t::PRIVATE_KEY_UNIQUE_IDENTIFIER),
        u::CREATE_KEY_PAIR_PUBLIC_KEY => (op::CREATE_KEY_PAIR, t::PUBLIC_KEY_UNIQUE_IDENTIFIER),
        u::CREATE_SPLIT_KEY => (op::CREATE_SPLIT_KEY, t::UNIQUE_IDENTIFIER),
        u::DERIVE_KEY => (op::DERIVE_KEY, t::UNIQUE_IDENTIFIER),
        u::IMPORT => (op::IMPORT, t::UNIQUE_IDENTIFIER),
        u::JOIN_SPLIT_KEY => (op::JOIN_SPLIT_KEY, t::UNIQUE_IDENTIFIER),
        u::LOCATE => (op::LOCATE, t::UNIQUE_IDENTIFIER),
        u::REGISTER => (op::REGISTER, t::UNIQUE_IDENTIFIER),
        u::REKEY => (op::REKEY, t::UNIQUE_IDENTIFIER),
        u::RECERTIFY => (op::RECERTIFY, t::UNIQUE_IDENTIFIER),
        u::REKEY_KEY_PAIR => (op::REKEY_KEY_PAIR, t::UNIQUE_IDENTIFIER),
        u::REKEY_KEY_PAIR_PRIVATE_KEY => (op::REKEY_KEY_PAIR, t::PRIVATE_KEY_UNIQUE_IDENTIFIER),
        u::REKEY_KEY_PAIR_PUBLIC_KEY => (op::REKEY_KEY_PAIR, t::PUBLIC_KEY_UNIQUE_IDENTIFIER),
        other => {
            return Err(KmipError::invalid_field(format!(
                "Unique Identifier enumeration value 0x{other:X} is not defined"
            )))
        }
    };
    let found = produced
        .iter()
        .rev()
        .find(|(o, _)| *o == operation)
        .and_then(|(_, ids)| ids.child(field))
        .and_then(Item::as_text)
        .ok_or_else(|| {
            KmipError::new(
                rr::ITEM_NOT_FOUND,
                format!(
                    "the Unique Identifier refers to the object an earlier {} of this batch returned, and no \
                     earlier item returned one",
                    crate::enums::operation::name(operation)
                ),
            )
        })?;
    Ok(rewrite(Some(Item::new(
        t::UNIQUE_IDENTIFIER,
        Value::TextString(found.to_owned()),
    ))))
}

/// Largest response this server sends, whatever the client allows (8 MiB): a small request cannot make the server
/// build an unbounded reply.
pub const MAX_RESPONSE_BYTES: usize = 8 << 20;

/// Runs every batch item of `request` through `handler` and builds the response.
///
/// * A request in a protocol version this server does not speak gets Invalid Message for every item except
///   Discover Versions (which is how a client finds a common version); the response is written in the closest
///   supported version.
/// * An operation that the negotiated version does not define (Encrypt in 1.0, say) is Operation Not Supported.
/// * One failing item never fails the items before it. After a failure, the remaining items are still processed
///   when the client asked for Batch Error Continuation Option Continue; with Stop (the default) they are skipped
///   and absent from the response, as KMIP specifies. With Undo, a failure makes the handler roll back the earlier
///   items ([`OperationHandler::undo`]), which are then answered Operation Undone; a handler that cannot undo
///   ([`OperationHandler::can_undo`] false) gets a batch of several items asking for it refused as a whole with
///   Feature Not Supported.
/// * A response larger than the client's Maximum Response Size (or [`MAX_RESPONSE_BYTES`]) is replaced by Response
///   Too Large on every item that succeeded.
/// * Every payload loses the fields its version does not define ([`crate::tag_versions::retain_defined`]).
pub async fn process<H: OperationHandler + ?Sized>(handler: &H, request: &Item) -> Item {
    use crate::enums::operation::{introduced_in, name, DISCOVER_VERSIONS};
    let message = match RequestMessage::parse(request) {
        Ok(m) => m,
        Err(e) => {
            let version = request
                .child(t::REQUEST_HEADER)
                .and_then(|h| h.child(t::PROTOCOL_VERSION))
                .and_then(|v| ProtocolVersion::from_item(v).ok())
                .map(negotiate)
                .unwrap_or(ProtocolVersion::new(1, 0));
            return error_response(version, e);
        }
    };
    let requested = message.header.version;
    let version = negotiate(requested);
    // A request Time Stamp may run ahead of this server's clock by MAX_CLOCK_SKEW_SECS (clients' clocks drift);
    // further ahead it is refused. Older stamps are accepted: TLS, not the stamp, protects against replay.
    let ahead = request
        .child(t::REQUEST_HEADER)
        .and_then(|h| h.child(t::TIME_STAMP))
        .and_then(Item::as_datetime)
        // Saturating: a Time Stamp near i64::MIN (far in the past) must not overflow into "far ahead".
        .map(|ts| ts.saturating_sub(now()))
        .filter(|d| *d > MAX_CLOCK_SKEW_SECS);
    let header_error = if let Some(ahead) = ahead {
        Some(KmipError::new(
            rr::INVALID_MESSAGE,
            format!(
                "the request Time Stamp is {ahead} s ahead of the server clock; at most {MAX_CLOCK_SKEW_SECS} s is accepted"
            ),
        ))
    } else if !matches!(
        message.header.error_continuation,
        batch_error_continuation::CONTINUE
            | batch_error_continuation::STOP
            | batch_error_continuation::UNDO
    ) {
        Some(KmipError::invalid_field(format!(
            "Batch Error Continuation Option {} is not defined (1 Continue, 2 Stop, 3 Undo)",
            message.header.error_continuation
        )))
    } else if message.header.max_response_size.is_some_and(|m| m <= 0) {
        Some(KmipError::invalid_field(
            "Maximum Response Size must be a positive number of bytes",
        ))
    } else if message.header.error_continuation == batch_error_continuation::UNDO
        && message.items.len() > 1
        && !handler.can_undo()
    {
        Some(KmipError::new(
            rr::FEATURE_NOT_SUPPORTED,
            "Batch Error Continuation Option Undo is not supported; use Continue or Stop",
        ))
    } else {
        None
    };
    let limit = message
        .header
        .max_response_size
        .filter(|m| *m > 0)
        .and_then(|m| usize::try_from(m).ok())
        .map_or(MAX_RESPONSE_BYTES, |m| m.min(MAX_RESPONSE_BYTES));
    // Server Correlation Value (1.4+): unique per exchange, for matching this server's logs to the client's; sent
    // when the client correlates too (it sent a Client Correlation Value), as the OASIS cases expect.
    let server_correlation = (version >= ProtocolVersion::new(1, 4)
        && message.header.client_correlation.is_some())
    .then(next_correlation_value);
    let mut ctx = ItemContext {
        version,
        header: message.header.clone(),
        id_placeholder: None,
    };
    let mut items: Vec<ResponseBatchItem> = Vec::with_capacity(message.items.len().min(1024));
    // The identifiers earlier items returned, for 2.x Unique Identifier enumerations (Create, Register …).
    let mut produced: Vec<(u32, Item)> = Vec::new();
    // Bytes of response built so far: checked after every item, so a batch cannot make the server build (or
    // compute) far more than it will ever send.
    // Bytes of the response so far, header included: every answer counts, so the response message never grows
    // past the limit by more than the one item that says it did not fit.
    let mut size = openkcm_ttlv::encoded_len(
        &ResponseMessage {
            version,
            timestamp: 0,
            client_correlation: message.header.client_correlation.clone(),
            server_correlation: server_correlation.clone(),
            items: vec![],
        }
        .to_item(),
    );
    for b in &message.items {
        let mut answered_as = b.operation;
        let mut pending = None;
        let result = if let Some(e) = &header_error {
            Err(e.clone())
        } else if !SUPPORTED_VERSIONS.contains(&requested) && b.operation != DISCOVER_VERSIONS {
            Err(KmipError::new(
                rr::INVALID_MESSAGE,
                format!(
                    "KMIP {requested} is not supported by this server; it speaks {} (use Discover Versions)",
                    SUPPORTED_VERSIONS.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                ),
            ))
        } else if b.operation != DISCOVER_VERSIONS
            && introduced_in(b.operation).is_some_and(|v| v > version)
        {
            Err(KmipError::new(
                rr::OPERATION_NOT_SUPPORTED,
                format!("{} is not defined in KMIP {version}", name(b.operation)),
            ))
        } else if let Some(vendor) = &b.critical_extension {
            Err(KmipError::new(
                rr::FEATURE_NOT_SUPPORTED,
                format!("Critical Message Extension not recognized (vendor {vendor:?})"),
            ))
        } else if b.operation == crate::enums::operation::POLL {
            // Poll answers as the operation it completes.
            match handler.poll(&ctx, &b.payload).await {
                Ok((op, result)) => {
                    answered_as = op;
                    result
                }
                Err(e) => Err(e),
            }
        } else {
            match resolve_uid_reference(version, &b.payload, &produced) {
                Ok(p) => {
                    let p: &Item = &p;
                    // A batch that may be rolled back is answered at once: a queued item could not be undone.
                    match ctx.header.asynchronous
                        && ctx.header.error_continuation != batch_error_continuation::UNDO
                    {
                        true => match handler.defer(&ctx, b.operation, p).await {
                            Some(acv) => {
                                pending = Some(acv);
                                Ok(Item::structure(t::RESPONSE_PAYLOAD, vec![]))
                            }
                            None => handler.handle(&ctx, b.operation, p).await,
                        },
                        false => handler.handle(&ctx, b.operation, p).await,
                    }
                }
                Err(e) => Err(e),
            }
        };
        let mut result = result;
        if let Ok(payload) = &mut result {
            // The last line of version discipline: no field of another version reaches this client, whatever the
            // handler built (see `tag_versions`).
            crate::tag_versions::retain_defined(payload, version);
        }
        let failed = result.is_err();
        if let Ok(payload) = &result {
            if version.is_v2() && produced.len() < 1024 {
                let ids: Vec<Item> = payload
                    .children()
                    .iter()
                    .filter(|i| {
                        matches!(
                            i.tag,
                            t::UNIQUE_IDENTIFIER
                                | t::PRIVATE_KEY_UNIQUE_IDENTIFIER
                                | t::PUBLIC_KEY_UNIQUE_IDENTIFIER
                        )
                    })
                    .cloned()
                    .collect();
                if !ids.is_empty() {
                    produced.push((b.operation, Item::structure(t::RESPONSE_PAYLOAD, ids)));
                }
            }
        }
        // The ID Placeholder carries the identifier of the item just before; after a failure it is empty, so an
        // item that relies on it fails instead of acting on an older object.
        ctx.id_placeholder = match &result {
            Ok(payload) => payload
                .child(t::UNIQUE_IDENTIFIER)
                .and_then(Item::as_text)
                .map(str::to_owned)
                // A Locate that found nothing leaves an empty placeholder (later items fail with Item Not Found).
                .or_else(|| (b.operation == crate::enums::operation::LOCATE).then(String::new))
                .or(ctx.id_placeholder.take()),
            Err(_) => None,
        };
        let item = ResponseBatchItem {
            operation: Some(answered_as),
            batch_id: b.batch_id.clone(),
            result,
            undone: false,
            pending,
        };
        let mut item = item;
        let item_size = item.encoded_len(version);
        if size.saturating_add(item_size) > limit {
            // Earlier items keep their answers. This one was executed (it may have changed state) but its answer
            // does not fit: say exactly that. Nothing after it is executed or answered.
            if let Ok(payload) = &mut item.result {
                payload.zeroize_bytes();
                item.result = Err(KmipError::new(
                    rr::RESPONSE_TOO_LARGE,
                    format!(
                        "the operation was performed, but its answer of {item_size} bytes does not fit in the maximum \
                         response size of {limit} bytes ({size} bytes already used); later items were not executed"
                    ),
                ));
            } else if let Err(e) = &mut item.result {
                e.message.push_str(
                    " (later items were not executed: the response reached its maximum size)",
                );
            }
            items.push(item);
            break;
        }
        size = size.saturating_add(item_size);
        items.push(item);
        // Undo: a failure rolls back what the earlier items of the batch did, and they are answered Operation
        // Undone; the failed item keeps its reason, with a note when the rollback itself failed.
        if header_error.is_none()
            && failed
            && message.header.error_continuation == batch_error_continuation::UNDO
        {
            match handler.undo().await {
                Ok(()) => {
                    let last = items.len().saturating_sub(1);
                    for earlier in items.iter_mut().take(last).filter(|i| i.result.is_ok()) {
                        earlier.undone = true;
                    }
                }
                Err(e) => {
                    if let Some(Err(failed)) = items.last_mut().map(|i| &mut i.result) {
                        failed.message.push_str(&format!(
                            " (rolling back the earlier items failed: {}; they stay in effect)",
                            e.message
                        ));
                    }
                }
            }
            break;
        }
        // A refused header refuses every item; otherwise Stop ends the batch at the first failure.
        if header_error.is_none()
            && failed
            && message.header.error_continuation != batch_error_continuation::CONTINUE
        {
            break;
        }
    }
    // The payloads move into the encoded tree, which the transport zeroizes after sending.
    ResponseMessage {
        version,
        timestamp: now(),
        client_correlation: message.header.client_correlation,
        server_correlation,
        items,
    }
    .into_item()
}
