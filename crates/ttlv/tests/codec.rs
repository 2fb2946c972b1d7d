//! Known-answer, robustness and round-trip tests for the TTLV codec.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use openkcm_ttlv::{decode, encode, DecodeError, Item, Limits, Value};
use proptest::prelude::*;

/// Reads `rel` from the shared test vectors (`$OPENKCM_VECTORS`, else `../shared/vectors` beside the checkout).
/// Missing vectors fail under CI (`CI=true`) and are skipped, loudly, elsewhere.
fn vectors(rel: &str) -> Option<String> {
    let dir = std::env::var("OPENKCM_VECTORS").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/vectors").to_owned()
    });
    let path = format!("{dir}/{rel}");
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => {
            panic!("test vectors {path} are required in CI: {e}")
        }
        Err(e) => {
            eprintln!("\n*** SKIPPING: test vectors {path} not found ({e}); set OPENKCM_VECTORS to shared/vectors ***\n");
            None
        }
    }
}

/// Reads the "TTLV primitive encodings" spot values from the shared vectors README (never copied here).
fn spot_values() -> Option<Vec<(String, Vec<u8>)>> {
    let text = vectors("README.md")?;
    let section = text
        .split("### TTLV primitive encodings")
        .nth(1)
        .expect("TTLV section");
    let section = section.split("\n### ").next().unwrap();
    let mut out = Vec::new();
    let mut pending = String::new();
    for line in section.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("- ") {
            pending = rest.to_string();
        } else if !line.is_empty() && !pending.is_empty() {
            pending.push(' ');
            pending.push_str(line);
        }
        if pending.matches('`').count() == 2 {
            let (label, rest) = pending
                .split_once(": `")
                .map(|(l, r)| (l, format!("`{r}")))
                .unwrap();
            let hex_text: String = rest.split('`').nth(1).unwrap().split_whitespace().collect();
            out.push((label.trim().to_string(), hex::decode(hex_text).unwrap()));
            pending.clear();
        }
    }
    Some(out)
}

#[test]
fn primitive_encodings_match_the_kmip_specification() {
    let Some(values) = spot_values() else { return };
    assert_eq!(
        values.len(),
        10,
        "expected the ten spot values of KMIP 9.1.2"
    );
    for (label, bytes) in values {
        let expected = match label.as_str() {
            "Integer 8" => Item::new(0x420020, Value::Integer(8)),
            "Long Integer 123456789000000000" => {
                Item::new(0x420020, Value::LongInteger(123_456_789_000_000_000))
            }
            "Big Integer 1234567890000000000000000000" => Item::new(
                0x420020,
                Value::BigInteger(hex::decode("0000000003FD35EB6BC2DF4618080000").unwrap()),
            ),
            "Enumeration 255" => Item::new(0x420020, Value::Enumeration(255)),
            "Boolean true" => Item::new(0x420020, Value::Boolean(true)),
            "Text String \"Hello World\"" => {
                Item::new(0x420020, Value::TextString("Hello World".into()))
            }
            "Byte String 01 02 03" => Item::new(0x420020, Value::ByteString(vec![1, 2, 3])),
            "Date-Time 2008-03-14T11:56:40Z" => Item::new(0x420020, Value::DateTime(1_205_495_800)),
            "Interval 864000 s" => Item::new(0x420020, Value::Interval(864_000)),
            l if l.starts_with("Structure") => Item::structure(
                0x420020,
                vec![
                    Item::new(0x420004, Value::Enumeration(254)),
                    Item::new(0x420005, Value::Integer(255)),
                ],
            ),
            other => panic!("unexpected spot value {other}"),
        };
        assert_eq!(
            decode(&bytes, &Limits::default()).unwrap(),
            expected,
            "{label}"
        );
        assert_eq!(encode(&expected), bytes, "{label}");
    }
}

fn sample_message() -> Vec<u8> {
    encode(&Item::structure(
        0x420078,
        vec![
            Item::structure(0x420077, vec![Item::new(0x42000D, Value::Integer(1))]),
            Item::new(0x420094, Value::TextString("a-key-id".into())),
            Item::new(0x420043, Value::ByteString(vec![7; 32])),
            Item::new(0x420092, Value::DateTime(1_700_000_000)),
            Item::new(0x420008, Value::Boolean(false)),
        ],
    ))
}

#[test]
fn every_truncation_of_a_valid_message_is_an_error() {
    let bytes = sample_message();
    for cut in 0..bytes.len() {
        let err = decode(&bytes[..cut], &Limits::default()).unwrap_err();
        assert!(
            matches!(err, DecodeError::Truncated { .. }),
            "cut {cut}: {err:?}"
        );
    }
}

