//! Template objects (KMIP 1.0-1.4): Register of a named set of attributes, Create and Register applying it by
//! name (the request's own attributes taking precedence for single-valued attributes, instances adding up for
//! multi-instance ones), Get of a Template, the refusals (unknown name, duplicate name, key operations on a
//! Template, KMIP 2.x, a Template without a Name), and Destroy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;
use common::{uid_request as uid_payload, Dev};
use openkcm_kmip::attributes::Attribute;
use openkcm_kmip::enums::{operation as op, result_reason as rr};
use openkcm_kmip::{tags as t, KmipError, ProtocolVersion};
use openkcm_net::KmipClient;
use openkcm_ttlv::{Item, Value};

const V12: ProtocolVersion = ProtocolVersion::new(1, 2);

async fn one(c: &mut KmipClient, operation: u32, p: Item) -> Result<Item, KmipError> {
    common::one_op(c, V12, operation, p).await
}

fn uid_of(p: &Item) -> String {
    common::uids(p).remove(0)
}
const TEMPLATE: u32 = 0x06;
const SYMMETRIC_KEY: u32 = 0x02;

fn name_field(name: &str) -> Item {
    Item::structure(
        t::NAME,
        vec![
            Item::new(t::NAME_VALUE, Value::TextString(name.into())),
            Item::new(t::NAME_TYPE, Value::Enumeration(1)),
        ],
    )
}

/// Register of a Template holding `content`, named `name` in the request's Template-Attribute.
fn register_template(name: Option<&str>, content: &[Attribute]) -> Item {
    let own: Vec<Item> = name
        .map(|n| vec![Attribute::name_value(n).to_v1()])
        .unwrap_or_default();
    Item::structure(
        t::REQUEST_PAYLOAD,
        vec![
            Item::new(t::OBJECT_TYPE, Value::Enumeration(TEMPLATE)),
            Item::structure(t::TEMPLATE_ATTRIBUTE, own),
            Item::structure(t::TEMPLATE, content.iter().map(Attribute::to_v1).collect()),
        ],
    )
}

/// Create of a symmetric key from the Templates `templates`, plus `own` attributes.
fn create_from(templates: &[&str], own: &[Attribute]) -> Item {
    let mut ta: Vec<Item> = templates.iter().map(|n| name_field(n)).collect();
    ta.extend(own.iter().map(Attribute::to_v1));
    Item::structure(
        t::REQUEST_PAYLOAD,
        vec![
            Item::new(t::OBJECT_TYPE, Value::Enumeration(SYMMETRIC_KEY)),
            Item::structure(t::TEMPLATE_ATTRIBUTE, ta),
        ],
    )
}

/// Every returned attribute named `name`, as (index, value).
async fn attribute(c: &mut KmipClient, uid: &str, name: &str) -> Vec<(Option<i32>, Value)> {
    let p = Item::structure(
        t::REQUEST_PAYLOAD,
        vec![
            Item::new(t::UNIQUE_IDENTIFIER, Value::TextString(uid.into())),
            Item::new(t::ATTRIBUTE_NAME, Value::TextString(name.into())),
        ],
    );
    let r = one(c, op::GET_ATTRIBUTES, p).await.unwrap();
    r.children_with(t::ATTRIBUTE)
        .map(|a| {
            let a = Attribute::from_v1(a).unwrap();
            (a.index, a.value.value)
        })
        .collect()
}

fn text(s: &str) -> Value {
    Value::TextString(s.into())
}

