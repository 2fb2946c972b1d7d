//! One attribute model for both KMIP attribute encodings: 1.x `Attribute {Name, Index, Value}` (inside a
//! Template-Attribute or directly in a payload) and 2.x tagged values inside an `Attributes` structure.

use crate::attribute_names::{name_for_tag, tag_for_name};
use crate::error::KmipError;
use crate::tags as t;
use crate::ProtocolVersion;
use openkcm_ttlv::{Item, Value};

/// In KMIP 2.x a vendor (custom) attribute is an `Attribute` structure holding Vendor Identification, Attribute
/// Name and Attribute Value.
pub const TAG_VENDOR_ATTRIBUTE: u32 = t::ATTRIBUTE;

/// One attribute: its KMIP 1.x name, optional index, and the value item. The value's tag is the 2.x attribute
/// tag for standard attributes, and Attribute Value for custom ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// The attribute name, e.g. "Cryptographic Algorithm" or a custom "x-…" name.
    pub name: String,
    /// The Attribute Index, if the client gave one.
    pub index: Option<i32>,
    /// The value.
    pub value: Item,
}

impl Attribute {
    /// A standard or custom attribute from its name and value.
    pub fn new(name: &str, value: Value) -> Self {
        let tag = tag_for_name(name).unwrap_or(t::ATTRIBUTE_VALUE);
        Self {
            name: name.to_owned(),
            index: None,
            value: Item::new(tag, value),
        }
    }

    /// A Name attribute of type Uninterpreted Text String.
    pub fn name_value(text: &str) -> Self {
        Self::new(
            "Name",
            Value::Structure(vec![
                Item::new(t::NAME_VALUE, Value::TextString(text.to_owned())),
                Item::new(
                    t::NAME_TYPE,
                    Value::Enumeration(crate::enums::name_type::UNINTERPRETED_TEXT_STRING),
                ),
            ]),
        )
    }

    /// The text of a Name attribute.
    pub fn name_text(&self) -> Option<&str> {
        self.value.child(t::NAME_VALUE).and_then(Item::as_text)
    }

    /// Parses a 1.x `Attribute` structure.
    pub fn from_v1(item: &Item) -> Result<Self, KmipError> {
        let name = item
            .child(t::ATTRIBUTE_NAME)
            .and_then(Item::as_text)
            .ok_or_else(|| KmipError::invalid_field("an Attribute lacks its Attribute Name"))?;
        let value = item.child(t::ATTRIBUTE_VALUE).ok_or_else(|| {
            KmipError::invalid_field(format!("attribute {name:?} lacks its Attribute Value"))
        })?;
        let mut value = value.clone();
        value.tag = tag_for_name(name).unwrap_or(t::ATTRIBUTE_VALUE);
        Ok(Self {
            name: name.to_owned(),
            index: item.child(t::ATTRIBUTE_INDEX).and_then(Item::as_i32),
            value,
        })
    }

    /// Parses one child of a 2.x `Attributes` structure.
    pub fn from_v2(item: &Item) -> Result<Self, KmipError> {
        if item.tag == TAG_VENDOR_ATTRIBUTE {
            let name = item
                .child(t::ATTRIBUTE_NAME)
                .and_then(Item::as_text)
                .ok_or_else(|| {
                    KmipError::invalid_field("a Vendor Attribute lacks its Attribute Name")
                })?;
            let value = item.child(t::ATTRIBUTE_VALUE).ok_or_else(|| {
                KmipError::invalid_field(format!("vendor attribute {name:?} lacks its value"))
            })?;
            return Ok(Self {
                name: name.to_owned(),
                index: None,
                value: value.clone(),
            });
        }
        let name = name_for_tag(item.tag).ok_or_else(|| {
            KmipError::invalid_field(format!(
                "tag 0x{:06X} is not an attribute this server knows",
                item.tag
            ))
        })?;
        Ok(Self {
            name: name.to_owned(),
            index: None,
            value: item.clone(),
        })
    }

    /// Encodes as a 1.x `Attribute` structure.
    pub fn to_v1(&self) -> Item {
        let mut children = vec![Item::new(
            t::ATTRIBUTE_NAME,
            Value::TextString(self.name.clone()),
        )];
        if let Some(i) = self.index {
            children.push(Item::new(t::ATTRIBUTE_INDEX, Value::Integer(i)));
        }
        children.push(Item::new(t::ATTRIBUTE_VALUE, self.value.value.clone()));
        Item::structure(t::ATTRIBUTE, children)
    }

    /// Encodes as a child of a 2.x `Attributes` structure.
    pub fn to_v2(&self) -> Item {
        match tag_for_name(&self.name) {
            Some(tag) => Item::new(tag, self.value.value.clone()),
            None => Item::structure(
                TAG_VENDOR_ATTRIBUTE,
                vec![
                    Item::new(t::VENDOR_IDENTIFICATION, Value::TextString("x".into())),
                    Item::new(t::ATTRIBUTE_NAME, Value::TextString(self.name.clone())),
                    Item::new(t::ATTRIBUTE_VALUE, self.value.value.clone()),
                ],
            ),
        }
    }
}

