//! E-mail through an SMTP server (lettre): always encrypted, STARTTLS required or TLS from the
//! first byte; authentication only inside TLS. One message per event, all on one transport.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{Pending, Sent, all_failed, error_chain};
use crate::api::SmtpTls;

/// Where and how.
pub(super) struct Target<'a> {
    /// `host:port`.
    pub server: &'a str,
    pub tls: SmtpTls,
    pub from: &'a str,
    pub to: &'a [String],
    /// User and password, when the server wants them.
    pub login: Option<(&'a str, String)>,
    pub ca_pem: Option<&'a str>,
    /// The name Rampart greets the server with (EHLO).
    pub hello: &'a str,
    /// The dashboard's base URL, for links.
    pub dashboard: &'a str,
    pub timeout: Duration,
}

/// The sender and recipients, checked: what the API checks when a destination is defined.
pub(crate) fn mailboxes(from: &str, to: &[String]) -> Result<(Mailbox, Vec<Mailbox>), String> {
    let from: Mailbox = from
        .parse()
        .map_err(|e| format!("sink.from: {from:?}: {e}"))?;
    let to = to
        .iter()
        .map(|t| t.parse().map_err(|e| format!("sink.to: {t:?}: {e}")))
        .collect::<Result<Vec<Mailbox>, String>>()?;
    if to.is_empty() {
        return Err("sink.to: at least one recipient".into());
    }
    Ok((from, to))
}

fn transport(t: &Target<'_>) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let (host, port) = t
        .server
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
        .ok_or_else(|| format!("{}: not HOST:PORT", t.server))?;
    let mut params = TlsParameters::builder(host.to_owned());
    if let Some(pem) = t.ca_pem {
        // A private PKI: its CA only, not the public roots besides.
        params = params.certificate_store(CertificateStore::None);
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert.map_err(|e| format!("ca_pem: {e}"))?;
            params = params.add_root_certificate(
                Certificate::from_der(cert.to_vec()).map_err(|e| format!("ca_pem: {e}"))?,
            );
        }
    }
    let params = params
        .build_rustls()
        .map_err(|e| format!("TLS settings: {}", error_chain(&e)))?;
    let tls = match t.tls {
        SmtpTls::Starttls => Tls::Required(params),
        SmtpTls::Tls => Tls::Wrapper(params),
    };
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port)
        .tls(tls)
        .hello_name(ClientId::Domain(t.hello.to_owned()))
        .timeout(Some(t.timeout));
    if let Some((user, password)) = &t.login {
        b = b.credentials(Credentials::new((*user).to_owned(), password.clone()));
    }
    Ok(b.build())
}

fn message(t: &Target<'_>, from: &Mailbox, to: &[Mailbox], p: &Pending) -> Result<Message, String> {
    let mail = rampart_events::chat::mail(&p.event, t.dashboard);
    let mut b = Message::builder()
        .from(from.clone())
        .subject(mail.subject)
        // Redeliveries (at least once) carry the same id: mail clients thread or drop them.
        .message_id(Some(format!("<{}@rampart.invalid>", p.event.id)))
        .date(std::time::SystemTime::from(p.event.time))
        .header(ContentType::TEXT_PLAIN);
    for rcpt in to {
        b = b.to(rcpt.clone());
    }
    b.body(mail.text).map_err(|e| format!("message: {e}"))
}

/// Sends each event as one message. A failure to connect or to start TLS fails the whole
/// batch; a message the server refuses fails alone.
pub(super) async fn send(t: &Target<'_>, batch: Vec<Pending>) -> Vec<Sent> {
    let (from, to) = match mailboxes(t.from, t.to) {
        Ok(m) => m,
        Err(e) => return all_failed(batch, &e),
    };
    let transport = match transport(t) {
        Ok(tr) => tr,
        Err(e) => return all_failed(batch, &e),
    };
    let mut out = Vec::with_capacity(batch.len());
    let mut stop: Option<String> = None;
    for p in batch {
        if let Some(why) = &stop {
            out.push((p.seq, p.attempts, Err(why.clone())));
            continue;
        }
        let r = match message(t, &from, &to, &p) {
            Err(e) => Err(e),
            Ok(msg) => match transport.send(msg).await {
                Ok(_) => Ok(()),
                Err(e) => {
                    let why = format!("{}: {}", t.server, error_chain(&e));
                    // A refusal of this message (a 5xx or 4xx reply to it) fails it alone;
                    // anything else (connection, TLS, authentication) the rest too.
                    if !(e.is_permanent() || e.is_transient()) {
                        stop = Some(why.clone());
                    }
                    Err(why)
                }
            },
        };
        out.push((p.seq, p.attempts, r));
    }
    out
}
