//! Serves a handler that takes and returns `lambda_http` requests over real HTTP on a loopback
//! port, the way a Function URL or API Gateway invokes a Lambda: the local gateway and the
//! webhook receiver of the tests.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lambda_http::{Body, Request, Response};

/// Starts serving on `127.0.0.1:<free port>`; returns the base URL. Runs until the runtime ends.
pub async fn serve<H, F>(handler: H) -> String
where
    H: Fn(Request) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    serve_on(0, handler).await.expect("bind a loopback port")
}

/// Serves on `127.0.0.1:port` (0: any free port); returns the base URL.
pub async fn serve_on<H, F>(port: u16, handler: H) -> std::io::Result<String>
where
    H: Fn(Request) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let handler = handler.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let bytes = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let request = Request::from_parts(parts, Body::from(bytes.to_vec()));
                        let response = handler(request).await;
                        let (parts, body) = response.into_parts();
                        let bytes = Bytes::copy_from_slice(billing::http::body_bytes(&body));
                        Ok::<_, Infallible>(hyper::Response::from_parts(parts, Full::new(bytes)))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(format!("http://{addr}"))
}
