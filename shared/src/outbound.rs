//! The one outbound HTTP client setup (Stripe, the JWKS endpoint): hyper over rustls with
//! aws-lc, the TLS stack the AWS SDK links too, so no second one enters a binary.

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;

/// HTTPS with the webpki roots (no system certificates needed in Lambda's image), HTTP/1.1.
/// Plain `http://` is allowed through: callers decide which URLs may use it (emulators on
/// loopback).
pub(crate) fn https_connector() -> HttpsConnector<HttpConnector> {
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .build()
}
