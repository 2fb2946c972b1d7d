//! Which protocol version defines a tag: the last line of version discipline.
//!
//! KMIP allocates its tags in order, one block per version: 1.0 defines 0x420001–0x4200A1, 1.1 adds up to 0x4200B7,
//! 1.2 up to 0x4200D3, 1.3 up to 0x4200F7, 1.4 up to 0x420124, 2.0 up to 0x420165, and 2.1 follows. KMIP 2.0 turned
//! a few 1.x tags into "(Reserved)" (Template-Attribute and its kin, Attribute Index, Custom Attribute, Operation
//! Policy Name, the deprecated certificate fields). Tags 0x54xxxx are extensions and belong to every version.
//!
//! [`crate::process`] passes every response payload through [`retain_defined`], so a handler that built a field of a
//! newer version (or a 1.x-only field for a 2.x client) cannot put it on the wire. Custom attributes (`x-…`, `y-…`)
//! are returned as sent: their values are the client's and are not filtered.

use crate::message::ProtocolVersion;
use crate::tags as t;
use openkcm_ttlv::{Item, Value};

/// Tags 1.x defines that KMIP 2.0 designates "(Reserved)".
const RESERVED_IN_2: &[u32] = &[
    t::ATTRIBUTE_INDEX,
    0x420014, // Certificate Identifier
    0x420015, // Certificate Issuer
    0x420016, // Certificate Issuer Alternative Name
    0x420017, // Certificate Issuer Distinguished Name
    0x42001A, // Certificate Subject
    0x42001B, // Certificate Subject Alternative Name
    0x42001C, // Certificate Subject Distinguished Name
    t::COMMON_TEMPLATE_ATTRIBUTE,
    0x42002D, // Custom Attribute
    0x42003B, // Issuer
    0x42005D, // Operation Policy Name
    t::PRIVATE_KEY_TEMPLATE_ATTRIBUTE,
    t::PUBLIC_KEY_TEMPLATE_ATTRIBUTE,
    0x420087, // Serial Number
    t::TEMPLATE,
    t::TEMPLATE_ATTRIBUTE,
];

/// The first version that defines `tag`; `None` for a tag no version defines (tag 0x420000 and anything outside
/// the KMIP and extension ranges). Extension tags (0x54xxxx) are defined from 1.0.
pub fn introduced_in(tag: u32) -> Option<ProtocolVersion> {
    let v = ProtocolVersion::new;
    Some(match tag {
        0x420001..=0x4200A1 => v(1, 0),
        0x4200A2..=0x4200B7 => v(1, 1),
        0x4200B8..=0x4200D3 => v(1, 2),
        0x4200D4..=0x4200F7 => v(1, 3),
        0x4200F8..=0x420124 => v(1, 4),
        0x420125..=0x420165 => v(2, 0),
        0x420166..=0x42FFFF => v(2, 1),
        0x540000..=0x54FFFF => v(1, 0),
        _ => return None,
    })
}

/// Whether `tag` may appear in a message of `version`.
pub fn defined_in(tag: u32, version: ProtocolVersion) -> bool {
    introduced_in(tag).is_some_and(|first| first <= version)
        && !(version.is_v2() && RESERVED_IN_2.contains(&tag))
}

/// A custom attribute (`x-…`/`y-…`, 1.x or 2.x vendor form): its value is the client's and is kept as sent.
fn is_custom_attribute(item: &Item) -> bool {
    item.tag == t::ATTRIBUTE
        && item
            .child(t::ATTRIBUTE_NAME)
            .and_then(Item::as_text)
            .is_some_and(|n| n.starts_with("x-") || n.starts_with("y-"))
}

/// Removes, anywhere below `payload`, every item whose tag `version` does not define (the payload's own tag is
/// not judged). Returns the tags removed, in tree order, so a caller can report them.
pub fn retain_defined(payload: &mut Item, version: ProtocolVersion) -> Vec<u32> {
    let mut removed = Vec::new();
    strip(payload, version, &mut removed, 0);
    removed
}

fn strip(item: &mut Item, version: ProtocolVersion, removed: &mut Vec<u32>, depth: usize) {
    // The decoder bounds depth at 32; a tree built by a handler is bounded here too (no recursion without end).
    if depth > 64 || is_custom_attribute(item) {
        return;
    }
    if let Value::Structure(children) = &mut item.value {
        children.retain_mut(|c| {
            if defined_in(c.tag, version) {
                true
            } else {
                c.zeroize_bytes();
                removed.push(c.tag);
                false
            }
        });
        for c in children.iter_mut() {
            strip(c, version, removed, depth + 1);
        }
    }
}

