//! OASIS KMIP profile conformance: replays every XML test case of `oasis-kmip-xml/v1.0 … v1.4` (from the shared
//! vectors, `OPENKCM_VECTORS`) against a running `openkcm dev` edge over mTLS, TTLV-encoded, and compares each
//! response with the expected one.
//!
//! Each file runs as its own service identity (its own certificate), so objects of one case never show up in
//! another's Locate. Placeholders of the files are handled as the profiles define them:
//!
//! * `$UNIQUE_IDENTIFIER_n`, `$IV_COUNTER_NONCE`, `$DATA_0`, `$CORRELATION_VALUE` … bind to the value the server
//!   returns the first time they appear in a response, and later requests send the bound value;
//! * `$NOW`, `$NOW±s` in a request is the current time (± seconds); in a response any Date-Time is accepted.
//!
//! Server-chosen values are tolerated and nothing else: the response header's Time Stamp; Result Message text;
//! the payloads of Query and Discover Versions (the server's own capabilities; their status must still match);
//! and, for objects whose key material the server generated in the same file (Create, Re-key), the bytes that
//! depend on it (Key Material, Digest Value, and Data / MAC Data / tags computed with it), whose length must
//! still match.
//!
//! Every file gets an outcome: passed; failed (first differing message and path); "not supported" for the
//! profiles this server does not implement (asymmetric keys and certificates, split keys, templates, the
//! HTTPS/JSON/XML message encodings, server-to-client and asynchronous operations); or "refused by policy" when
//! the server refused a legacy-algorithm operation (3DES, SKIPJACK …) because `legacy_crypto` is off.
//! `docs/conformance.md` is rewritten from the results when `OPENKCM_WRITE_CONFORMANCE=1`.
//! The test fails when a file listed in `tests/conformance/expected-pass.txt` does not pass.
//!
//! A second test replays the 1.4 files that pass, translated to KMIP 2.1 (Attributes instead of Template-Attribute,
//! Attribute Reference, New Attribute, vendor attributes …; see `v21`), against its own `openkcm dev`, and adds a
//! section "KMIP 2.1 (translated 1.4 cases)" to the same report; it fails when a file listed in
//! `tests/conformance/expected-pass-v21.txt` does not pass.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;
use common::Dev;
use openkcm_kmip::tags as t;
use openkcm_kmip::xml::{self, Node};
use openkcm_ttlv::{Item, ItemType, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const VERSIONS: &[&str] = &["v1.0", "v1.1", "v1.2", "v1.4"];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Pass,
    Fail(String),
    NotSupported(String),
    Policy(String),
    /// A translated case that KMIP 2.x cannot express (an attribute or field 2.0 removed).
    NotApplicable(String),
}

impl Outcome {
    fn label(&self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail(_) => "FAIL",
            Outcome::NotSupported(_) => "not supported",
            Outcome::Policy(_) => "refused by policy",
            Outcome::NotApplicable(_) => "not applicable in 2.x",
        }
    }
}

/// Why a file is outside what this server implements, judged from what the file does.
fn unsupported_reason(name: &str, messages: &[Node]) -> Option<String> {
    if name.starts_with("MSGENC-") {
        return Some(format!(
            "{} message encoding profile: this server speaks TTLV over TLS only",
            name.split('-').nth(1).unwrap_or("other")
        ));
    }
    let mut object_types = HashSet::new();
    let mut operations = HashSet::new();
    fn walk(n: &Node, ots: &mut HashSet<String>, ops: &mut HashSet<String>) {
        if let Some(v) = &n.value {
            if n.name == "ObjectType"
                || (n.name == "AttributeValue"
                    && matches!(
                        v.as_str(),
                        "PrivateKey"
                            | "PublicKey"
                            | "Certificate"
                            | "Template"
                            | "SplitKey"
                            | "PGPKey"
                    ))
            {
                ots.insert(v.clone());
            }
            if n.name == "Operation" {
                ops.insert(v.clone());
            }
        }
        for c in &n.children {
            walk(c, ots, ops);
        }
    }
    for m in messages.iter().filter(|m| m.name == "RequestMessage") {
        walk(m, &mut object_types, &mut operations);
    }
    let asym: Vec<_> = [
        "PrivateKey",
        "PublicKey",
        "Certificate",
        "PGPKey",
        "CertificateRequest",
    ]
    .iter()
    .filter(|o| object_types.contains(**o))
    .collect();
    let asym_ops: Vec<_> = [
        "CreateKeyPair",
        "Certify",
        "ReCertify",
        "Sign",
        "SignatureVerify",
        "ReKeyKeyPair",
    ]
    .iter()
    .filter(|o| operations.contains(**o))
    .collect();
    if !asym.is_empty() || !asym_ops.is_empty() {
        let mut what: Vec<String> = asym.iter().map(|s| s.to_string()).collect();
        what.extend(asym_ops.iter().map(|s| s.to_string()));
        return Some(format!(
            "asymmetric keys and certificates ({}): not implemented yet",
            what.join(", ")
        ));
    }
    None
}

/// Values bound by placeholders, and the objects whose key material the server generated.
#[derive(Default)]
struct Bindings {
    values: HashMap<String, Value>,
    server_generated: HashSet<String>,
    /// Date-Times sent by the client: only these are compared exactly in responses.
    client_dates: HashSet<i64>,
    /// The latest value of each leaf field seen in a response.
    last_by_tag: HashMap<u32, Value>,
    /// Time compression of a file that waits for a near-future date ($NOW+N, N ≤ 600 s): offsets are divided by
    /// it and the recorded pauses between messages are replayed divided by it (1 otherwise).
    time_scale: i64,
    /// The client endpoint that receives the server's Put and Notify messages (TC-NP cases).
    notify: Option<NotifyRx>,
    /// A 1.4 case translated to KMIP 2.x: an expected Result Reason also matches the 2.x reason a 2.x server sends in
    /// its place (the 2.x-only reason the server maps to that 1.x reason for 1.x clients).
    v14_reasons: bool,
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Builds the request item of `node`, sending bound values for placeholders.
fn request_item(node: &Node, b: &Bindings) -> Result<Item, String> {
    if node.ty.is_none() {
        let tag = node.tag().map_err(|e| e.to_string())?;
        // Convert children one by one so that AttributeValue keeps its attribute's names.
        let mut children = Vec::new();
        let mut pending: Vec<Node> = Vec::new();
        for c in &node.children {
            pending.push(c.clone());
        }
        // Substitute placeholders inside a cloned tree, then let the XML module convert it.
        let mut resolved = Node {
            children: Vec::new(),
            ..node.clone()
        };
        for c in pending {
            if c.value.as_deref().is_some_and(|v| v.starts_with('$')) {
                children.push((resolved.children.len(), placeholder_item(&c, b)?));
                // Keep the position with a harmless stand-in that converts.
                resolved.children.push(Node {
                    name: c.name.clone(),
                    tag_attr: c.tag_attr.clone(),
                    ty: Some("TextString".into()),
                    value: Some(String::new()),
                    children: Vec::new(),
                });
            } else if c.ty.is_none() {
                let item = request_item(&c, b)?;
                children.push((resolved.children.len(), item));
                resolved.children.push(Node {
                    name: c.name.clone(),
                    tag_attr: c.tag_attr.clone(),
                    ty: Some("TextString".into()),
                    value: Some(String::new()),
                    children: Vec::new(),
                });
            } else {
                resolved.children.push(c);
            }
        }
        let mut item = resolved.to_item().map_err(|e| e.to_string())?;
        if let Value::Structure(items) = &mut item.value {
            for (i, replacement) in children {
                items[i] = replacement;
            }
        }
        item.tag = tag;
        return Ok(item);
    }
    if node.value.as_deref().is_some_and(|v| v.starts_with('$')) {
        return placeholder_item(node, b);
    }
    node.to_item().map_err(|e| e.to_string())
}

fn placeholder_item(node: &Node, b: &Bindings) -> Result<Item, String> {
    let tag = node.tag().map_err(|e| e.to_string())?;
    let v = node.value.as_deref().unwrap_or_default();
    if let Some(rest) = v.strip_prefix("$NOW") {
        let offset: i64 = if rest.is_empty() {
            0
        } else {
            rest.parse()
                .map_err(|_| format!("bad time placeholder {v}"))?
        };
        return Ok(Item::new(
            tag,
            Value::DateTime(now_secs() + offset / b.time_scale.max(1)),
        ));
    }
    let name = v.trim_start_matches('$');
    // Some files write the recorded value in a response and a placeholder in the next request: an unbound
    // placeholder takes the same field's value from the latest response.
    let value = b
        .values
        .get(name)
        .or_else(|| b.last_by_tag.get(&tag))
        .ok_or_else(|| format!("request uses {v} before any response bound it"))?;
    Ok(Item::new(tag, value.clone()))
}

/// Tags whose bytes depend on server-generated key material.
const KEY_DEPENDENT: &[u32] = &[
    t::KEY_MATERIAL,
    t::DIGEST_VALUE,
    t::DATA,
    t::MAC_DATA,
    t::AUTHENTICATED_ENCRYPTION_TAG,
];

struct Cmp<'a> {
    b: &'a mut Bindings,
    /// Inside a payload about a server-generated object.
    generated: bool,
    /// Inside a Query or Discover Versions payload.
    lenient: bool,
    /// The expected Attribute Name preceding the current Attribute Value.
    attr_name: Option<String>,
    /// Inside an RNG Retrieve payload.
    rng: bool,
    /// Comparing a message the server sent to the client (Put, Notify): its attributes come in any order.
    push: bool,
}

