//! A Lambda Runtime API emulator on a loopback port: what the Lambda service is to a function
//! process. `GET /2018-06-01/runtime/invocation/next` long-polls for the next queued event and
//! answers it with the runtime headers; `POST .../invocation/{id}/response` and `.../error`
//! complete it; `POST .../init/error` reports a failed init.
//!
//! One emulator serves one function process (a new one per cold start), so a killed process's
//! pending long poll can never swallow the next process's event.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

const PREFIX: &str = "/2018-06-01/runtime";
pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:bench";
const TRACE_ID: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0";

/// How one invocation ended, and when the function's answer arrived.
#[derive(Debug)]
pub struct Completion {
    pub at: Instant,
    /// `false` for `/error`.
    pub ok: bool,
    pub body: Bytes,
}

struct Pending {
    id: String,
    event: Bytes,
    done: oneshot::Sender<Completion>,
}

struct Shared {
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Pending>>,
    inflight: Mutex<HashMap<String, oneshot::Sender<Completion>>>,
    first_next: Mutex<Option<Instant>>,
    init_error: Mutex<Option<String>>,
    init_failed: Notify,
}

pub struct RuntimeApi {
    /// `127.0.0.1:PORT`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub address: String,
    queue: mpsc::UnboundedSender<Pending>,
    shared: Arc<Shared>,
    counter: AtomicU64,
    server: JoinHandle<()>,
}

/// An invocation queued before (or while) the function polls for it.
pub struct Invocation {
    pub queued_at: Instant,
    done: oneshot::Receiver<Completion>,
}

impl RuntimeApi {
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?.to_string();
        let (queue, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            queue: tokio::sync::Mutex::new(rx),
            inflight: Mutex::new(HashMap::new()),
            first_next: Mutex::new(None),
            init_error: Mutex::new(None),
            init_failed: Notify::new(),
        });
        let state = shared.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(route(&state, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            address,
            queue,
            shared,
            counter: AtomicU64::new(0),
            server,
        })
    }

    /// Queues an event; the function receives it on its next poll.
    pub fn queue(&self, event: Vec<u8>) -> Invocation {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let id = format!("bench-{:08x}-{n:012}", std::process::id());
        let (done, rx) = oneshot::channel();
        let queued_at = Instant::now();
        // The receiver lives in `shared` as long as `self`, so this cannot fail.
        let _ = self.queue.send(Pending {
            id,
            event: Bytes::from(event),
            done,
        });
        Invocation {
            queued_at,
            done: rx,
        }
    }

    /// Waits for an invocation's completion, an init error, or the timeout.
    pub async fn wait(
        &self,
        invocation: Invocation,
        timeout: Duration,
    ) -> Result<Completion, String> {
        let failed = self.shared.init_failed.notified();
        tokio::select! {
            done = tokio::time::timeout(timeout, invocation.done) => match done {
                Ok(Ok(completion)) => Ok(completion),
                Ok(Err(_)) => Err("the emulator dropped the invocation".to_owned()),
                Err(_) => Err(format!("no response within {timeout:?}")),
            },
            _ = failed => Err(format!(
                "init error: {}",
                self.shared.init_error.lock().unwrap().clone().unwrap_or_default()
            )),
        }
    }

    /// When the function first asked for an event (its init was done).
    pub fn first_poll(&self) -> Option<Instant> {
        *self.shared.first_next.lock().unwrap()
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn reply(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}

async fn route(state: &Shared, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return reply(StatusCode::NOT_FOUND, "{}");
    };
    match (req.method().clone(), rest) {
        (Method::GET, "/invocation/next") => {
            {
                let mut first = state.first_next.lock().unwrap();
                if first.is_none() {
                    *first = Some(Instant::now());
                }
            }
            let next = state.queue.lock().await.recv().await;
            let Some(pending) = next else {
                return reply(StatusCode::INTERNAL_SERVER_ERROR, "{}");
            };
            let deadline = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis()
                + 30_000;
            let response = Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .header("lambda-runtime-aws-request-id", pending.id.as_str())
                .header("lambda-runtime-deadline-ms", deadline.to_string())
                .header("lambda-runtime-invoked-function-arn", FUNCTION_ARN)
                .header("lambda-runtime-trace-id", TRACE_ID)
                .body(Full::new(pending.event))
                .expect("valid response");
            state
                .inflight
                .lock()
                .unwrap()
                .insert(pending.id, pending.done);
            response
        }
        (Method::POST, "/init/error") => {
            let body = body_bytes(req).await;
            *state.init_error.lock().unwrap() = Some(String::from_utf8_lossy(&body).into_owned());
            state.init_failed.notify_waiters();
            state.init_failed.notify_one();
            reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
        }
        (Method::POST, rest) if rest.starts_with("/invocation/") => {
            let tail = &rest["/invocation/".len()..];
            let (id, ok) = if let Some(id) = tail.strip_suffix("/response") {
                (id.to_owned(), true)
            } else if let Some(id) = tail.strip_suffix("/error") {
                (id.to_owned(), false)
            } else {
                return reply(StatusCode::NOT_FOUND, "{}");
            };
            let body = body_bytes(req).await;
            let at = Instant::now();
            match state.inflight.lock().unwrap().remove(&id) {
                Some(done) => {
                    let _ = done.send(Completion { at, ok, body });
                    reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
                }
                None => reply(
                    StatusCode::BAD_REQUEST,
                    r#"{"errorType":"InvalidRequestID"}"#,
                ),
            }
        }
        _ => reply(StatusCode::NOT_FOUND, "{}"),
    }
}

/// The whole body of a request from the function (empty if the connection broke).
async fn body_bytes(req: Request<hyper::body::Incoming>) -> Bytes {
    req.into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default()
}
