//! A minimal HTTP/1.1 server for fakes of cloud REST APIs (Google Cloud KMS, Azure Key Vault), which have no
//! emulator: each request is parsed, recorded, and answered by the test's handler. One request per connection.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// One request as received.
#[derive(Debug, Clone)]
pub struct FakeRequest {
    pub method: String,
    /// Path with query string.
    pub target: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: serde_json::Value,
}

impl FakeRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

type Handler = Arc<dyn Fn(&FakeRequest) -> (u16, serde_json::Value) + Send + Sync>;

/// A running fake.
pub struct RestFake {
    pub addr: String,
    pub requests: Arc<Mutex<Vec<FakeRequest>>>,
}

impl RestFake {
    pub fn start(handler: Handler) -> RestFake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let handler = handler.clone();
                let log = log.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() || line.is_empty() {
                        return;
                    }
                    let mut parts = line.split_whitespace();
                    let method = parts.next().unwrap_or_default().to_owned();
                    let target = parts.next().unwrap_or_default().to_owned();
                    let mut headers = Vec::new();
                    let mut length = 0usize;
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.trim_end().split_once(':') {
                            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_owned());
                            if k == "content-length" {
                                length = v.parse().unwrap_or(0);
                            }
                            headers.push((k, v));
                        }
                    }
                    let mut body = vec![0u8; length];
                    let _ = reader.read_exact(&mut body);
                    let body = if body.is_empty() {
                        serde_json::Value::Null
                    } else {
                        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null)
                    };
                    let request = FakeRequest {
                        method,
                        target,
                        headers,
                        body,
                    };
                    let (status, reply) = handler(&request);
                    log.lock().unwrap().push(request);
                    let reply = serde_json::to_vec(&reply).unwrap();
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        reply.len()
                    );
                    let _ = stream.write_all(&reply);
                });
            }
        });
        RestFake { addr, requests }
    }
}