#[tokio::test(flavor = "multi_thread")]
async fn templates_give_their_attributes_to_the_objects_made_with_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &["demo"]);
    let mut c = common::edge_client(&dev, "demo").await;

    let content = [
        Attribute::new("Cryptographic Algorithm", Value::Enumeration(3)),
        Attribute::new("Cryptographic Length", Value::Integer(128)),
        Attribute::new("Object Group", text("payments")),
        Attribute::new("Contact Information", text("ops@example.com")),
        Attribute::new("x-origin", text("template")),
    ];
    let tpl = uid_of(
        &one(
            &mut c,
            op::REGISTER,
            register_template(Some("T1"), &content),
        )
        .await
        .unwrap(),
    );

    // The key takes the Template's attributes; its own single-valued ones win, multi-instance ones add up.
    let key = uid_of(
        &one(
            &mut c,
            op::CREATE,
            create_from(
                &["T1"],
                &[
                    Attribute::new("Cryptographic Usage Mask", Value::Integer(0x0C)),
                    Attribute::new("Contact Information", text("app@example.com")),
                    Attribute::new("x-origin", text("request")),
                ],
            ),
        )
        .await
        .unwrap(),
    );
    assert_eq!(
        attribute(&mut c, &key, "Cryptographic Length").await,
        vec![(None, Value::Integer(128))]
    );
    assert_eq!(
        attribute(&mut c, &key, "Object Group").await,
        vec![(None, text("payments"))]
    );
    assert_eq!(
        attribute(&mut c, &key, "Contact Information").await,
        vec![(None, text("app@example.com"))]
    );
    assert_eq!(
        attribute(&mut c, &key, "x-origin").await,
        vec![(None, text("template")), (Some(1), text("request"))]
    );
    // The Template's own Name is not given to the key.
    assert!(attribute(&mut c, &key, "Name").await.is_empty());
    // A length given in the request replaces the Template's.
    let longer = uid_of(
        &one(
            &mut c,
            op::CREATE,
            create_from(
                &["T1"],
                &[Attribute::new("Cryptographic Length", Value::Integer(256))],
            ),
        )
        .await
        .unwrap(),
    );
    assert_eq!(
        attribute(&mut c, &longer, "Cryptographic Length").await,
        vec![(None, Value::Integer(256))]
    );

    // Get of the Template returns what it gives, not its own Name.
    let got = one(&mut c, op::GET, uid_payload(&tpl)).await.unwrap();
    assert_eq!(
        got.child(t::OBJECT_TYPE).and_then(Item::as_enum),
        Some(TEMPLATE)
    );
    let given: Vec<String> = got
        .child(t::TEMPLATE)
        .unwrap()
        .children_with(t::ATTRIBUTE)
        .map(|a| Attribute::from_v1(a).unwrap().name)
        .collect();
    assert_eq!(
        given,
        [
            "Cryptographic Algorithm",
            "Cryptographic Length",
            "Object Group",
            "Contact Information",
            "x-origin"
        ]
    );
    assert_eq!(
        attribute(&mut c, &tpl, "Object Type").await,
        vec![(None, Value::Enumeration(TEMPLATE))]
    );

    // Refusals.
    let e = one(
        &mut c,
        op::REGISTER,
        register_template(Some("T1"), &content),
    )
    .await
    .unwrap_err();
    assert!(e.message.contains("already exists"), "{e:?}");
    let e = one(&mut c, op::REGISTER, register_template(None, &content))
        .await
        .unwrap_err();
    assert!(e.message.contains("lacks the required Name"), "{e:?}");
    let bad = [Attribute::new("Cryptographic Length", text("128"))];
    let e = one(&mut c, op::REGISTER, register_template(Some("T2"), &bad))
        .await
        .unwrap_err();
    assert!(e.message.contains("must be an Integer"), "{e:?}");
    let e = one(&mut c, op::CREATE, create_from(&["nope"], &[]))
        .await
        .unwrap_err();
    assert_eq!(e.reason, rr::ITEM_NOT_FOUND, "{e:?}");
    let e = one(&mut c, op::ACTIVATE, uid_payload(&tpl))
        .await
        .unwrap_err();
    assert!(e.message.contains("is a Template"), "{e:?}");
    // KMIP 2.0 has no Templates.
    let e = common::one_op(
        &mut c,
        ProtocolVersion::new(2, 0),
        op::REGISTER,
        Item::structure(
            t::REQUEST_PAYLOAD,
            vec![
                Item::new(t::OBJECT_TYPE, Value::Enumeration(TEMPLATE)),
                Item::structure(t::ATTRIBUTES, vec![]),
                Item::structure(t::TEMPLATE, content.iter().map(Attribute::to_v1).collect()),
            ],
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(e.reason, rr::INVALID_FIELD, "{e:?}");

    // A 2.x client does not see Templates.
    let e = common::one_op(
        &mut c,
        ProtocolVersion::new(2, 0),
        op::GET,
        uid_payload(&tpl),
    )
    .await
    .unwrap_err();
    assert_eq!(e.reason, rr::ITEM_NOT_FOUND, "{e:?}");
    // Bounds: one Template named twice, and more client attributes than an object may carry.
    let e = one(&mut c, op::CREATE, create_from(&["T1", "T1"], &[]))
        .await
        .unwrap_err();
    assert!(e.message.contains("named twice"), "{e:?}");
    let many: Vec<Attribute> = (0..300)
        .map(|i| Attribute::new("x-m", text(&format!("{i}"))))
        .collect();
    let e = one(&mut c, op::REGISTER, register_template(Some("MANY"), &many))
        .await
        .unwrap_err();
    assert!(e.message.contains("at most 256"), "{e:?}");

    // A destroyed Template is no longer applied.
    one(&mut c, op::DESTROY, uid_payload(&tpl)).await.unwrap();
    let e = one(&mut c, op::CREATE, create_from(&["T1"], &[]))
        .await
        .unwrap_err();
    assert_eq!(e.reason, rr::ITEM_NOT_FOUND, "{e:?}");
    // The keys made with it are unaffected.
    assert_eq!(
        attribute(&mut c, &key, "Object Group").await,
        vec![(None, text("payments"))]
    );
    dev.stop();
}
