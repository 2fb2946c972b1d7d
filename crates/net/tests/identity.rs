//! Peer identity from client certificates: SPIFFE URI SAN first, CN `<tenant>/<service>` as fallback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openkcm_net::PeerIdentity;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};

fn cert(cn: &str, uri: Option<&str>) -> Vec<u8> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    if let Some(u) = uri {
        params.subject_alt_names = vec![SanType::URI(u.try_into().unwrap())];
    }
    let key = KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().der().to_vec()
}

fn app(t: &str, s: &str) -> Option<PeerIdentity> {
    Some(PeerIdentity::Application {
        tenant: t.into(),
        service: s.into(),
    })
}

#[test]
fn the_spiffe_uri_names_the_application() {
    let der = cert(
        "ignored/ignored",
        Some("spiffe://openkcm/tenant/acme/service/billing"),
    );
    assert_eq!(PeerIdentity::from_certificate(&der), app("acme", "billing"));
}

#[test]
fn the_common_name_is_the_fallback() {
    assert_eq!(
        PeerIdentity::from_certificate(&cert("acme/billing", None)),
        app("acme", "billing")
    );
    // A URI SAN that is not ours does not hide a valid CN.
    let der = cert(
        "acme/billing",
        Some("spiffe://elsewhere/tenant/x/service/y"),
    );
    assert_eq!(PeerIdentity::from_certificate(&der), app("acme", "billing"));
}

#[test]
fn edges_are_named_by_uri_only() {
    let der = cert("edge one", Some("spiffe://openkcm/edge/edge-1"));
    assert_eq!(
        PeerIdentity::from_certificate(&der),
        Some(PeerIdentity::Edge {
            name: "edge-1".into()
        })
    );
}

#[test]
fn names_outside_the_allowed_alphabet_give_no_identity() {
    for cn in [
        "acme",
        "acme/",
        "/billing",
        "Acme/billing",
        "acme/bil ling",
        "../etc/passwd",
        "a/b/c",
    ] {
        assert_eq!(
            PeerIdentity::from_certificate(&cert(cn, None)),
            None,
            "{cn}"
        );
    }
    let der = cert("x", Some("spiffe://openkcm/tenant/../service/x"));
    assert_eq!(PeerIdentity::from_certificate(&der), None);
    assert_eq!(PeerIdentity::from_certificate(b"not a certificate"), None);
}

#[test]
fn certificates_naming_two_identities_are_ambiguous() {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "x");
    params.distinguished_name = dn;
    params.subject_alt_names = vec![
        SanType::URI("spiffe://openkcm/tenant/acme/service/a".try_into().unwrap()),
        SanType::URI(
            "spiffe://openkcm/tenant/globex/service/a"
                .try_into()
                .unwrap(),
        ),
    ];
    let key = KeyPair::generate().unwrap();
    let der = params.self_signed(&key).unwrap().der().to_vec();
    assert_eq!(PeerIdentity::from_certificate(&der), None);
}
