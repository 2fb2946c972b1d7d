//! Server-to-client KMIP messages (Put and Notify, KMIP 1.0-1.4 and 2.x): a client that runs a KMIP endpoint of
//! its own can be told about its objects. After a Create or Register the edge sends Put (Put Function New) with
//! the object and its attributes; after an attribute edit, Activate, Revoke or Destroy it sends Notify with the
//! attributes that changed.
//!
//! Endpoints are configured per tenant, optionally per service (`--notify-endpoint TENANT[/SERVICE]=HOST:PORT`).
//! The edge connects with mTLS, verifying the endpoint's certificate against the node's CA for the configured name,
//! and presents its own edge certificate. Messages go out in order, one connection per endpoint, from a bounded
//! queue; a message the endpoint cannot take after three attempts is logged as lost (never silently).
//! Sensitive and non-extractable keys are never sent in a Put.

use openkcm_kmip::{ProtocolVersion, RequestMessage, ResponseMessage};
use openkcm_net::KmipClient;
use openkcm_ttlv::Item;
use rustls::ClientConfig;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Messages waiting per endpoint before new ones are refused (and logged).
const QUEUE: usize = 1024;
/// Attempts per message.
const ATTEMPTS: u32 = 3;

/// Where one tenant's (or one service's) notifications go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyEndpoint {
    /// The tenant whose objects are announced.
    pub tenant: String,
    /// Only this service's objects; None for every service of the tenant.
    pub service: Option<String>,
    /// The endpoint, HOST:PORT.
    pub addr: String,
    /// The name the endpoint's certificate must carry.
    pub server_name: String,
}

impl NotifyEndpoint {
    /// Parses `TENANT[/SERVICE]=HOST:PORT`; the certificate name is the host.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let (who, addr) = spec
            .split_once('=')
            .ok_or_else(|| format!("{spec:?}: a notify endpoint is TENANT[/SERVICE]=HOST:PORT"))?;
        let (tenant, service) = match who.split_once('/') {
            Some((t, s)) => (t, Some(s.to_owned())),
            None => (who, None),
        };
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| format!("{spec:?}: the endpoint needs HOST:PORT"))?;
        if tenant.is_empty() || host.is_empty() || port.parse::<u16>().is_err() {
            return Err(format!(
                "{spec:?}: a notify endpoint is TENANT[/SERVICE]=HOST:PORT"
            ));
        }
        Ok(Self {
            tenant: tenant.to_owned(),
            service,
            addr: addr.to_owned(),
            server_name: host.to_owned(),
        })
    }
}

type Message = (ProtocolVersion, u32, Item);

/// Sends Put and Notify messages to the configured endpoints.
#[derive(Default)]
pub struct Notifier {
    /// (tenant, service or None) → the endpoint's queue.
    queues: HashMap<(String, Option<String>), tokio::sync::mpsc::Sender<Message>>,
}

impl Notifier {
    /// Starts one sender task per endpoint (call inside a Tokio runtime).
    pub fn start(endpoints: Vec<NotifyEndpoint>, tls: Arc<ClientConfig>) -> Self {
        let mut queues = HashMap::new();
        for e in endpoints {
            let (tx, rx) = tokio::sync::mpsc::channel(QUEUE);
            tokio::spawn(deliver(e.clone(), tls.clone(), rx));
            queues.insert((e.tenant, e.service), tx);
        }
        Self { queues }
    }

    fn queue(&self, tenant: &str, service: &str) -> Option<&tokio::sync::mpsc::Sender<Message>> {
        if self.queues.is_empty() {
            return None;
        }
        self.queues
            .get(&(tenant.to_owned(), Some(service.to_owned())))
            .or_else(|| self.queues.get(&(tenant.to_owned(), None)))
    }

    /// Whether `tenant`/`service` has an endpoint (so that callers build messages only when they will be sent).
    pub fn wants(&self, tenant: &str, service: &str) -> bool {
        self.queue(tenant, service).is_some()
    }

    /// Queues `operation` (Put or Notify) with `payload` for the endpoint of `tenant`/`service`, if any.
    pub fn send(
        &self,
        tenant: &str,
        service: &str,
        version: ProtocolVersion,
        operation: u32,
        payload: Item,
    ) {
        let Some(queue) = self.queue(tenant, service) else {
            return;
        };
        if let Err(e) = queue.try_send((version, operation, payload)) {
            tracing::error!(
                tenant,
                service,
                error = %e,
                "a server-to-client notification was not queued (the endpoint's queue is full or stopped): it is lost"
            );
        }
    }
}

/// Sends the queued messages of `endpoint` in order over one kept connection.
async fn deliver(
    endpoint: NotifyEndpoint,
    tls: Arc<ClientConfig>,
    mut rx: tokio::sync::mpsc::Receiver<Message>,
) {
    let mut client: Option<KmipClient> = None;
    while let Some((version, operation, payload)) = rx.recv().await {
        let request = RequestMessage::new(version, vec![(operation, payload)]).into_item();
        let mut delivered = false;
        let mut last_error = String::new();
        for attempt in 1..=ATTEMPTS {
            if client.is_none() {
                match KmipClient::connect(&endpoint.addr, tls.clone(), &endpoint.server_name).await
                {
                    Ok(c) => client = Some(c),
                    Err(e) => {
                        last_error = e.to_string();
                        tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                        continue;
                    }
                }
            }
            let Some(c) = client.as_mut() else { continue };
            match c.call(&request).await {
                Ok(answer) => {
                    match ResponseMessage::parse(&answer)
                        .ok()
                        .and_then(|r| r.items.into_iter().next())
                        .map(|i| i.result)
                    {
                        Some(Ok(_)) => {}
                        Some(Err(e)) => tracing::warn!(
                            tenant = %endpoint.tenant,
                            endpoint = %endpoint.addr,
                            reason = %e.message,
                            "the notify endpoint refused a message"
                        ),
                        None => tracing::warn!(
                            tenant = %endpoint.tenant,
                            endpoint = %endpoint.addr,
                            "the notify endpoint sent an answer that is not a KMIP response"
                        ),
                    }
                    delivered = true;
                    break;
                }
                Err(e) => {
                    last_error = e.to_string();
                    client = None;
                }
            }
        }
        if !delivered {
            tracing::error!(
                tenant = %endpoint.tenant,
                endpoint = %endpoint.addr,
                operation = %openkcm_kmip::enums::operation::name(operation),
                error = %last_error,
                "a server-to-client notification could not be delivered after {ATTEMPTS} attempts: it is lost"
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::NotifyEndpoint;

    #[test]
    fn endpoints_parse() {
        let e = NotifyEndpoint::parse("acme/billing=localhost:5700").unwrap();
        assert_eq!(
            (
                e.tenant.as_str(),
                e.service.as_deref(),
                e.addr.as_str(),
                e.server_name.as_str()
            ),
            ("acme", Some("billing"), "localhost:5700", "localhost")
        );
        assert_eq!(
            NotifyEndpoint::parse("acme=127.0.0.1:1").unwrap().service,
            None
        );
        for bad in ["acme", "=h:1", "acme=h", "acme=h:x", "acme=:1"] {
            assert!(NotifyEndpoint::parse(bad).is_err(), "{bad}");
        }
    }
}