impl<'a> Cmp<'a> {
    /// A comparison binding placeholders in `b`; `push` for a message the server sent to the client.
    fn new(b: &'a mut Bindings, push: bool) -> Self {
        Self {
            b,
            generated: false,
            lenient: false,
            attr_name: None,
            rng: false,
            push,
        }
    }

    fn node(&mut self, exp: &Node, act: &Item, path: &str) -> Result<(), String> {
        let path = format!("{path}/{}", exp.name);
        let tag = exp.tag().map_err(|e| e.to_string())?;
        if tag != act.tag {
            return Err(format!(
                "{path}: expected {}, got {}",
                exp.name,
                t::name(act.tag)
                    .map(str::to_string)
                    .unwrap_or(format!("0x{:06X}", act.tag))
            ));
        }
        // The Random Number Generator attribute describes the server's own generator (1.x and 2.x encodings).
        if exp.name == "AttributeValue"
            && self.attr_name.as_deref() == Some("Random Number Generator")
            || exp.name == "RandomNumberGenerator"
        {
            return Ok(());
        }
        let ty = exp.item_type().map_err(|e| e.to_string())?;
        if ty != act.value.item_type() {
            return Err(format!(
                "{path}: expected type {}, got {}",
                ty.name(),
                act.value.item_type().name()
            ));
        }
        if let Value::Structure(children) = &act.value {
            return self.children(exp, children, &path);
        }
        self.b.last_by_tag.insert(act.tag, act.value.clone());
        let raw = exp.value.as_deref().unwrap_or_default();
        if let Some(name) = raw.strip_prefix('$') {
            if name.starts_with("NOW") {
                return Ok(());
            }
            match self.b.values.get(name) {
                Some(bound) if *bound == act.value => return Ok(()),
                Some(bound) => {
                    return Err(format!(
                        "{path}: expected ${name} = {bound:?}, got {:?}",
                        act.value
                    ));
                }
                None => {
                    self.b.values.insert(name.to_string(), act.value.clone());
                    return Ok(());
                }
            }
        }
        if self.lenient
            || tag == t::TIME_STAMP
            || tag == t::RESULT_MESSAGE
            || tag == t::SERVER_CORRELATION_VALUE
            || tag == t::LEASE_TIME
            || (exp.name == "AttributeValue" && self.attr_name.as_deref() == Some("Lease Time"))
        {
            return Ok(());
        }
        let want = single(exp, self.attr_name.as_deref())?;
        if want == act.value {
            return Ok(());
        }
        if let (true, true, Value::Enumeration(w), Value::Enumeration(a)) = (
            self.b.v14_reasons,
            tag == t::RESULT_REASON,
            &want,
            &act.value,
        ) {
            let as_v14 = openkcm_kmip::KmipError::new(*a, "")
                .reason_for(openkcm_kmip::ProtocolVersion::new(1, 4));
            if as_v14 == *w && as_v14 != *a {
                return Ok(());
            }
        }
        // A Date-Time the client never sent was chosen by the server (Initial Date, Last Change Date, the
        // Activation Date Activate sets …): recorded runs carry their own clock.
        if let (Value::DateTime(w), Value::DateTime(_)) = (&want, &act.value) {
            if !self.b.client_dates.contains(w) {
                return Ok(());
            }
        }
        // A server-generated IV is the server's choice; its length is not. So is an Asynchronous Correlation Value
        // a recording wrote as a literal.
        let server_iv = tag == t::IV_COUNTER_NONCE || tag == t::ASYNCHRONOUS_CORRELATION_VALUE;
        if (self.generated && KEY_DEPENDENT.contains(&tag))
            || (self.rng && tag == t::DATA)
            || server_iv
        {
            if let (Value::ByteString(w), Value::ByteString(a)) = (&want, &act.value) {
                if w.len() == a.len() {
                    return Ok(());
                }
            }
        }
        Err(format!("{path}: expected {want:?}, got {:?}", act.value))
    }

    fn children(&mut self, exp: &Node, act: &[Item], path: &str) -> Result<(), String> {
        let was = (self.generated, self.lenient);
        if exp.name == "ResponsePayload" && act.iter().any(|i| i.tag == t::IV_COUNTER_NONCE) {
            // The server chose the IV, so the ciphertext is its choice too.
            self.generated = true;
        } else if exp.name == "ResponsePayload" || exp.name == "RequestPayload" {
            if let Some(uid) = act
                .iter()
                .find(|i| i.tag == t::UNIQUE_IDENTIFIER)
                .and_then(Item::as_text)
            {
                self.generated = self.b.server_generated.contains(uid);
            }
        }
        let result = self.children_inner(exp, act, path);
        (self.generated, self.lenient) = was;
        result
    }

    fn children_inner(&mut self, exp: &Node, act: &[Item], path: &str) -> Result<(), String> {
        if self.lenient {
            return Ok(());
        }
        // This server echoes the Client Correlation Value in the response header by design (the cases that
        // send one expect only the Server Correlation Value there).
        let filtered: Vec<Item>;
        let act = if exp.name == "ResponseHeader"
            && !exp
                .children
                .iter()
                .any(|c| c.name == "ClientCorrelationValue")
        {
            filtered = act
                .iter()
                .filter(|i| i.tag != t::CLIENT_CORRELATION_VALUE)
                .cloned()
                .collect();
            filtered.as_slice()
        } else {
            act
        };
        // Unordered where the order is the server's business: the attributes of Get Attributes (and of the 2.x
        // Attributes structure) and the identifiers Locate returns, when all of them are already known.
        let unordered = exp.name == "ResponsePayload"
            && exp.children.iter().all(|c| {
                matches!(
                    c.name.as_str(),
                    "UniqueIdentifier"
                        | "Attribute"
                        | "AttributeName"
                        | "AttributeReference"
                        | "LocatedItems"
                )
            })
            && exp.children.iter().any(|c| {
                matches!(
                    c.name.as_str(),
                    "Attribute" | "AttributeName" | "AttributeReference"
                )
            })
            || exp.name == "Attributes"
            || (self.push && exp.name == "RequestPayload")
            || exp.name == "ResponsePayload"
                && exp
                    .children
                    .iter()
                    .filter(|c| c.name == "UniqueIdentifier")
                    .count()
                    > 1
                && exp.children.iter().all(|c| {
                    c.name == "LocatedItems"
                        || c.value.as_deref().is_some_and(|v| {
                            !v.starts_with('$')
                                || self.b.values.contains_key(v.trim_start_matches('$'))
                        })
                });
        if exp.children.len() != act.len() {
            let want: Vec<&str> = exp.children.iter().map(|c| c.name.as_str()).collect();
            let have: Vec<String> = act
                .iter()
                .map(|i| {
                    t::name(i.tag)
                        .map(str::to_string)
                        .unwrap_or(format!("0x{:06X}", i.tag))
                })
                .collect();
            let said = act
                .iter()
                .find(|i| i.tag == t::RESULT_MESSAGE)
                .or_else(|| {
                    act.iter()
                        .filter(|i| i.tag == t::BATCH_ITEM)
                        .find_map(|bi| bi.child(t::RESULT_MESSAGE))
                })
                .and_then(Item::as_text)
                .map(|m| format!(" (server said: {m})"))
                .unwrap_or_default();
            let op = exp
                .children
                .iter()
                .find(|c| c.name == "Operation")
                .and_then(|c| c.value.clone())
                .map(|o| format!("[{o}]"))
                .unwrap_or_default();
            return Err(format!(
                "{path}{op}: expected {} children {want:?}, got {} {have:?}{said}",
                want.len(),
                have.len()
            ));
        }
        if unordered {
            let mut used = vec![false; act.len()];
            'outer: for e in &exp.children {
                let mut last = String::new();
                for (i, a) in act.iter().enumerate() {
                    if used[i] {
                        continue;
                    }
                    let saved = self.b.values.clone();
                    match self.node(e, a, path) {
                        Ok(()) => {
                            used[i] = true;
                            continue 'outer;
                        }
                        Err(m) => {
                            self.b.values = saved;
                            last = m;
                        }
                    }
                }
                return Err(format!(
                    "{path}: no returned item matches the expected {} ({last})",
                    describe(e)
                ));
            }
            return Ok(());
        }
        for (e, a) in exp.children.iter().zip(act) {
            if e.name == "AttributeName" {
                self.attr_name = e.value.clone();
            }
            if e.name == "ResponsePayload" || e.name == "BatchItem" {
                // Query and Discover Versions describe the server itself.
                if e.name == "ResponsePayload" {
                    let op = exp
                        .children
                        .iter()
                        .find(|c| c.name == "Operation")
                        .and_then(|c| c.value.as_deref());
                    if matches!(op, Some("Query") | Some("DiscoverVersions")) {
                        self.lenient = true;
                    }
                    // Random bytes are the server's to choose; their length is not.
                    if op == Some("RNGRetrieve") {
                        self.rng = true;
                    }
                }
            }
            self.node(e, a, path)?;
        }
        Ok(())
    }
}

