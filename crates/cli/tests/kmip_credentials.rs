//! KMIP request credentials (`--kmip-credentials`): checked against salted hashes; objects created under a
//! credential belong to it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;
use common::Dev;
use openkcm_edge::credentials::{CredentialEntry, CredentialsFile};
use openkcm_kmip::enums::{operation as op, result_reason as rr};
use openkcm_kmip::{
    payload, tags as t, KmipError, ProtocolVersion, RequestMessage, ResponseMessage,
};
use openkcm_net::KmipClient;
use openkcm_ttlv::{Item, Value};

const V14: ProtocolVersion = ProtocolVersion::new(1, 4);

fn with_credential(mut m: Item, user: Option<(&str, &str)>) -> Item {
    let Some((name, password)) = user else {
        return m;
    };
    let auth = Item::structure(
        t::AUTHENTICATION,
        vec![Item::structure(
            t::CREDENTIAL,
            vec![
                Item::new(t::CREDENTIAL_TYPE, Value::Enumeration(1)),
                Item::structure(
                    t::CREDENTIAL_VALUE,
                    vec![
                        Item::new(t::USERNAME, Value::TextString(name.into())),
                        Item::new(t::PASSWORD, Value::TextString(password.into())),
                    ],
                ),
            ],
        )],
    );
    if let Value::Structure(c) = &mut m.value {
        if let Some(h) = c.iter_mut().find(|i| i.tag == t::REQUEST_HEADER) {
            if let Value::Structure(hc) = &mut h.value {
                hc.insert(1, auth);
            }
        }
    }
    m
}

async fn one(
    c: &mut KmipClient,
    user: Option<(&str, &str)>,
    operation: u32,
    p: Item,
) -> Result<Item, KmipError> {
    let m = with_credential(
        RequestMessage::new(V14, vec![(operation, p)]).to_item(),
        user,
    );
    let r = ResponseMessage::parse(&c.call(&m).await.unwrap()).unwrap();
    r.items.into_iter().next().unwrap().result
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_are_checked_and_objects_belong_to_their_principal() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("creds.json");
    let creds = CredentialsFile {
        credentials: vec![
            CredentialEntry::new("username", "fred", "pw-fred").unwrap(),
            CredentialEntry::new("username", "barney", "pw-barney").unwrap(),
        ],
    };
    std::fs::write(&file, serde_json::to_string(&creds).unwrap()).unwrap();
    let mut dev = Dev::start_env(
        &dir.path().join("data"),
        &["demo"],
        &[("OPENKCM_KMIP_CREDENTIALS", file.to_str().unwrap())],
    );
    let mut c = common::edge_client(&dev, "demo").await;
    let fred = Some(("fred", "pw-fred"));
    let create = || payload::create_request(V14, &[]);
    // A wrong password or an unknown user: Authentication Not Successful, the same message for both.
    let e1 = one(&mut c, Some(("fred", "nope")), op::CREATE, create())
        .await
        .unwrap_err();
    let e2 = one(&mut c, Some(("wilma", "pw-fred")), op::CREATE, create())
        .await
        .unwrap_err();
    assert_eq!(e1.reason, rr::AUTHENTICATION_NOT_SUCCESSFUL);
    assert_eq!(e1.message, e2.message);
    // Fred's key is Fred's: Barney and credential-less requests of the same certificate are denied.
    let uid = one(&mut c, fred, op::CREATE, create()).await.unwrap();
    let uid = uid
        .child(t::UNIQUE_IDENTIFIER)
        .unwrap()
        .as_text()
        .unwrap()
        .to_owned();
    let get = || payload::uid_payload(t::REQUEST_PAYLOAD, &uid);
    assert!(one(&mut c, fred, op::GET, get()).await.is_ok());
    for who in [Some(("barney", "pw-barney")), None] {
        let e = one(&mut c, who, op::GET, get()).await.unwrap_err();
        assert_eq!(e.reason, rr::PERMISSION_DENIED, "{who:?}");
    }
    // A key made without a credential stays usable by the certificate's service, with or without one.
    let open = one(&mut c, None, op::CREATE, create()).await.unwrap();
    let open = open
        .child(t::UNIQUE_IDENTIFIER)
        .unwrap()
        .as_text()
        .unwrap()
        .to_owned();
    assert!(one(
        &mut c,
        fred,
        op::GET,
        payload::uid_payload(t::REQUEST_PAYLOAD, &open)
    )
    .await
    .is_ok());
    dev.stop();
    // The credentials file holds hashes, not passwords.
    assert!(!std::fs::read_to_string(&file).unwrap().contains("pw-fred"));
}
