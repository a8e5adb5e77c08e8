//! The page, built into the binary: HTML, CSS and plain JavaScript from
//! `assets/`, with no build step.
//!
//! Every file is served with `no-cache` (a new binary serves its own page
//! at once) and `nosniff`. The page itself also gets a content security
//! policy that allows scripts, styles and connections from this origin
//! only and no inline script at all: the script inserts what users say
//! as text (`textContent`), never as HTML, and the policy is the second
//! line of defence if that were ever got wrong.

use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// One file of the page.
#[derive(Debug)]
pub(crate) struct Asset {
    content_type: &'static str,
    body: &'static str,
    /// Whether this is the document, which gets the security policy.
    document: bool,
}

/// The page.
pub(crate) const INDEX: Asset = Asset {
    content_type: "text/html; charset=utf-8",
    body: include_str!("../assets/index.html"),
    document: true,
};

/// Its script.
pub(crate) const SCRIPT: Asset = Asset {
    content_type: "text/javascript; charset=utf-8",
    body: include_str!("../assets/app.js"),
    document: false,
};

/// Its style sheet.
pub(crate) const STYLE: Asset = Asset {
    content_type: "text/css; charset=utf-8",
    body: include_str!("../assets/style.css"),
    document: false,
};

/// Scripts, styles, images and connections from this origin only; no
/// inline script, no framing by other sites.
const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                      connect-src 'self'; img-src 'self'; base-uri 'none'; \
                      form-action 'none'; frame-ancestors 'none'";

impl Asset {
    pub(crate) fn response(&self) -> Response {
        let mut headers: Vec<(HeaderName, HeaderValue)> = vec![
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(self.content_type),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ];
        if self.document {
            headers.push((
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(POLICY),
            ));
        }
        let mut response = self.body.into_response();
        for (name, value) in headers {
            // Replaces the text/plain a string is given by default.
            response.headers_mut().insert(name, value);
        }
        response
    }
}
