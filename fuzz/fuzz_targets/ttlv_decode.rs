//! Arbitrary bytes through the bounded TTLV decoder.
//!
//! Properties checked on every input (a violation panics, which libFuzzer reports as a crash):
//! * `decode` never panics, whatever the bytes (errors are fine);
//! * a decoded item re-encodes to exactly as many bytes as it was decoded from (`encode`, `encoded_len` and the
//!   input length agree: the decoder accepts nothing the encoder cannot represent);
//! * the re-encoding decodes to the same item, and encoding that again gives the same bytes (the encoding is
//!   canonical after one round);
//! * the re-encoding equals the input except in padding bytes, which must be zero in the re-encoding;
//! * decoding under tighter limits either yields the same item or fails with the limit error, never another item.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openkcm_ttlv::{decode, encode, encoded_len, DecodeError, Item, Limits, Value, HEADER_LEN};

/// Checks `encoded` against `input` item by item: headers and values identical, padding zero in `encoded`.
/// Returns the offset just after `item`.
fn same_but_padding(item: &Item, input: &[u8], encoded: &[u8], at: usize) -> usize {
    let header = at..at + HEADER_LEN;
    assert_eq!(
        input[header.clone()],
        encoded[header],
        "item header at {at} changed"
    );
    let body = at + HEADER_LEN;
    match &item.value {
        Value::Structure(children) => {
            let mut next = body;
            for c in children {
                next = same_but_padding(c, input, encoded, next);
            }
            next
        }
        other => {
            let len = u32::from_be_bytes([
                encoded[at + 4],
                encoded[at + 5],
                encoded[at + 6],
                encoded[at + 7],
            ]) as usize;
            let padded = len.div_ceil(8) * 8;
            assert_eq!(
                input[body..body + len],
                encoded[body..body + len],
                "value of {:?} at {at} changed",
                other.item_type()
            );
            assert!(
                encoded[body + len..body + padded].iter().all(|b| *b == 0),
                "encoder wrote non-zero padding at {at}"
            );
            body + padded
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let item = match decode(data, &limits) {
        Ok(item) => item,
        Err(e) => {
            // Error messages are shown to peers and logged: rendering them must not panic either.
            let _ = e.to_string();
            return;
        }
    };
    let _ = format!("{item:?}");

    let bytes = encode(&item);
    assert_eq!(
        bytes.len(),
        encoded_len(&item),
        "encoded_len disagrees with encode"
    );
    assert_eq!(
        bytes.len(),
        data.len(),
        "re-encoding changed the message length"
    );
    assert_eq!(same_but_padding(&item, data, &bytes, 0), data.len());

    let again = decode(&bytes, &limits).expect("a re-encoded message must decode");
    assert_eq!(again, item, "decode(encode(item)) != item");
    assert_eq!(
        encode(&again),
        bytes,
        "encoding is not canonical after one round"
    );

    // Tighter limits may only refuse the message, never decode it differently.
    let tight = Limits {
        max_message_bytes: data.len(),
        max_depth: 3,
        max_items: 8,
    };
    match decode(data, &tight) {
        Ok(small) => assert_eq!(small, item, "tighter limits decoded another item"),
        Err(DecodeError::TooDeep { .. } | DecodeError::TooManyItems { .. }) => {}
        Err(e) => panic!("tighter limits gave an unexpected error: {e}"),
    }
});
