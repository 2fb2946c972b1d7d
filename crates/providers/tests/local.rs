//! The dev-only `local` provider: round trips, context binding, disable/delete semantics and
//! key-id confinement.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use openkcm_providers::local::LocalProvider;
use openkcm_providers::{KeyProvider, KeyRef, ProviderError};

fn ctx(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn setup() -> (tempfile::TempDir, LocalProvider) {
    let dir = tempfile::tempdir().unwrap();
    let provider = LocalProvider::new(dir.path().join("keys"));
    (dir, provider)
}

#[tokio::test]
async fn encrypt_decrypt_round_trip() {
    let (_dir, p) = setup();
    let key = p.create("acme.sys-1").await.unwrap();
    assert_eq!(
        key,
        KeyRef {
            provider: "local".into(),
            key_id: "acme.sys-1".into(),
            region: None
        }
    );
    assert_eq!(p.name(), "local");
    let context = ctx(&[("tenant", "acme"), ("system", "sys-1")]);
    let plaintext = [0x42u8; 32];
    let ct = p.encrypt(&key, &plaintext, &context).await.unwrap();
    assert_eq!(ct.len(), 12 + 32 + 16);
    assert_ne!(&ct[12..44], &plaintext);
    let pt = p.decrypt(&key, &ct, &context).await.unwrap();
    assert_eq!(pt.expose(), &plaintext);
    // Context order does not matter: it is encoded canonically.
    let reversed = ctx(&[("system", "sys-1"), ("tenant", "acme")]);
    assert_eq!(
        p.decrypt(&key, &ct, &reversed).await.unwrap().expose(),
        &plaintext
    );
    // Two encryptions of the same plaintext differ (random nonce).
    assert_ne!(p.encrypt(&key, &plaintext, &context).await.unwrap(), ct);
    // Empty plaintext and empty context work too.
    let empty = p.encrypt(&key, b"", &[]).await.unwrap();
    assert!(p.decrypt(&key, &empty, &[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn wrong_context_fails_as_invalid() {
    let (_dir, p) = setup();
    let key = p.create("k").await.unwrap();
    let ct = p
        .encrypt(&key, b"secret", &ctx(&[("tenant", "acme")]))
        .await
        .unwrap();
    for wrong in [
        ctx(&[("tenant", "other")]),
        ctx(&[]),
        ctx(&[("tenant", "acme"), ("extra", "x")]),
        ctx(&[("Tenant", "acme")]),
    ] {
        assert!(matches!(
            p.decrypt(&key, &ct, &wrong).await,
            Err(ProviderError::Invalid(_))
        ));
    }
}

#[tokio::test]
async fn tampered_or_short_ciphertext_is_invalid() {
    let (_dir, p) = setup();
    let key = p.create("k").await.unwrap();
    let ct = p.encrypt(&key, b"secret", &[]).await.unwrap();
    for i in 0..ct.len() {
        let mut bad = ct.clone();
        bad[i] ^= 1;
        assert!(matches!(
            p.decrypt(&key, &bad, &[]).await,
            Err(ProviderError::Invalid(_))
        ));
    }
    for len in 0..28 {
        assert!(matches!(
            p.decrypt(&key, &ct[..len.min(ct.len())], &[]).await,
            Err(ProviderError::Invalid(_))
        ));
    }
}

#[tokio::test]
async fn another_key_cannot_decrypt() {
    let (_dir, p) = setup();
    let a = p.create("a").await.unwrap();
    let b = p.create("b").await.unwrap();
    let ct = p.encrypt(&a, b"secret", &[]).await.unwrap();
    assert!(matches!(
        p.decrypt(&b, &ct, &[]).await,
        Err(ProviderError::Invalid(_))
    ));
}

#[tokio::test]
async fn disabled_key_gives_disabled_and_reenabling_restores_it() {
    let (dir, p) = setup();
    let key = p.create("cust").await.unwrap();
    let context = ctx(&[("tenant", "acme")]);
    let ct = p.encrypt(&key, b"l2 key", &context).await.unwrap();

    let file = dir.path().join("keys/cust.key");
    let disabled = dir.path().join("keys/cust.key.disabled");
    std::fs::rename(&file, &disabled).unwrap();
    let err = p.decrypt(&key, &ct, &context).await.unwrap_err();
    assert!(matches!(err, ProviderError::Disabled(_)), "{err:?}");
    assert!(err.is_revocation());
    assert!(matches!(
        p.encrypt(&key, b"x", &context).await,
        Err(ProviderError::Disabled(_))
    ));
    let d = p.describe(&key).await.unwrap();
    assert!(!d.enabled);
    assert_eq!(d.key_id, "cust");
    // create must not silently replace a disabled key.
    assert!(matches!(
        p.create("cust").await,
        Err(ProviderError::Disabled(_))
    ));

    std::fs::rename(&disabled, &file).unwrap();
    assert_eq!(
        p.decrypt(&key, &ct, &context).await.unwrap().expose(),
        b"l2 key"
    );
    assert!(p.describe(&key).await.unwrap().enabled);
}

#[tokio::test]
async fn missing_key_gives_not_found() {
    let (dir, p) = setup();
    let never = KeyRef {
        provider: "local".into(),
        key_id: "never-created".into(),
        region: None,
    };
    assert!(matches!(
        p.describe(&never).await,
        Err(ProviderError::NotFound(_))
    ));
    assert!(matches!(
        p.encrypt(&never, b"x", &[]).await,
        Err(ProviderError::NotFound(_))
    ));

    let key = p.create("deleted").await.unwrap();
    let ct = p.encrypt(&key, b"x", &[]).await.unwrap();
    std::fs::remove_file(dir.path().join("keys/deleted.key")).unwrap();
    let err = p.decrypt(&key, &ct, &[]).await.unwrap_err();
    assert!(matches!(err, ProviderError::NotFound(_)));
    assert!(err.is_revocation() && !err.is_retryable());
}

#[tokio::test]
async fn path_traversal_and_malformed_key_ids_are_rejected() {
    let (dir, p) = setup();
    let long = "a".repeat(129);
    for bad in [
        "",
        "../escape",
        "..\\escape",
        "a/b",
        "/etc/passwd",
        "key\0id",
        "space id",
        "ключ",
        long.as_str(),
    ] {
        assert!(
            matches!(p.create(bad).await, Err(ProviderError::Invalid(_))),
            "create {bad:?}"
        );
        let r = KeyRef {
            provider: "local".into(),
            key_id: bad.into(),
            region: None,
        };
        assert!(matches!(
            p.encrypt(&r, b"x", &[]).await,
            Err(ProviderError::Invalid(_))
        ));
        assert!(matches!(
            p.decrypt(&r, &[0u8; 40], &[]).await,
            Err(ProviderError::Invalid(_))
        ));
        assert!(matches!(
            p.describe(&r).await,
            Err(ProviderError::Invalid(_))
        ));
    }
    assert!(!dir.path().join("escape.key").exists());
    // The longest allowed id and dot-only ids stay inside the directory.
    p.create(&"a".repeat(128)).await.unwrap();
    p.create("..").await.unwrap();
    assert!(dir.path().join("keys/...key").is_file());
}

#[tokio::test]
async fn a_reference_to_another_provider_is_invalid() {
    let (_dir, p) = setup();
    p.create("k").await.unwrap();
    let aws = KeyRef {
        provider: "aws-kms".into(),
        key_id: "k".into(),
        region: Some("eu-central-1".into()),
    };
    assert!(matches!(
        p.encrypt(&aws, b"x", &[]).await,
        Err(ProviderError::Invalid(_))
    ));
}

#[cfg(unix)]
#[tokio::test]
async fn key_files_are_private_and_32_bytes() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, p) = setup();
    p.create("private").await.unwrap();
    let meta = std::fs::metadata(dir.path().join("keys/private.key")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.len(), 32);
    let dir_meta = std::fs::metadata(dir.path().join("keys")).unwrap();
    assert_eq!(dir_meta.permissions().mode() & 0o777, 0o700);
    // No temporary files are left behind.
    let names: Vec<String> = std::fs::read_dir(dir.path().join("keys"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["private.key".to_string()]);
}

#[tokio::test]
async fn create_is_idempotent_and_keeps_the_existing_key() {
    let (_dir, p) = setup();
    let key = p.create("same").await.unwrap();
    let ct = p.encrypt(&key, b"v", &[]).await.unwrap();
    assert_eq!(p.create("same").await.unwrap(), key);
    assert_eq!(p.decrypt(&key, &ct, &[]).await.unwrap().expose(), b"v");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_creates_agree_on_one_key() {
    let (_dir, p) = setup();
    let p = std::sync::Arc::new(p);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let p = p.clone();
        tasks.push(tokio::spawn(
            async move { p.create("raced").await.unwrap() },
        ));
    }
    let mut refs = Vec::new();
    for t in tasks {
        refs.push(t.await.unwrap());
    }
    let ct = p.encrypt(&refs[0], b"same key", &[]).await.unwrap();
    for r in &refs {
        assert_eq!(p.decrypt(r, &ct, &[]).await.unwrap().expose(), b"same key");
    }
}

#[tokio::test]
async fn a_corrupt_key_file_is_invalid_not_a_panic() {
    let (dir, p) = setup();
    let key = p.create("short").await.unwrap();
    std::fs::write(dir.path().join("keys/short.key"), [1u8; 5]).unwrap();
    assert!(matches!(
        p.encrypt(&key, b"x", &[]).await,
        Err(ProviderError::Invalid(_))
    ));
    assert!(matches!(
        p.describe(&key).await,
        Err(ProviderError::Invalid(_))
    ));
}

#[test]
fn errors_are_sentences_and_classified() {
    let e = ProviderError::RateLimited("slow down".into());
    assert!(e.is_retryable() && !e.is_revocation());
    assert_eq!(
        e.to_string(),
        "the key provider is throttling requests: slow down; retry with backoff"
    );
    assert!(ProviderError::Unavailable("x".into()).is_retryable());
    assert!(ProviderError::Denied("x".into()).is_revocation());
    assert!(!ProviderError::Invalid("x".into()).is_revocation());
}
