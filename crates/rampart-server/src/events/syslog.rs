//! Syslog destinations: RFC 5424 messages (`rampart_events::wire::syslog`) over UDP (RFC 5426),
//! TCP (RFC 6587, octet counting) or TLS (RFC 5425).
//!
//! A batch goes out on one connection: every message framed, written, flushed and the
//! connection closed cleanly (a TLS close_notify), so that a receiver has read all of it
//! before the batch counts as delivered. Syslog has no acknowledgement; a connection that
//! breaks part way fails the whole batch, which is sent again: at least once, as everywhere
//! else, the event id deduplicates.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rampart_events::wire::{self, Facility, Payload};
use tokio::io::AsyncWriteExt;

use super::{Pending, Sent, all_failed};
use crate::api::SyslogTransport;

/// The largest datagram sent: rsyslog's default `maxMessageSize` (8 KiB). Longer messages are
/// cut at a character boundary, as a receiver would cut them; the header and the structured
/// data (with the event id) come first and survive.
const MAX_DATAGRAM: usize = 8192;

/// Where and how.
pub(super) struct Target<'a> {
    pub address: &'a str,
    pub transport: SyslogTransport,
    pub payload: Payload,
    pub facility: Facility,
    pub ca_pem: Option<&'a str>,
    pub hostname: &'a str,
    pub timeout: Duration,
}

/// Sends a batch; every event's outcome.
pub(super) async fn send(t: &Target<'_>, batch: Vec<Pending>) -> Vec<Sent> {
    let pid = std::process::id();
    let messages: Vec<String> = batch
        .iter()
        .map(|p| wire::syslog(&p.event, t.facility.code(), t.hostname, pid, t.payload))
        .collect();
    let outcome = match t.transport {
        SyslogTransport::Udp => {
            return match tokio::time::timeout(t.timeout, udp(t.address, &messages)).await {
                Ok(Ok(per_message)) => batch
                    .into_iter()
                    .zip(per_message)
                    .map(|(p, r)| (p.seq, p.attempts, r))
                    .collect(),
                Ok(Err(e)) => all_failed(batch, &e),
                Err(_) => all_failed(batch, &format!("{}: timed out", t.address)),
            };
        }
        SyslogTransport::Tcp | SyslogTransport::Tls => {
            tokio::time::timeout(t.timeout, stream(t, &messages))
                .await
                .unwrap_or_else(|_| Err(format!("{}: timed out", t.address)))
        }
    };
    match outcome {
        Ok(()) => batch
            .into_iter()
            .map(|p| (p.seq, p.attempts, Ok(())))
            .collect(),
        Err(e) => all_failed(batch, &e),
    }
}

async fn resolve(address: &str) -> Result<std::net::SocketAddr, String> {
    tokio::net::lookup_host(address)
        .await
        .map_err(|e| format!("{address}: {e}"))?
        .next()
        .ok_or_else(|| format!("{address}: no address"))
}

/// One datagram per message on a connected socket (so that an ICMP refusal is reported by
/// the next send).
async fn udp(address: &str, messages: &[String]) -> Result<Vec<Result<(), String>>, String> {
    let to = resolve(address).await?;
    let local = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    let socket = tokio::net::UdpSocket::bind(local)
        .await
        .map_err(|e| format!("{address}: {e}"))?;
    socket
        .connect(to)
        .await
        .map_err(|e| format!("{address}: {e}"))?;
    let mut out = Vec::with_capacity(messages.len());
    for m in messages {
        let datagram = wire::datagram(m, MAX_DATAGRAM);
        out.push(
            socket
                .send(datagram.as_bytes())
                .await
                .map(|_| ())
                .map_err(|e| format!("{address}: {e}")),
        );
    }
    Ok(out)
}

/// Every message octet-counted on one TCP or TLS connection, then a clean close.
async fn stream(t: &Target<'_>, messages: &[String]) -> Result<(), String> {
    let address = t.address;
    let mut buf = Vec::with_capacity(messages.iter().map(|m| m.len() + 8).sum());
    for m in messages {
        buf.extend_from_slice(&wire::octet_counted(m));
    }
    let to = resolve(address).await?;
    let tcp = tokio::net::TcpStream::connect(to)
        .await
        .map_err(|e| format!("{address}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let io_err = |e: std::io::Error| format!("{address}: {e}");
    match t.transport {
        SyslogTransport::Tls => {
            let config = tls_config(t.ca_pem)?;
            let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
            let name = rustls::pki_types::ServerName::try_from(host.to_owned())
                .map_err(|e| format!("{address}: {e}"))?;
            let mut tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|e| format!("{address}: TLS: {e}"))?;
            tls.write_all(&buf).await.map_err(io_err)?;
            tls.flush().await.map_err(io_err)?;
            tls.shutdown().await.map_err(io_err)?;
        }
        _ => {
            let mut tcp = tcp;
            tcp.write_all(&buf).await.map_err(io_err)?;
            tcp.flush().await.map_err(io_err)?;
            tcp.shutdown().await.map_err(io_err)?;
        }
    }
    Ok(())
}

/// The client configuration: the destination's own CA when it names one, else the system's
/// trust (built once).
fn tls_config(ca_pem: Option<&str>) -> Result<Arc<rustls::ClientConfig>, String> {
    match ca_pem {
        Some(pem) => {
            let roots = super::ca_roots(pem).map_err(|e| format!("ca_pem: {e}"))?;
            Ok(Arc::new(
                rustls::ClientConfig::builder()
                    .with_root_certificates(roots)
                    .with_no_client_auth(),
            ))
        }
        None => {
            static SYSTEM: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
            SYSTEM
                .get_or_init(|| {
                    use rustls_platform_verifier::ConfigVerifierExt;
                    rustls::ClientConfig::with_platform_verifier()
                        .map(Arc::new)
                        .map_err(|e| format!("system trust store: {e}"))
                })
                .clone()
        }
    }
}