fn describe(n: &Node) -> String {
    if n.name == "Attribute" {
        if let Some(name) = n
            .children
            .iter()
            .find(|c| c.name == "AttributeName")
            .and_then(|c| c.value.as_deref())
        {
            return format!("attribute {name:?}");
        }
    }
    match &n.value {
        Some(v) => format!("{} {v:?}", n.name),
        None => n.name.clone(),
    }
}

/// Converts one expected leaf; an Attribute Value takes its names from the attribute named before it.
fn single(n: &Node, attr_name: Option<&str>) -> Result<Value, String> {
    let item = match (n.name.as_str(), attr_name) {
        ("AttributeValue", Some(name)) => {
            let pair = Node {
                name: "Attribute".into(),
                tag_attr: None,
                ty: None,
                value: None,
                children: vec![
                    Node {
                        name: "AttributeName".into(),
                        tag_attr: None,
                        ty: Some("TextString".into()),
                        value: Some(name.to_string()),
                        children: Vec::new(),
                    },
                    n.clone(),
                ],
            };
            pair.to_item().map(|i| i.children()[1].clone())
        }
        _ => n.to_item(),
    };
    item.map(|i| i.value).map_err(|e| e.to_string())
}

/// Runs one file; returns its outcome and the number of request/response pairs that matched.
/// Runs one file as `service`; `generated` holds the objects whose key material the server generated for that
/// service, shared by the files of a series.
async fn run_file(
    dev: &Dev,
    path: &Path,
    service: &str,
    generated: &mut HashSet<String>,
    notify: &NotifyRx,
) -> (Outcome, usize, usize) {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return (Outcome::Fail(format!("cannot read: {e}")), 0, 0),
    };
    let mut doc = match xml::parse_document(&text) {
        Ok(d) => d,
        Err(e) => return (Outcome::Fail(format!("malformed test case: {e}")), 0, 0),
    };
    for m in &mut doc.messages {
        collapse_attribute_names(m);
    }
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let pairs: Vec<(&Node, Option<&Node>)> = {
        let mut v = Vec::new();
        let mut it = doc.messages.iter().peekable();
        while let Some(m) = it.next() {
            if m.name == "RequestMessage" {
                let resp = it.next_if(|n| n.name == "ResponseMessage");
                v.push((m, resp));
            }
        }
        v
    };
    let unsupported = unsupported_reason(&name, &doc.messages);
    let mut b = Bindings {
        server_generated: std::mem::take(generated),
        time_scale: if waits_for_near_future(&text) { 60 } else { 1 },
        notify: Some(notify.clone()),
        ..Bindings::default()
    };
    let outcome = run_pairs(&pairs, &name, unsupported, dev, service, &mut b).await;
    *generated = std::mem::take(&mut b.server_generated);
    outcome
}

async fn run_pairs(
    pairs: &[(&Node, Option<&Node>)],
    name: &str,
    unsupported: Option<String>,
    dev: &Dev,
    service: &str,
    b: &mut Bindings,
) -> (Outcome, usize, usize) {
    let total = pairs.len();
    let mut client = client_for(dev, service).await;
    let mut last_stamp: Option<i64> = None;
    for (i, (req, resp)) in pairs.iter().enumerate() {
        // Replay the pause the recorded run made before this exchange (time-compressed files only).
        if b.time_scale > 1 {
            if let Some(stamp) = resp.and_then(recorded_timestamp) {
                if let Some(prev) = last_stamp {
                    let gap = (stamp - prev).max(0) / b.time_scale;
                    if gap > 0 {
                        tokio::time::sleep(std::time::Duration::from_secs(gap.min(5) as u64 + 1))
                            .await;
                    }
                }
                last_stamp = Some(stamp);
            }
        }
        let step = i + 1;
        let fail = |why: String| -> Outcome {
            match &unsupported {
                Some(r) => Outcome::NotSupported(r.clone()),
                None => Outcome::Fail(format!("message {step}/{total}: {why}")),
            }
        };
        if server_to_client(req) {
            // The server is the sender here: wait for its message at the client's endpoint and compare it.
            let Some(rx) = b.notify.clone() else {
                return (
                    fail("a server-to-client message, but this run has no client endpoint".into()),
                    i,
                    total,
                );
            };
            // Messages about objects this file does not know (a Notify another file's last step caused, which
            // its recording did not show) are answered and passed over.
            let known: Vec<Value> = b.values.values().cloned().collect();
            let got = tokio::time::timeout(std::time::Duration::from_secs(10), async {
                let mut rx = rx.lock().await;
                loop {
                    let (sent, reply) = rx.recv().await?;
                    let about = sent
                        .children_with(t::BATCH_ITEM)
                        .next()
                        .and_then(|bi| bi.child(t::REQUEST_PAYLOAD))
                        .and_then(|p| p.child(t::UNIQUE_IDENTIFIER))
                        .map(|u| u.value.clone());
                    if about.is_some_and(|u| known.contains(&u)) {
                        return Some((sent, reply));
                    }
                    let _ = reply.send(success_answer(&sent));
                }
            })
            .await;
            let Some((sent, reply)) = got.ok().flatten() else {
                return (
                    fail("the server sent nothing to the client's endpoint within 10 s".into()),
                    i,
                    total,
                );
            };
            let _ = reply.send(success_answer(&sent));
            let mut cmp = Cmp::new(&mut *b, true);
            if let Err(why) = cmp.node(req, &sent, "") {
                if std::env::var_os("OPENKCM_CONFORMANCE_VERBOSE").is_some() {
                    eprintln!(
                        "--- {name} message {step}: sent by the server\n{}",
                        xml::to_xml_redacted(&sent)
                    );
                }
                return (fail(format!("server-to-client: {why}")), i, total);
            }
            continue;
        }
        let item = match request_item(req, b) {
            Ok(i) => i,
            Err(e) => return (fail(format!("request: {e}")), i, total),
        };
        collect_datetimes(&item, &mut b.client_dates);
        // A new stream (Init Indicator) gets a new Correlation Value, though the files reuse the placeholder name.
        if contains_tag(&item, t::INIT_INDICATOR) {
            b.values.remove("CORRELATION_VALUE");
        }
        let actual = match client.call(&item).await {
            Ok(a) => a,
            Err(e) => return (fail(format!("transport: {e}")), i, total),
        };
        // Version discipline, whatever the recording says: the response holds only tags its version defines.
        if let Some(why) = out_of_version_tags(&actual) {
            return (
                Outcome::Fail(format!("message {step}/{total}: {why}")),
                i,
                total,
            );
        }
        let Some(expected) = resp else { continue };
        // Each Operation Pending answer brings a new Asynchronous Correlation Value, though the files reuse the
        // placeholder name.
        if contains_value(expected, "OperationPending") {
            b.values.remove("ASYNCHRONOUS_CORRELATION_VALUE");
        }
        // Objects the server generates key material for, by operation and returned identifier.
        mark_generated(req, &actual, b);
        let mut cmp = Cmp::new(&mut *b, false);
        if let Err(why) = cmp.node(expected, &actual, "") {
            if std::env::var_os("OPENKCM_CONFORMANCE_VERBOSE").is_some() {
                eprintln!(
                    "--- {name} message {step}: request\n{}",
                    xml::to_xml_redacted(&item)
                );
                eprintln!(
                    "--- {name} message {step}: actual response\n{}",
                    xml::to_xml_redacted(&actual)
                );
            }
            if let Some(policy) = policy_refusal(&actual) {
                return (Outcome::Policy(policy), i, total);
            }
            return (fail(why), i, total);
        }
    }
    // A file of an unimplemented profile that happens to pass is reported as passing.
    (Outcome::Pass, total, total)
}