/// Every tag below `payload` that `version` does not define (custom attribute values excepted), in tree order.
/// For tests and the conformance runner: a response that passed through [`crate::process`] has none.
pub fn undefined_tags(payload: &Item, version: ProtocolVersion) -> Vec<u32> {
    let mut copy = payload.clone();
    let found = retain_defined(&mut copy, version);
    copy.zeroize_bytes();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(major: i32, minor: i32) -> ProtocolVersion {
        ProtocolVersion::new(major, minor)
    }
    fn text(tag: u32, s: &str) -> Item {
        Item::new(tag, Value::TextString(s.to_owned()))
    }
    fn int(tag: u32, n: i32) -> Item {
        Item::new(tag, Value::Integer(n))
    }
    fn bytes(tag: u32, b: Vec<u8>) -> Item {
        Item::new(tag, Value::ByteString(b))
    }

    #[test]
    fn the_version_blocks_match_known_tags() {
        assert_eq!(introduced_in(t::ACTIVATION_DATE), Some(v(1, 0)));
        assert_eq!(introduced_in(0x4200A1), Some(v(1, 0))); // Password
        assert_eq!(introduced_in(0x4200A2), Some(v(1, 1))); // Device Identifier
        assert_eq!(introduced_in(t::KEY_VALUE_LOCATION), Some(v(1, 2)));
        assert_eq!(introduced_in(t::RANDOM_IV), Some(v(1, 2)));
        assert_eq!(introduced_in(t::OFFSET_ITEMS), Some(v(1, 3)));
        assert_eq!(
            introduced_in(t::AUTHENTICATED_ENCRYPTION_TAG),
            Some(v(1, 4))
        );
        assert_eq!(introduced_in(t::ATTRIBUTES), Some(v(2, 0)));
        assert_eq!(
            introduced_in(t::PUBLIC_PROTECTION_STORAGE_MASKS),
            Some(v(2, 0))
        );
        assert_eq!(introduced_in(0x420166), Some(v(2, 1)));
        assert_eq!(introduced_in(0x540001), Some(v(1, 0)));
        assert_eq!(introduced_in(0x420000), None);
        assert_eq!(introduced_in(0x430001), None);
    }

    #[test]
    fn reserved_1_x_tags_are_not_defined_in_2_x() {
        assert!(defined_in(t::TEMPLATE_ATTRIBUTE, v(1, 4)));
        assert!(!defined_in(t::TEMPLATE_ATTRIBUTE, v(2, 0)));
        assert!(!defined_in(t::ATTRIBUTE_INDEX, v(2, 1)));
        assert!(defined_in(t::ATTRIBUTE, v(2, 1)));
    }

    #[test]
    fn newer_fields_are_removed_and_custom_attribute_values_kept() {
        let mut payload = Item::structure(
            t::RESPONSE_PAYLOAD,
            vec![
                text(t::UNIQUE_IDENTIFIER, "1"),
                Item::new(t::STATE, Value::Enumeration(2)),
                bytes(t::AUTHENTICATED_ENCRYPTION_TAG, vec![9; 16]),
                Item::structure(
                    t::ATTRIBUTE,
                    vec![
                        text(t::ATTRIBUTE_NAME, "x-app"),
                        Item::structure(t::ATTRIBUTE_VALUE, vec![int(t::OFFSET_ITEMS, 4)]),
                    ],
                ),
                Item::structure(
                    t::ATTRIBUTE,
                    vec![
                        text(t::ATTRIBUTE_NAME, "Cryptographic Parameters"),
                        Item::structure(
                            t::ATTRIBUTE_VALUE,
                            vec![
                                Item::new(t::BLOCK_CIPHER_MODE, Value::Enumeration(1)),
                                Item::new(t::RANDOM_IV, Value::Boolean(true)),
                            ],
                        ),
                    ],
                ),
            ],
        );
        let original = payload.clone();
        assert!(undefined_tags(&original, v(1, 4)).is_empty());
        assert_eq!(
            retain_defined(&mut payload, v(1, 1)),
            vec![t::AUTHENTICATED_ENCRYPTION_TAG, t::RANDOM_IV]
        );
        assert!(payload.child(t::AUTHENTICATED_ENCRYPTION_TAG).is_none());
        assert!(payload.child(t::STATE).is_some());
        // The custom attribute keeps its 1.3 field; the standard attribute lost its 1.2 one.
        let attrs: Vec<&Item> = payload
            .children()
            .iter()
            .filter(|c| c.tag == t::ATTRIBUTE)
            .collect();
        assert_eq!(attrs[0], &original.children()[3]);
        let params = attrs[1].child(t::ATTRIBUTE_VALUE).unwrap();
        assert_eq!(params.children().len(), 1);
        // 2.x: the reserved Attribute Index goes.
        let mut v2 = Item::structure(
            t::RESPONSE_PAYLOAD,
            vec![text(t::UNIQUE_IDENTIFIER, "1"), int(t::ATTRIBUTE_INDEX, 0)],
        );
        assert_eq!(retain_defined(&mut v2, v(2, 0)), vec![t::ATTRIBUTE_INDEX]);
    }
}
