//! Small HTTP/1 server plumbing shared by the executor side and the Runtime API.

use std::{convert::Infallible, future::Future, net::SocketAddr, sync::Arc};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode, body::Incoming, header, server::conn::http1};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpListener, task::JoinSet};

use crate::error::ShimError;

/// Response type of the shim's servers.
pub type HttpResponse = Response<Full<Bytes>>;

/// Binds a TCP listener on `addr`.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ShimError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ShimError::Bind {
            addr: addr.to_string(),
            source,
        })
}

/// Serves HTTP/1 connections on `listener` with `handler` until the returned future is dropped.
///
/// Connections live in a `JoinSet` owned by the future, so dropping or
/// aborting it closes every connection too.
pub async fn serve<S, F, Fut>(listener: TcpListener, state: Arc<S>, handler: F)
where
    S: Send + Sync + 'static,
    F: Fn(Arc<S>, Request<Incoming>) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = HttpResponse> + Send + 'static,
{
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                // Each exchange is a few small writes; Nagle would add ~40 ms.
                let _ = stream.set_nodelay(true);
                let state = Arc::clone(&state);
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, Infallible>(handler(state, request).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            // Reap finished connections so the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Builds a response with a JSON (or empty) body.
pub fn respond(status: StatusCode, body: impl Into<Bytes>) -> HttpResponse {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

/// Collects a request body, or `None` if the peer went away mid-body.
pub async fn read_body(request: Request<Incoming>) -> Option<Bytes> {
    request
        .into_body()
        .collect()
        .await
        .ok()
        .map(|collected| collected.to_bytes())
}
