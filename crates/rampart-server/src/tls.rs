//! TLS listeners: the handshake (with a timeout), the peer certificate handed to handlers, and
//! HTTP/1.1 with a header-read timeout and paced request bodies ([`crate::pace`]), so no slow or
//! silent client holds a connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use rampart_pki::verifier::AgentCertVerifier;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::ServerError;
use crate::app::App;

/// The client certificate of the connection a request came on (agent port only).
#[derive(Clone, Debug)]
pub(crate) struct PeerCert(pub Option<CertificateDer<'static>>);

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn server_cert(
    app: &App,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), ServerError> {
    let cert = app
        .ca()
        .issue_server(&app.config.names, OffsetDateTime::now_utc())?;
    Ok((cert.chain, PrivateKeyDer::Pkcs8(cert.key)))
}

/// The API port: server authentication only.
pub(crate) fn api_tls_config(app: &App) -> Result<Arc<rustls::ServerConfig>, ServerError> {
    let (chain, key) = server_cert(app)?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// The agent port: a client certificate chained to the root and not revoked is mandatory.
pub(crate) fn agent_tls_config(app: &App) -> Result<Arc<rustls::ServerConfig>, ServerError> {
    let (chain, key) = server_cert(app)?;
    let verifier =
        AgentCertVerifier::new(app.ca().root_der().clone(), app.revoked.clone(), provider())?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(chain, key)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Accepts connections until shutdown, then lets open ones finish (10 s at most).
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    app: Arc<App>,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let limits = Limits {
        handshake: app.config.handshake_timeout,
        header: app.config.header_timeout,
        body: app.config.body_pace,
    };
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                conns.spawn(connection(
                    acceptor.clone(),
                    tcp,
                    peer,
                    router.clone(),
                    limits,
                    shutdown.clone(),
                ));
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while conns.join_next().await.is_some() {}
    })
    .await;
}

/// How long a client may take over each part of a connection.
#[derive(Clone, Copy)]
struct Limits {
    handshake: Duration,
    header: Duration,
    body: crate::pace::BodyPace,
}

async fn connection(
    acceptor: TlsAcceptor,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let tls = match tokio::time::timeout(limits.handshake, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::info!(%peer, error = %e, "TLS handshake refused");
            return;
        }
        Err(_) => {
            tracing::info!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.clone().into_owned());
    let peer_cert = PeerCert(cert);
    let pace = limits.body;
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(peer_cert.clone());
        req.extensions_mut().insert(ConnectInfo(peer));
        router
            .clone()
            .oneshot(req.map(|b| Body::new(crate::pace::PacedBody::new(b, pace))))
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(tls), svc);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        }
        _ = shutdown.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}