#[test]
fn hostile_length_fields_are_rejected_before_allocation() {
    // A structure claiming 4 GiB of content.
    let huge = hex::decode("42007801FFFFFFF8").unwrap();
    assert!(matches!(
        decode(&huge, &Limits::default()),
        Err(DecodeError::Truncated { .. })
    ));
    // A byte string claiming more than the message holds.
    let lying = hex::decode("4200430800010000AABBCCDD00000000").unwrap();
    assert!(matches!(
        decode(&lying, &Limits::default()),
        Err(DecodeError::Truncated { .. })
    ));
    // A child whose length runs past the end of its parent structure.
    let overrun = hex::decode("4200780100000008420094080000000801020304050607080000").unwrap();
    assert!(decode(&overrun, &Limits::default()).is_err());
    // Integers with the wrong length.
    let bad_int = hex::decode("4200200200000008 0000000000000008".replace(' ', "")).unwrap();
    assert!(matches!(
        decode(&bad_int, &Limits::default()),
        Err(DecodeError::BadLength { .. })
    ));
    // Unknown type byte, boolean of 2, invalid UTF-8.
    let bad_type = hex::decode("4200200C0000000400000001 00000000".replace(' ', "")).unwrap();
    assert!(matches!(
        decode(&bad_type, &Limits::default()),
        Err(DecodeError::UnknownType { code: 0x0C, .. })
    ));
    let bad_bool = hex::decode("4200200600000008 0000000000000002".replace(' ', "")).unwrap();
    assert!(matches!(
        decode(&bad_bool, &Limits::default()),
        Err(DecodeError::BadBoolean { .. })
    ));
    let bad_utf8 = hex::decode("4200200700000002 FFFE000000000000".replace(' ', "")).unwrap();
    assert!(matches!(
        decode(&bad_utf8, &Limits::default()),
        Err(DecodeError::BadUtf8 { .. })
    ));
    // A structure with an unpadded length.
    let odd = hex::decode("4200780100000004 00000000 00000000".replace(' ', "")).unwrap();
    assert!(decode(&odd, &Limits::default()).is_err());
    // Trailing garbage.
    let mut trailing = sample_message();
    trailing.extend_from_slice(&[0; 8]);
    assert!(matches!(
        decode(&trailing, &Limits::default()),
        Err(DecodeError::TrailingBytes { extra: 8 })
    ));
}

#[test]
fn limits_on_size_depth_and_count_are_enforced() {
    let bytes = sample_message();
    let small = Limits {
        max_message_bytes: bytes.len() - 1,
        ..Limits::default()
    };
    assert!(matches!(
        decode(&bytes, &small),
        Err(DecodeError::TooLarge { .. })
    ));
    let few = Limits {
        max_items: 3,
        ..Limits::default()
    };
    assert!(matches!(
        decode(&bytes, &few),
        Err(DecodeError::TooManyItems { max: 3 })
    ));
    // 40 nested structures.
    let mut item = Item::new(0x420020, Value::Integer(1));
    for _ in 0..40 {
        item = Item::structure(0x420020, vec![item]);
    }
    let deep = encode(&item);
    assert!(matches!(
        decode(&deep, &Limits::default()),
        Err(DecodeError::TooDeep { max: 32, .. })
    ));
    let lenient = Limits {
        max_depth: 64,
        ..Limits::default()
    };
    assert_eq!(decode(&deep, &lenient).unwrap(), item);
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i32>().prop_map(Value::Integer),
        any::<i64>().prop_map(Value::LongInteger),
        prop::collection::vec(any::<u8>(), 1..4).prop_map(|b| Value::BigInteger(
            // Normalise to the padded, sign-extended form the decoder returns.
            {
                let fill = if b[0] & 0x80 != 0 { 0xFF } else { 0 };
                let mut v = vec![fill; 8 - b.len()];
                v.extend_from_slice(&b);
                v
            }
        )),
        any::<u32>().prop_map(Value::Enumeration),
        any::<bool>().prop_map(Value::Boolean),
        ".{0,20}".prop_map(Value::TextString),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(Value::ByteString),
        any::<i64>().prop_map(Value::DateTime),
        any::<u32>().prop_map(Value::Interval),
        any::<i64>().prop_map(Value::DateTimeExtended),
    ]
}

fn tree() -> impl Strategy<Value = Item> {
    let leaf_item = (0x420000u32..0x4201FF, leaf()).prop_map(|(t, v)| Item::new(t, v));
    leaf_item.prop_recursive(6, 64, 8, |inner| {
        (0x420000u32..0x4201FF, prop::collection::vec(inner, 0..8))
            .prop_map(|(t, c)| Item::structure(t, c))
    })
}

proptest! {
    #[test]
    fn random_item_trees_round_trip(item in tree()) {
        let bytes = encode(&item);
        prop_assert_eq!(bytes.len() % 8, 0);
        prop_assert_eq!(decode(&bytes, &Limits::default()).unwrap(), item);
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode(&bytes, &Limits::default());
    }

    #[test]
    fn corrupted_messages_never_panic(pos in 0usize..64, byte in any::<u8>()) {
        let mut bytes = sample_message();
        let p = pos % bytes.len();
        bytes[p] = byte;
        let _ = decode(&bytes, &Limits::default());
    }
}