/// Tags in a response message that the version it claims does not define (custom attribute values excepted).
fn out_of_version_tags(response: &Item) -> Option<String> {
    let version = response
        .child(t::RESPONSE_HEADER)
        .and_then(|h| h.child(t::PROTOCOL_VERSION))
        .and_then(|v| openkcm_kmip::ProtocolVersion::from_item(v).ok())?;
    let found = openkcm_kmip::tag_versions::undefined_tags(response, version);
    (!found.is_empty()).then(|| {
        let names: Vec<String> = found
            .iter()
            .map(|tag| openkcm_kmip::tags::name(*tag).map_or(format!("{tag:#08x}"), str::to_owned))
            .collect();
        format!(
            "the KMIP {version} response carries tags KMIP {version} does not define: {}",
            names.join(", ")
        )
    })
}

/// Some 1.0–1.2 files carry attribute names with runs of spaces left from their PDF origin ("Cryptographic   Length");
/// they are read as the names they stand for.
fn collapse_attribute_names(n: &mut Node) {
    if n.name == "AttributeName" {
        if let Some(v) = &mut n.value {
            *v = v.split_whitespace().collect::<Vec<_>>().join(" ");
        }
    }
    for c in &mut n.children {
        collapse_attribute_names(c);
    }
}

/// The KMIP request credentials the credential cases (TC-111, TC-112) use, as the operator would configure them:
/// salted PBKDF2 hashes in the `--kmip-credentials` file.
fn write_test_credentials(path: &Path) {
    use openkcm_edge::credentials::{CredentialEntry, CredentialsFile};
    let file = CredentialsFile {
        credentials: vec![
            CredentialEntry::new("username", "Fred", "password1").unwrap(),
            CredentialEntry::new("username", "Barney", "secret2").unwrap(),
            CredentialEntry::new("device", "serNum123456", "secret").unwrap(),
            CredentialEntry::new("device", "serNum101010", "passwd").unwrap(),
        ],
    };
    std::fs::write(path, serde_json::to_string(&file).unwrap()).unwrap();
}

/// The Time Stamp a recorded response carries (None for `$NOW`).
fn recorded_timestamp(resp: &Node) -> Option<i64> {
    let header = resp.children.iter().find(|c| c.name == "ResponseHeader")?;
    let ts = header.children.iter().find(|c| c.name == "TimeStamp")?;
    xml::parse_datetime(ts.value.as_deref()?).ok()
}

/// Whether a file waits for a date a few minutes ahead ($NOW+N with N ≤ 600 s in a request).
fn waits_for_near_future(text: &str) -> bool {
    text.match_indices("$NOW+").any(|(i, _)| {
        let digits: String = text[i + 5..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse::<i64>().is_ok_and(|n| n <= 600)
    })
}

fn contains_tag(item: &Item, tag: u32) -> bool {
    item.tag == tag || item.children().iter().any(|c| contains_tag(c, tag))
}

/// Date-Times the client sent in the requests of this file so far.
fn collect_datetimes(item: &Item, out: &mut HashSet<i64>) {
    match &item.value {
        Value::DateTime(d) => {
            out.insert(*d);
        }
        Value::Structure(c) => c.iter().for_each(|i| collect_datetimes(i, out)),
        _ => {}
    }
}

fn mark_generated(req: &Node, actual: &Item, b: &mut Bindings) {
    let ops: Vec<&str> = req
        .children
        .iter()
        .filter(|c| c.name == "BatchItem")
        .map(|bi| {
            bi.children
                .iter()
                .find(|c| c.name == "Operation")
                .and_then(|c| c.value.as_deref())
                .unwrap_or("")
        })
        .collect();
    for (i, bi) in actual.children_with(t::BATCH_ITEM).enumerate() {
        let op = ops.get(i).copied().unwrap_or("");
        let Some(p) = bi.child(t::RESPONSE_PAYLOAD) else {
            continue;
        };
        for uid in p
            .children_with(t::UNIQUE_IDENTIFIER)
            .filter_map(Item::as_text)
        {
            // Objects the client registered carry its own bytes; objects it created, re-keyed or derived — or
            // found with Locate without having registered them (a server-made default-group member, a key an
            // earlier file of the series created) — carry the server's.
            let registered = format!("registered:{uid}");
            match op {
                "Register" => {
                    b.server_generated.insert(registered);
                }
                "Create" | "ReKey" | "DeriveKey" | "CreateKeyPair" | "CreateSplitKey" => {
                    b.server_generated.insert(uid.to_string());
                }
                "Locate" if !b.server_generated.contains(&registered) => {
                    b.server_generated.insert(uid.to_string());
                }
                _ => {}
            }
        }
    }
}

/// The refusal message when the server refused an operation because legacy algorithms are disabled.
fn policy_refusal(actual: &Item) -> Option<String> {
    actual.children_with(t::BATCH_ITEM).find_map(|bi| {
        let msg = bi.child(t::RESULT_MESSAGE)?.as_text()?;
        msg.contains("by policy").then(|| msg.to_string())
    })
}

async fn client_for(dev: &Dev, service: &str) -> openkcm_net::KmipClient {
    openkcm_net::tls::install_default_provider();
    let pki = openkcm_net::pki::DevPki::open_or_create(&dev.data.join("pki")).unwrap();
    let files = pki.client("conformance", service).unwrap();
    let cfg = openkcm_net::tls::client_config(&files).unwrap();
    openkcm_net::KmipClient::connect(&dev.edge, cfg, "localhost")
        .await
        .unwrap()
}

/// The service identity a file runs as. The storage-array and tape-library profiles are series whose later
/// files use what earlier ones created (TL-M-3 reads the key TL-M-2 wrote), so each series shares one identity.
fn service_name(version: &str, file: &str) -> String {
    let series = ["TL-M-", "TL_M_", "SASED-M-", "SASED_M_"]
        .iter()
        .find(|p| file.starts_with(**p))
        .map(|p| p.trim_end_matches(['-', '_']).to_string());
    let stem = series
        .unwrap_or_else(|| file.trim_end_matches(".xml").to_string())
        .to_ascii_lowercase();
    let mut s: String = format!("{}-{stem}", version.replace('.', ""))
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    if s.len() > 63 {
        // Long names stay unique through a short hash of the whole name.
        let h = openkcm_crypto::aes::sha256(s.as_bytes());
        s.truncate(50);
        s.push('-');
        s.push_str(&hex::encode(&h[..6]));
    }
    s
}

fn vectors_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("OPENKCM_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors")
        });
    dir.join("oasis-kmip-xml").is_dir().then_some(dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oasis_kmip_profiles() {
    let Some(vectors) = vectors_dir() else {
        assert!(
            !common::in_ci(),
            "the OASIS KMIP XML cases are missing (set OPENKCM_VECTORS)"
        );
        eprintln!("************************************************************************");
        eprintln!("conformance: OASIS KMIP XML cases not found: the conformance run is SKIPPED");
        eprintln!("************************************************************************");
        return;
    };
    let only = std::env::var("OPENKCM_CONFORMANCE_ONLY").ok();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let creds = tmp.path().join("kmip-credentials.json");
    write_test_credentials(&creds);
    // The client endpoint of the Put/Notify cases (their services only).
    let notify_socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoints = notify_endpoints(
        &vectors.join("oasis-kmip-xml"),
        VERSIONS,
        &notify_socket.local_addr().unwrap().to_string(),
    );
    let mut dev = Dev::start_env(
        &data,
        &["conformance"],
        &[
            ("OPENKCM_AUTO_PROVISION_SERVICES", "true"),
            ("OPENKCM_KMIP_CREDENTIALS", creds.to_str().unwrap()),
            ("OPENKCM_NOTIFY_ENDPOINTS", &endpoints),
        ],
    );
    let notify = notify_listener(&data.join("pki"), notify_socket);
    let mut results: BTreeMap<(String, String), (Outcome, usize, usize)> = BTreeMap::new();
    let mut generated_by_service: HashMap<String, HashSet<String>> = HashMap::new();
    for version in VERSIONS {
        let dir = vectors.join("oasis-kmip-xml").join(version);
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.ends_with(".xml"))
            .collect();
        files.sort();
        for file in files {
            if only.as_deref().is_some_and(|o| !file.contains(o)) {
                continue;
            }
            let service = service_name(version, &file);
            let generated = generated_by_service.entry(service.clone()).or_default();
            let r = run_file(&dev, &dir.join(&file), &service, generated, &notify).await;
            results.insert((version.to_string(), file), r);
        }
    }
    dev.stop();

    // The report and docs/conformance.md also hold the KMIP 2.1 section the other test writes.
    publish(Some(&render(&results)), None, only.is_none());
    let expected_pass = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/expected-pass.txt"),
    )
    .unwrap_or_default();
    let mut regressions = Vec::new();
    for line in expected_pass
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (v, f) = line.split_once('/').unwrap();
        match results.get(&(v.to_string(), f.to_string())) {
            Some((Outcome::Pass, _, _)) | Some((Outcome::Policy(_), _, _)) => {}
            Some((o, _, _)) => regressions.push(format!("{line}: {o:?}")),
            None if only.is_some() => {}
            None => regressions.push(format!("{line}: file not found")),
        }
    }
    for ((v, f), (o, _, _)) in &results {
        if let Outcome::Fail(why) = o {
            eprintln!("FAIL {v}/{f}: {why}");
        }
    }
    assert!(
        regressions.is_empty(),
        "conformance regressions:\n{}",
        regressions.join("\n")
    );
}

