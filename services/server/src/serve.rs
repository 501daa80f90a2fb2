//! The accept loop of `homeward serve`: HTTP/1.1 with WebSocket upgrades, each connection told
//! its client's address, and a deadline on every request's headers, which also closes a
//! connection left idle that long. A client that trickles its headers a byte a second, or
//! opens connections and sends nothing, holds them for that deadline only. (HTTP/2 is for the
//! proxy in front, which speaks HTTP/1.1 to Homeward.)

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt as _;

/// Serves `router` on `listener` until `shutdown` completes, then lets every connection finish
/// the request it is serving, and returns when all have closed.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    // Connections hold a receiver each: when every one is dropped, all have closed.
    let (closing, _) = watch::channel(false);
    let (closed_tx, closed) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, client) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, most likely: wait, rather than spin.
                    tracing::warn!(error = %e, "a connection was not accepted");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = router
            .clone()
            .map_request(move |request: axum::http::Request<Incoming>| {
                let mut request = request.map(Body::new);
                request.extensions_mut().insert(ConnectInfo(client));
                request
            });
        let mut closing = closing.subscribe();
        let closed = closed.clone();
        tokio::spawn(async move {
            let mut connection = pin!(http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                .with_upgrades());
            loop {
                tokio::select! {
                    result = connection.as_mut() => {
                        if let Err(e) = result {
                            tracing::debug!(error = %e, "a connection ended with an error");
                        }
                        break;
                    }
                    _ = closing.changed() => connection.as_mut().graceful_shutdown(),
                }
            }
            drop(closed);
        });
    }
    drop(listener);
    let _ = closing.send(true);
    drop(closed);
    // Every connection's receiver dropped: the sender sees none left.
    closed_tx.closed().await;
}

/// The address a request came from, as the connection saw it (a proxy's, behind one).
pub(crate) fn peer(request: &axum::http::request::Parts) -> Option<SocketAddr> {
    request
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| *address)
}