/// Every attribute a request payload carries, whatever the encoding: 1.x Template-Attribute (and its Attribute
/// children), bare 1.x Attribute children (Locate), and the 2.x Attributes structure.
/// A payload naming Templates (1.x Template-Attribute Name fields) is refused here: the operations that apply
/// Templates (Create, Register) use [`from_payload_with_templates`].
pub fn from_payload(payload: &Item) -> Result<Vec<Attribute>, KmipError> {
    let (attrs, templates) = from_payload_with_templates(payload)?;
    if !templates.is_empty() {
        return Err(KmipError::new(
            crate::enums::result_reason::FEATURE_NOT_SUPPORTED,
            "this operation does not apply named Templates; send the attributes themselves",
        ));
    }
    Ok(attrs)
}

/// As [`from_payload`], and the names of the Templates the 1.x Template-Attribute refers to (its Name fields,
/// KMIP 1.0-1.4), in order.
pub fn from_payload_with_templates(
    payload: &Item,
) -> Result<(Vec<Attribute>, Vec<String>), KmipError> {
    let mut out = Vec::new();
    let mut templates = Vec::new();
    for ta in payload.children_with(t::TEMPLATE_ATTRIBUTE) {
        for n in ta.children_with(t::NAME) {
            let name = n
                .child(t::NAME_VALUE)
                .and_then(Item::as_text)
                .ok_or_else(|| {
                    KmipError::invalid_field("a Template-Attribute Name needs a Name Value")
                })?;
            templates.push(name.to_owned());
        }
        for a in ta.children_with(t::ATTRIBUTE) {
            out.push(Attribute::from_v1(a)?);
        }
    }
    for a in payload.children_with(t::ATTRIBUTE) {
        out.push(Attribute::from_v1(a)?);
    }
    for attrs in payload.children_with(t::ATTRIBUTES) {
        for a in attrs.children() {
            out.push(Attribute::from_v2(a)?);
        }
    }
    Ok((out, templates))
}

/// Encodes attributes for a response payload in `version`'s encoding: a list of 1.x Attribute items, or one
/// 2.x Attributes structure.
pub fn to_payload_items(attrs: &[Attribute], version: ProtocolVersion) -> Vec<Item> {
    if version.is_v2() {
        vec![Item::structure(
            t::ATTRIBUTES,
            attrs.iter().map(Attribute::to_v2).collect(),
        )]
    } else {
        attrs.iter().map(Attribute::to_v1).collect()
    }
}

/// The attribute names a Get Attributes request asks for (1.x Attribute Name strings, 2.x Attribute Reference
/// enumerations of tags or vendor structures). Empty means "all".
pub fn requested_names(payload: &Item) -> Result<Vec<String>, KmipError> {
    let mut names = Vec::new();
    for n in payload.children_with(t::ATTRIBUTE_NAME) {
        names.push(
            n.as_text()
                .ok_or_else(|| KmipError::invalid_field("Attribute Name must be a Text String"))?
                .to_owned(),
        );
    }
    for r in payload.children_with(t::ATTRIBUTE_REFERENCE) {
        let name = match &r.value {
            Value::Enumeration(tag) => name_for_tag(*tag).map(str::to_owned),
            Value::Structure(_) => r
                .child(t::ATTRIBUTE_NAME)
                .and_then(Item::as_text)
                .map(str::to_owned),
            _ => None,
        };
        names.push(name.ok_or_else(|| {
            KmipError::invalid_field("an Attribute Reference names no known attribute")
        })?);
    }
    for (i, n) in names.iter().enumerate() {
        if names.iter().skip(i + 1).any(|m| m == n) {
            return Err(KmipError::new(
                crate::enums::result_reason::INVALID_MESSAGE,
                format!("Attribute Name specified more than once: {n}"),
            ));
        }
    }
    Ok(names)
}

/// How a response names an attribute without its value (Get Attribute List): a 1.x Attribute Name, or a 2.x
/// Attribute Reference (the attribute's tag, or a vendor structure for custom attributes).
pub fn reference_item(name: &str, version: ProtocolVersion) -> Item {
    if !version.is_v2() {
        return Item::new(t::ATTRIBUTE_NAME, Value::TextString(name.to_owned()));
    }
    match tag_for_name(name) {
        Some(tag) => Item::new(t::ATTRIBUTE_REFERENCE, Value::Enumeration(tag)),
        None => Item::structure(
            t::ATTRIBUTE_REFERENCE,
            vec![
                Item::new(t::VENDOR_IDENTIFICATION, Value::TextString("x".into())),
                Item::new(t::ATTRIBUTE_NAME, Value::TextString(name.to_owned())),
            ],
        ),
    }
}

/// OpenKCM's custom attribute carrying the version number of a versioned key (an L3 version).
pub const ATTR_KEY_VERSION: &str = "x-openkcm-key-version";

/// A Boolean attribute every service key (L3) has: a Locate at the edge that filters on it is answered by the Core
/// and finds the application's service key versions, its current one first.
pub const ATTR_SERVICE_KEY: &str = "x-openkcm-service-key";