const BEGIN: &str = "<!-- BEGIN GENERATED: conformance runner -->";
const END: &str = "<!-- END GENERATED: conformance runner -->";

fn splice(existing: &str, generated: &str) -> String {
    let block = format!("{BEGIN}\n{generated}{END}\n");
    match (existing.find(BEGIN), existing.find(END)) {
        (Some(a), Some(z)) if z > a => format!(
            "{}{}{}",
            &existing[..a],
            block,
            &existing[z + END.len()..].trim_start_matches('\n')
        ),
        _ => format!("{existing}\n{block}"),
    }
}

fn render(results: &BTreeMap<(String, String), (Outcome, usize, usize)>) -> String {
    let mut out = String::new();
    let mut totals: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for ((v, _), (o, _, _)) in results {
        *totals
            .entry(v.as_str())
            .or_default()
            .entry(o.label())
            .or_default() += 1;
    }
    // The KMIP 2.1 translation has one more outcome, shown in its own column.
    let na = "not applicable in 2.x";
    let with_na = totals.values().any(|m| m.contains_key(na));
    let _ = writeln!(out, "### Summary per version\n");
    let _ = writeln!(
        out,
        "| version | files | pass | FAIL | not supported | refused by policy |{}",
        if with_na {
            " not applicable in 2.x |"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "|---|---|---|---|---|---|{}",
        if with_na { "---|" } else { "" }
    );
    for (v, m) in &totals {
        let n: usize = m.values().sum();
        let g = |k: &str| m.get(k).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "| {v} | {n} | {} | {} | {} | {} |{}",
            g("pass"),
            g("FAIL"),
            g("not supported"),
            g("refused by policy"),
            if with_na {
                format!(" {} |", g(na))
            } else {
                String::new()
            }
        );
    }
    let _ = writeln!(out, "\n### Per file\n");
    let _ = writeln!(
        out,
        "| version | file | result | messages matched | detail |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|");
    for ((v, f), (o, done, total)) in results {
        let detail = match o {
            Outcome::Pass => String::new(),
            Outcome::Fail(w)
            | Outcome::NotSupported(w)
            | Outcome::Policy(w)
            | Outcome::NotApplicable(w) => w.replace('|', "\\|").replace('\n', " "),
        };
        let detail: String = detail.chars().take(300).collect();
        let _ = writeln!(
            out,
            "| {v} | {f} | {} | {done}/{total} | {detail} |",
            o.label()
        );
    }
    out
}

