//! Serves the built frontend (`frontend/dist`) on its own origin, as a CDN would, so the browser
//! talks to the API cross-origin exactly as in production. `/env.json` tells the app where the
//! API is and offers the dev sign-in: tokens the stack mints for an Owner, a Member and the
//! Owner of another org. Unknown paths without a file extension get `index.html` (the app
//! routes in the browser).

use std::path::{Path, PathBuf};

use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Serialize;

use crate::stack::{DEMO_ORG, OTHER_ORG, dev_token};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DevUser {
    label: String,
    org: &'static str,
    role: &'static str,
    token: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EnvJson {
    api_base_url: String,
    dev_users: Vec<DevUser>,
}

fn env_json(api_base_url: &str) -> String {
    let users = [
        (DEMO_ORG, "user_owner", "Owner"),
        (DEMO_ORG, "user_member", "Member"),
        (OTHER_ORG, "user_other_owner", "Owner"),
    ];
    let body = EnvJson {
        api_base_url: api_base_url.to_owned(),
        dev_users: users
            .into_iter()
            .map(|(org, user, role)| DevUser {
                label: format!("{role} of {org}"),
                org,
                role,
                token: dev_token(org, user, role),
            })
            .collect(),
    };
    serde_json::to_string(&body).unwrap_or_default()
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") | Some("mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

fn reply(status: StatusCode, content_type: &'static str, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static(content_type));
    headers.insert("cache-control", HeaderValue::from_static("no-store"));
    response
}

/// One request to the frontend origin.
pub fn handle(dist: &Path, api_base_url: &str, request: &Request) -> Response<Body> {
    let path = request.uri().path();
    if path == "/env.json" {
        return reply(
            StatusCode::OK,
            "application/json",
            Body::Text(env_json(api_base_url)),
        );
    }
    // Only plain relative segments: no `..`, no absolute paths, nothing outside `dist`.
    let relative: PathBuf = path
        .split('/')
        .filter(|s| !s.is_empty() && *s != "." && *s != "..")
        .collect();
    let mut file = dist.join(&relative);
    if relative.as_os_str().is_empty() || (!file.is_file() && relative.extension().is_none()) {
        file = dist.join("index.html");
    }
    match std::fs::read(&file) {
        Ok(bytes) => reply(StatusCode::OK, content_type(&file), Body::Binary(bytes)),
        Err(_) if file.ends_with("index.html") => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain; charset=utf-8",
            Body::Text(
                "The frontend is not built: run `npm ci && npm run build` in frontend/.".into(),
            ),
        ),
        Err(_) => reply(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            Body::Text("Not found".into()),
        ),
    }
}

/// Serves `dist` on `127.0.0.1:port` (0: any free port); returns the frontend's origin.
pub async fn serve(port: u16, dist: PathBuf, api_base_url: String) -> std::io::Result<String> {
    crate::server::serve_on(port, move |request| {
        let response = handle(&dist, &api_base_url, &request);
        async move { response }
    })
    .await
}

/// `frontend/dist` of the workspace, or `PSS_FRONTEND_DIST`.
pub fn dist_dir() -> PathBuf {
    std::env::var_os("PSS_FRONTEND_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::emulators::workspace_root().join("frontend/dist"))
}