#[test]
fn placeholders_bind_and_substitute() {
    let doc = xml::parse(
        r#"<RequestMessage><BatchItem><UniqueIdentifier type="TextString" value="$UNIQUE_IDENTIFIER_0"/>
        <ActivationDate type="DateTime" value="$NOW-3600"/></BatchItem></RequestMessage>"#,
    )
    .unwrap();
    let mut b = Bindings::default();
    assert!(request_item(&doc[0], &b)
        .unwrap_err()
        .contains("before any response bound it"));
    b.values.insert(
        "UNIQUE_IDENTIFIER_0".into(),
        Value::TextString("abc".into()),
    );
    let item = request_item(&doc[0], &b).unwrap();
    let bi = item.child(t::BATCH_ITEM).unwrap();
    assert_eq!(
        bi.child(t::UNIQUE_IDENTIFIER).unwrap().as_text(),
        Some("abc")
    );
    let when = bi.child(t::ACTIVATION_DATE).unwrap().as_datetime().unwrap();
    assert!((when - (now_secs() - 3600)).abs() < 5);
    // The comparison binds unknown placeholders once and then insists on the same value.
    let exp = &xml::parse(r#"<UniqueIdentifier type="TextString" value="$UNIQUE_IDENTIFIER_1"/>"#)
        .unwrap()[0];
    let mut cmp = Cmp {
        b: &mut b,
        generated: false,
        lenient: false,
        attr_name: None,
        rng: false,
        push: false,
    };
    cmp.node(
        exp,
        &Item::new(t::UNIQUE_IDENTIFIER, Value::TextString("x".into())),
        "",
    )
    .unwrap();
    assert!(cmp
        .node(
            exp,
            &Item::new(t::UNIQUE_IDENTIFIER, Value::TextString("y".into())),
            ""
        )
        .is_err());
    let _ = ItemType::Structure;
}

// ---------------------------------------------------------------------------------------------------------------
// KMIP 2.1: the 1.4 cases that pass, translated to KMIP 2.1 and replayed against a second `openkcm dev`.
// ---------------------------------------------------------------------------------------------------------------

const V21_BEGIN: &str = "<!-- BEGIN GENERATED: KMIP 2.1 translation -->";
const V21_END: &str = "<!-- END GENERATED: KMIP 2.1 translation -->";

/// The report file and the generated block of `docs/conformance.md` hold the 1.x results followed by the KMIP 2.1
/// section. Each test rewrites its own part and keeps the other's; the two tests run at the same time, so the
/// rewrite happens under a lock. `docs/conformance.md` is written only with `OPENKCM_WRITE_CONFORMANCE=1`, and not
/// for a run limited by `OPENKCM_CONFORMANCE_ONLY` (`whole_run` false).
fn publish(v1: Option<&str>, v21: Option<&str>, whole_run: bool) {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let combine = |existing: &str| -> String {
        let (old_v1, old_v21) = match existing.find(V21_BEGIN) {
            Some(i) => (&existing[..i], &existing[i..]),
            None => (existing, ""),
        };
        let v21_block = match v21 {
            Some(s) => format!("{V21_BEGIN}\n{s}{V21_END}\n"),
            None => old_v21.to_string(),
        };
        let v1 = v1.unwrap_or(old_v1).trim_end_matches('\n');
        if v21_block.is_empty() {
            format!("{v1}\n")
        } else {
            // A blank line ends the 1.x table before the 2.1 section.
            format!("{v1}\n\n{v21_block}")
        }
    };
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("conformance.md");
    let existing = std::fs::read_to_string(&out).unwrap_or_default();
    std::fs::write(&out, combine(&existing)).unwrap();
    eprintln!("conformance report: {}", out.display());
    if std::env::var("OPENKCM_WRITE_CONFORMANCE").is_ok_and(|v| v == "1") && whole_run {
        let doc = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/conformance.md");
        let existing = std::fs::read_to_string(&doc).unwrap_or_default();
        let block = match (existing.find(BEGIN), existing.find(END)) {
            (Some(a), Some(z)) if z > a => existing[a + BEGIN.len()..z].trim_start_matches('\n'),
            _ => "",
        };
        std::fs::write(&doc, splice(&existing, &combine(block))).unwrap();
    }
}

/// Rewriting of the KMIP 1.4 test-case messages as KMIP 2.1 (KMIP 2.1 specification: Attributes structure, Attribute
/// Reference, New/Current Attribute, vendor attributes, no Attribute Index). `Err` says why a message cannot be
/// expressed in 2.x.
mod v21 {
    use super::Node;
    use openkcm_kmip::attribute_names::tag_for_name;
    use openkcm_kmip::tags as t;

    /// Attributes KMIP 2.0 removed, with the reason.
    const REMOVED: &[(&str, &str)] = &[
        (
            "Operation Policy Name",
            "the Operation Policy Name attribute was removed in KMIP 2.0",
        ),
        (
            "Custom Attribute",
            "the Custom Attribute tag is reserved in KMIP 2.0 (vendor attributes replace it)",
        ),
        (
            "Certificate Identifier",
            "the Certificate Identifier attribute was removed in KMIP 2.0",
        ),
        (
            "Certificate Issuer",
            "the Certificate Issuer attribute was removed in KMIP 2.0",
        ),
        (
            "Certificate Subject",
            "the Certificate Subject attribute was removed in KMIP 2.0",
        ),
    ];

    fn leaf(name: &str, ty: &str, value: &str) -> Node {
        Node {
            name: name.into(),
            tag_attr: None,
            ty: Some(ty.into()),
            value: Some(value.into()),
            children: Vec::new(),
        }
    }

    fn structure(name: &str, children: Vec<Node>) -> Node {
        Node {
            name: name.into(),
            tag_attr: None,
            ty: None,
            value: None,
            children,
        }
    }

    fn child<'n>(n: &'n Node, name: &str) -> Option<&'n Node> {
        n.children.iter().find(|c| c.name == name)
    }

    fn vendor(name: &str) -> &'static str {
        if name.starts_with("y-") {
            "y"
        } else {
            "x"
        }
    }

    fn is_custom(name: &str) -> bool {
        name.starts_with("x-") || name.starts_with("y-")
    }

    /// The element name KMIP 2.x gives the attribute called `name` in 1.x.
    fn element(name: &str) -> Result<&'static str, String> {
        if let Some((_, why)) = REMOVED.iter().find(|(n, _)| *n == name) {
            return Err((*why).to_string());
        }
        tag_for_name(name)
            .and_then(t::name)
            .ok_or_else(|| format!("attribute {name:?} has no KMIP 2.x tag"))
    }

    /// A 1.x `Attribute {Name, Index?, Value}` as a child of a 2.x Attributes structure. An Attribute Index is
    /// refused in requests (KMIP 2.0 removed it) and dropped in responses (2.x lists the instances in order).
    fn attribute(a: &Node, request: bool) -> Result<Node, String> {
        let name = child(a, "AttributeName")
            .and_then(|n| n.value.clone())
            .ok_or("an Attribute without its Attribute Name")?;
        if request && child(a, "AttributeIndex").is_some() {
            return Err(format!(
                "the request names an instance of {name:?} by Attribute Index, which KMIP 2.0 removed"
            ));
        }
        let value = child(a, "AttributeValue").ok_or("an Attribute without its value")?;
        if is_custom(&name) {
            // The vendor attribute form (openkcm_kmip::attributes::TAG_VENDOR_ATTRIBUTE).
            return Ok(structure(
                "Attribute",
                vec![
                    leaf("VendorIdentification", "TextString", vendor(&name)),
                    leaf("AttributeName", "TextString", &name),
                    value.clone(),
                ],
            ));
        }
        Ok(Node {
            name: element(&name)?.to_string(),
            ..value.clone()
        })
    }

    /// A 1.x Attribute Name as a 2.x Attribute Reference: the attribute's tag, or a vendor reference.
    fn reference(n: &Node) -> Result<Node, String> {
        let name = n.value.clone().ok_or("an Attribute Name without a value")?;
        if is_custom(&name) {
            return Ok(structure(
                "AttributeReference",
                vec![
                    leaf("VendorIdentification", "TextString", vendor(&name)),
                    leaf("AttributeName", "TextString", &name),
                ],
            ));
        }
        Ok(leaf("AttributeReference", "Enumeration", element(&name)?))
    }

    fn attributes(list: &[&Node], request: bool) -> Result<Node, String> {
        Ok(structure(
            "Attributes",
            list.iter()
                .map(|a| attribute(a, request))
                .collect::<Result<_, _>>()?,
        ))
    }

    /// One payload of operation `op` (a Request Payload when `request`, else a Response Payload).
    fn payload(p: &Node, op: &str, request: bool) -> Result<Node, String> {
        let mut out: Vec<Node> = Vec::new();
        let bare: Vec<&Node> = p
            .children
            .iter()
            .filter(|c| c.name == "Attribute")
            .collect();
        let mut bare_done = false;
        for c in &p.children {
            match c.name.as_str() {
                "TemplateAttribute"
                | "CommonTemplateAttribute"
                | "PrivateKeyTemplateAttribute"
                | "PublicKeyTemplateAttribute" => {
                    if child(c, "Name").is_some() {
                        return Err("a named Template: KMIP 2.0 removed Template objects".into());
                    }
                    let name = match c.name.as_str() {
                        "CommonTemplateAttribute" => "CommonAttributes",
                        "PrivateKeyTemplateAttribute" => "PrivateKeyAttributes",
                        "PublicKeyTemplateAttribute" => "PublicKeyAttributes",
                        _ => "Attributes",
                    };
                    let list: Vec<&Node> = c
                        .children
                        .iter()
                        .filter(|a| a.name == "Attribute")
                        .collect();
                    out.push(Node {
                        name: name.into(),
                        ..attributes(&list, request)?
                    });
                }
                "Attribute" if bare_done => {}
                "Attribute" => {
                    bare_done = true;
                    match (op, request) {
                        // Locate's filters, and Get Attributes' answer: one Attributes structure.
                        ("Locate", true) | ("GetAttributes", false) => {
                            out.push(attributes(&bare, request)?)
                        }
                        ("AddAttribute" | "ModifyAttribute", true) => {
                            if bare.len() != 1 {
                                return Err(format!("{op} with {} attributes", bare.len()));
                            }
                            out.push(structure("NewAttribute", vec![attribute(bare[0], true)?]));
                        }
                        // 2.x answers Add/Modify/Delete Attribute with the Unique Identifier only.
                        ("AddAttribute" | "ModifyAttribute" | "DeleteAttribute", false) => {}
                        _ => {
                            return Err(format!(
                                "{op} carries a bare Attribute this translation does not know"
                            ))
                        }
                    }
                }
                "AttributeName" => match (op, request) {
                    ("GetAttributes" | "DeleteAttribute", true) | ("GetAttributeList", false) => {
                        out.push(reference(c)?)
                    }
                    _ => {
                        return Err(format!(
                            "{op} carries an Attribute Name this translation does not know"
                        ))
                    }
                },
                "AttributeIndex" if op == "DeleteAttribute" && request => return Err(
                    "Delete Attribute names an instance by Attribute Index, which KMIP 2.0 removed"
                        .into(),
                ),
                _ => out.push(c.clone()),
            }
        }
        // KMIP 2.x: Locate requires its Attributes (empty when the case filters on nothing but Locate's own
        // fields), and Get Attributes answers with one Attributes structure even when none of the asked-for
        // attributes exists.
        if !bare_done && ((op == "Locate" && request) || (op == "GetAttributes" && !request)) {
            out.push(structure("Attributes", Vec::new()));
        }
        Ok(Node {
            children: out,
            ..p.clone()
        })
    }

    /// One Request or Response Message of a 1.4 case, as KMIP 2.1.
    pub fn message(m: &Node) -> Result<Node, String> {
        let request = m.name == "RequestMessage";
        let mut out = m.clone();
        for c in &mut out.children {
            match c.name.as_str() {
                "RequestHeader" | "ResponseHeader" => {
                    for h in &mut c.children {
                        if h.name == "ProtocolVersion" {
                            *h = structure(
                                "ProtocolVersion",
                                vec![
                                    leaf("ProtocolVersionMajor", "Integer", "2"),
                                    leaf("ProtocolVersionMinor", "Integer", "1"),
                                ],
                            );
                        }
                    }
                }
                "BatchItem" => {
                    let op = child(c, "Operation")
                        .and_then(|o| o.value.clone())
                        .unwrap_or_default();
                    for p in &mut c.children {
                        if p.name == "RequestPayload" || p.name == "ResponsePayload" {
                            *p = payload(p, &op, request)?;
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

/// Runs one 1.4 file translated to KMIP 2.1 (see [`v21::message`]) as `service`.
async fn run_file_v21(
    dev: &Dev,
    path: &Path,
    service: &str,
    generated: &mut HashSet<String>,
    notify: &NotifyRx,
) -> (Outcome, usize, usize) {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return (Outcome::Fail(format!("cannot read: {e}")), 0, 0),
    };
    let mut doc = match xml::parse_document(&text) {
        Ok(d) => d,
        Err(e) => return (Outcome::Fail(format!("malformed test case: {e}")), 0, 0),
    };
    for m in &mut doc.messages {
        collapse_attribute_names(m);
    }
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let unsupported = unsupported_reason(&name, &doc.messages);
    let total = doc
        .messages
        .iter()
        .filter(|m| m.name == "RequestMessage")
        .count();
    let mut messages = Vec::with_capacity(doc.messages.len());
    for (i, m) in doc.messages.iter().enumerate() {
        match v21::message(m) {
            Ok(n) => messages.push(n),
            Err(why) => {
                let at = doc.messages[..i]
                    .iter()
                    .filter(|m| m.name == "RequestMessage")
                    .count();
                // A profile this server does not implement stays "not supported", whatever 2.x makes of it.
                let outcome = match unsupported {
                    Some(r) => Outcome::NotSupported(r),
                    None => Outcome::NotApplicable(why),
                };
                return (outcome, at, total);
            }
        }
    }
    let mut pairs: Vec<(&Node, Option<&Node>)> = Vec::new();
    let mut it = messages.iter().peekable();
    while let Some(m) = it.next() {
        if m.name == "RequestMessage" {
            pairs.push((m, it.next_if(|n| n.name == "ResponseMessage")));
        }
    }
    let mut b = Bindings {
        server_generated: std::mem::take(generated),
        time_scale: if waits_for_near_future(&text) { 60 } else { 1 },
        v14_reasons: true,
        notify: Some(notify.clone()),
        ..Bindings::default()
    };
    let outcome = run_pairs(&pairs, &name, unsupported, dev, service, &mut b).await;
    *generated = std::mem::take(&mut b.server_generated);
    outcome
}

/// The v1.4 files that pass in KMIP 1.4, translated to KMIP 2.1 and replayed against their own `openkcm dev`. Fails
/// when a file listed in `tests/conformance/expected-pass-v21.txt` does not pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oasis_kmip_1_4_cases_translated_to_2_1() {
    let Some(vectors) = vectors_dir() else {
        assert!(
            !common::in_ci(),
            "the OASIS KMIP XML cases are missing (set OPENKCM_VECTORS)"
        );
        eprintln!("conformance (KMIP 2.1): OASIS KMIP XML cases not found: SKIPPED");
        return;
    };
    let lists = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let rows = |file: &str| -> Vec<String> {
        std::fs::read_to_string(lists.join(file))
            .unwrap_or_default()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect()
    };
    let only = std::env::var("OPENKCM_CONFORMANCE_ONLY").ok();
    let tmp = tempfile::tempdir().unwrap();
    let notify_socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoints = notify_endpoints(
        &vectors.join("oasis-kmip-xml"),
        &["v1.4"],
        &notify_socket.local_addr().unwrap().to_string(),
    );
    let mut dev = Dev::start_env(
        tmp.path(),
        &["conformance"],
        &[
            ("OPENKCM_AUTO_PROVISION_SERVICES", "true"),
            ("OPENKCM_NOTIFY_ENDPOINTS", &endpoints),
        ],
    );
    let notify = notify_listener(&tmp.path().join("pki"), notify_socket);
    let mut results: BTreeMap<(String, String), (Outcome, usize, usize)> = BTreeMap::new();
    let mut generated_by_service: HashMap<String, HashSet<String>> = HashMap::new();
    let dir = vectors.join("oasis-kmip-xml").join("v1.4");
    let mut files: Vec<String> = rows("expected-pass.txt")
        .iter()
        .filter_map(|r| r.strip_prefix("v1.4/").map(str::to_string))
        .collect();
    files.sort();
    for file in files {
        if only.as_deref().is_some_and(|o| !file.contains(o)) {
            continue;
        }
        let service = service_name("v2.1", &file);
        let generated = generated_by_service.entry(service.clone()).or_default();
        let r = run_file_v21(&dev, &dir.join(&file), &service, generated, &notify).await;
        results.insert(("v1.4→2.1".to_string(), file), r);
    }
    dev.stop();

    let section = format!(
        "### KMIP 2.1 (translated 1.4 cases)\n\n{}",
        render(&results).replace("### ", "#### ")
    );
    publish(None, Some(&section), only.is_none());
    let mut regressions = Vec::new();
    for line in rows("expected-pass-v21.txt") {
        let f = line.strip_prefix("v1.4/").unwrap_or(&line);
        match results.get(&("v1.4→2.1".to_string(), f.to_string())) {
            Some((Outcome::Pass, _, _)) | Some((Outcome::Policy(_), _, _)) => {}
            Some((o, _, _)) => regressions.push(format!("{line}: {o:?}")),
            None if only.is_some() => {}
            None => regressions.push(format!("{line}: not among the passing 1.4 files")),
        }
    }
    for ((_, f), (o, _, _)) in &results {
        if let Outcome::Fail(why) = o {
            eprintln!("FAIL (KMIP 2.1) v1.4/{f}: {why}");
        }
    }
    assert!(
        regressions.is_empty(),
        "KMIP 2.1 conformance regressions:\n{}",
        regressions.join("\n")
    );
}

#[test]
fn a_1_4_case_translates_to_the_kmip_2_1_encoding() {
    let messages = xml::parse(
        r#"<RequestMessage>
  <RequestHeader><ProtocolVersion><ProtocolVersionMajor type="Integer" value="1"/>
    <ProtocolVersionMinor type="Integer" value="4"/></ProtocolVersion><BatchCount type="Integer" value="4"/></RequestHeader>
  <BatchItem><Operation type="Enumeration" value="Create"/><RequestPayload>
    <ObjectType type="Enumeration" value="SymmetricKey"/>
    <TemplateAttribute>
      <Attribute><AttributeName type="TextString" value="Cryptographic Algorithm"/>
        <AttributeValue type="Enumeration" value="AES"/></Attribute>
      <Attribute><AttributeName type="TextString" value="Name"/><AttributeValue>
        <NameValue type="TextString" value="k"/><NameType type="Enumeration" value="UninterpretedTextString"/>
      </AttributeValue></Attribute>
      <Attribute><AttributeName type="TextString" value="x-ID"/>
        <AttributeValue type="TextString" value="TC-1"/></Attribute>
    </TemplateAttribute></RequestPayload></BatchItem>
  <BatchItem><Operation type="Enumeration" value="GetAttributes"/><RequestPayload>
    <AttributeName type="TextString" value="State"/><AttributeName type="TextString" value="x-ID"/>
  </RequestPayload></BatchItem>
  <BatchItem><Operation type="Enumeration" value="ModifyAttribute"/><RequestPayload>
    <Attribute><AttributeName type="TextString" value="x-ID"/><AttributeValue type="TextString" value="TC-2"/></Attribute>
  </RequestPayload></BatchItem>
  <BatchItem><Operation type="Enumeration" value="Locate"/><RequestPayload>
    <Attribute><AttributeName type="TextString" value="Object Type"/>
      <AttributeValue type="Enumeration" value="SymmetricKey"/></Attribute>
  </RequestPayload></BatchItem>
</RequestMessage>
<ResponseMessage>
  <ResponseHeader><ProtocolVersion><ProtocolVersionMajor type="Integer" value="1"/>
    <ProtocolVersionMinor type="Integer" value="4"/></ProtocolVersion><BatchCount type="Integer" value="2"/></ResponseHeader>
  <BatchItem><Operation type="Enumeration" value="GetAttributes"/><ResultStatus type="Enumeration" value="Success"/>
    <ResponsePayload><UniqueIdentifier type="TextString" value="$UNIQUE_IDENTIFIER_0"/>
      <Attribute><AttributeName type="TextString" value="Link"/><AttributeIndex type="Integer" value="1"/><AttributeValue>
        <LinkType type="Enumeration" value="ReplacementObjectLink"/>
        <LinkedObjectIdentifier type="TextString" value="$UNIQUE_IDENTIFIER_1"/></AttributeValue></Attribute>
    </ResponsePayload></BatchItem>
  <BatchItem><Operation type="Enumeration" value="ModifyAttribute"/><ResultStatus type="Enumeration" value="Success"/>
    <ResponsePayload><UniqueIdentifier type="TextString" value="$UNIQUE_IDENTIFIER_0"/>
      <Attribute><AttributeName type="TextString" value="x-ID"/><AttributeValue type="TextString" value="TC-2"/></Attribute>
    </ResponsePayload></BatchItem>
</ResponseMessage>"#,
    )
    .unwrap();
    let request = v21::message(&messages[0]).unwrap();
    let item = request_item(&request, &Bindings::default()).unwrap();
    let version = item
        .child(t::REQUEST_HEADER)
        .and_then(|h| h.child(t::PROTOCOL_VERSION))
        .map(|v| openkcm_kmip::ProtocolVersion::from_item(v).unwrap());
    assert_eq!(version, Some(openkcm_kmip::ProtocolVersion::new(2, 1)));
    let payloads: Vec<&Item> = item
        .children_with(t::BATCH_ITEM)
        .map(|b| b.child(t::REQUEST_PAYLOAD).unwrap())
        .collect();
    // Create: Template-Attribute becomes Attributes, with the 2.x tags and the vendor attribute form.
    assert!(payloads[0].child(t::TEMPLATE_ATTRIBUTE).is_none());
    let attrs = payloads[0].child(t::ATTRIBUTES).unwrap();
    let tags: Vec<u32> = attrs.children().iter().map(|c| c.tag).collect();
    assert_eq!(
        tags,
        vec![t::CRYPTOGRAPHIC_ALGORITHM, t::NAME, t::ATTRIBUTE]
    );
    assert_eq!(attrs.children()[0].value, Value::Enumeration(3));
    let vendor = &attrs.children()[2];
    assert_eq!(
        vendor.child(t::VENDOR_IDENTIFICATION).unwrap().as_text(),
        Some("x")
    );
    assert_eq!(
        vendor.child(t::ATTRIBUTE_NAME).unwrap().as_text(),
        Some("x-ID")
    );
    // Get Attributes: Attribute Reference (the tag, or a vendor reference) instead of Attribute Name.
    let refs: Vec<&Item> = payloads[1].children_with(t::ATTRIBUTE_REFERENCE).collect();
    assert_eq!(refs[0].value, Value::Enumeration(t::STATE));
    assert_eq!(
        refs[1].child(t::ATTRIBUTE_NAME).unwrap().as_text(),
        Some("x-ID")
    );
    assert!(payloads[1].child(t::ATTRIBUTE_NAME).is_none());
    // Modify Attribute: New Attribute; Locate: one Attributes structure.
    let new = payloads[2].child(t::NEW_ATTRIBUTE).unwrap();
    assert_eq!(new.children()[0].tag, t::ATTRIBUTE);
    assert_eq!(
        payloads[3].child(t::ATTRIBUTES).unwrap().children()[0].tag,
        t::OBJECT_TYPE
    );

    // Responses: Get Attributes answers with Attributes (the Attribute Index dropped); Modify Attribute with the
    // Unique Identifier only.
    let response = v21::message(&messages[1]).unwrap();
    let get = &response.children[1].children[2];
    assert_eq!(
        get.children
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["UniqueIdentifier", "Attributes"]
    );
    assert_eq!(get.children[1].children[0].name, "Link");
    let modify = &response.children[2].children[2];
    assert_eq!(modify.children.len(), 1);

    // What KMIP 2.x cannot say: an instance named by Attribute Index, a removed attribute.
    let index = xml::parse(
        r#"<RequestMessage><BatchItem><Operation type="Enumeration" value="DeleteAttribute"/><RequestPayload>
        <AttributeName type="TextString" value="Name"/><AttributeIndex type="Integer" value="1"/>
        </RequestPayload></BatchItem></RequestMessage>"#,
    )
    .unwrap();
    assert!(v21::message(&index[0])
        .unwrap_err()
        .contains("Attribute Index"));
    let policy = xml::parse(
        r#"<RequestMessage><BatchItem><Operation type="Enumeration" value="Create"/><RequestPayload>
        <TemplateAttribute><Attribute><AttributeName type="TextString" value="Operation Policy Name"/>
        <AttributeValue type="TextString" value="default"/></Attribute></TemplateAttribute>
        </RequestPayload></BatchItem></RequestMessage>"#,
    )
    .unwrap();
    assert!(v21::message(&policy[0])
        .unwrap_err()
        .contains("Operation Policy Name"));
}

/// Whether any node of `n` has the value `value`.
fn contains_value(n: &Node, value: &str) -> bool {
    n.value.as_deref() == Some(value) || n.children.iter().any(|c| contains_value(c, value))
}

/// What the client's endpoint receives: the server's message and where to send the answer.
type NotifyMsg = (Item, tokio::sync::oneshot::Sender<Item>);
/// The receiving end of the client's endpoint.
type NotifyRx = std::sync::Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<NotifyMsg>>>;

/// Whether a recorded Request Message is one the server sends to the client (Put, Notify): the 1.0-1.2 files mark
/// them "[Server-to-Client]", the 1.4 file does not, so the operation decides.
fn server_to_client(req: &Node) -> bool {
    let ops: Vec<&str> = req
        .children
        .iter()
        .filter(|c| c.name == "BatchItem")
        .filter_map(|bi| {
            bi.children
                .iter()
                .find(|c| c.name == "Operation")
                .and_then(|c| c.value.as_deref())
        })
        .collect();
    !ops.is_empty() && ops.iter().all(|o| matches!(*o, "Put" | "Notify"))
}

/// The client's answer to a server-to-client message: Success for each item, with an empty payload.
fn success_answer(request: &Item) -> Item {
    let parsed = openkcm_kmip::RequestMessage::parse(request);
    let (version, ops) = match &parsed {
        Ok(m) => (
            m.header.version,
            m.items.iter().map(|b| b.operation).collect::<Vec<_>>(),
        ),
        Err(_) => (openkcm_kmip::ProtocolVersion::new(1, 0), vec![]),
    };
    openkcm_kmip::ResponseMessage {
        version,
        timestamp: now_secs(),
        client_correlation: None,
        server_correlation: None,
        items: ops
            .into_iter()
            .map(|op| openkcm_kmip::ResponseBatchItem {
                operation: Some(op),
                batch_id: None,
                result: Ok(Item::structure(t::RESPONSE_PAYLOAD, vec![])),
                undone: false,
                pending: None,
            })
            .collect(),
    }
    .into_item()
}

/// The services of the files with server-to-client messages, as `--notify-endpoint` values for `addr`.
fn notify_endpoints(dir: &Path, versions: &[&str], addr: &str) -> String {
    let mut out = Vec::new();
    for version in versions {
        let Ok(entries) = std::fs::read_dir(dir.join(version)) else {
            continue;
        };
        for e in entries.flatten() {
            let file = e.file_name().to_string_lossy().to_string();
            if file.starts_with("TC_NP") || file.starts_with("TC-NP") {
                out.push(format!(
                    "conformance/{}={addr}",
                    service_name(version, &file)
                ));
                out.push(format!(
                    "conformance/{}={addr}",
                    service_name("v2.1", &file)
                ));
            }
        }
    }
    out.join(",")
}

/// A client's KMIP endpoint (mTLS with the node's server certificate) that hands each message it receives to the
/// runner and sends back the runner's answer.
fn notify_listener(pki_dir: &Path, listener: tokio::net::TcpListener) -> NotifyRx {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let pki = openkcm_net::pki::DevPki::open_or_create(pki_dir).unwrap();
    let config = openkcm_net::tls::server_config(&pki.server().unwrap()).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let (tx, rx) = tokio::sync::mpsc::channel::<NotifyMsg>(64);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                loop {
                    let mut message = vec![0u8; 8];
                    if tls.read_exact(&mut message).await.is_err() {
                        return;
                    }
                    let len = u32::from_be_bytes([message[4], message[5], message[6], message[7]]);
                    let mut body = vec![0u8; len as usize];
                    if tls.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    message.extend(body);
                    let Ok(item) = openkcm_ttlv::decode(&message, &openkcm_ttlv::Limits::default())
                    else {
                        return;
                    };
                    let (reply_tx, reply_rx) = tokio::sync::oneshot::channel();
                    if tx.send((item, reply_tx)).await.is_err() {
                        return;
                    }
                    let Ok(reply) = reply_rx.await else { return };
                    if tls.write_all(&openkcm_ttlv::encode(&reply)).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    std::sync::Arc::new(tokio::sync::Mutex::new(rx))
}
