//! Which web pages may open the WebSocket: the check against cross-site
//! WebSocket hijacking.
//!
//! A browser sends cookies and other ambient credentials with a WebSocket
//! handshake whatever page opened it, and the same-origin policy does not
//! apply to WebSockets; what it does do is tell the server which page it
//! is, in the `Origin` header, which a script cannot forge. So the server
//! checks it: by default only a page served by this same host may connect
//! (the `Origin`'s host and port are the request's `Host`), and an operator
//! who serves the page elsewhere lists the origins allowed instead
//! (`--http-origin https://chat.example.com`, repeatable).
//!
//! A handshake without an `Origin` header is let through: browsers always
//! send one, so it comes from a program (a bot, `websocat`), which could
//! send any `Origin` it liked anyway. The header `Origin: null` (a sandboxed
//! frame, a `file:` page) is always refused.

use std::fmt;

use axum::http::{HeaderValue, Uri};

/// The origins allowed to open the WebSocket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// Pages served by the same host and port as the handshake's `Host`
    /// header (the default).
    #[default]
    SameHost,
    /// Exactly these origins (`scheme://host[:port]`, compared without
    /// regard to ASCII case).
    List(Vec<String>),
}

/// An origin given in the configuration that is not `scheme://host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadOrigin(pub String);

impl fmt::Display for BadOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not an origin: expected scheme://host[:port], such as https://chat.example.com",
            self.0
        )
    }
}

impl std::error::Error for BadOrigin {}

/// The scheme and authority of a serialized origin, if it is one.
fn parse(origin: &str) -> Option<(String, String)> {
    let uri: Uri = origin.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let authority = uri.authority()?.as_str().to_ascii_lowercase();
    // An origin has no path, query, user or trailing slash.
    let bare = format!("{scheme}://{authority}");
    (bare.eq_ignore_ascii_case(origin) && !authority.contains('@')).then_some((scheme, authority))
}

impl AllowedOrigins {
    /// The list given on the command line (`--http-origin`, repeatable);
    /// none given means [`SameHost`](AllowedOrigins::SameHost).
    pub fn from_list<S: AsRef<str>>(origins: &[S]) -> Result<Self, BadOrigin> {
        if origins.is_empty() {
            return Ok(AllowedOrigins::SameHost);
        }
        let mut list = Vec::with_capacity(origins.len());
        for origin in origins {
            let origin = origin.as_ref();
            let (scheme, authority) = parse(origin).ok_or_else(|| BadOrigin(origin.to_owned()))?;
            list.push(format!("{scheme}://{authority}"));
        }
        Ok(AllowedOrigins::List(list))
    }

    /// Whether a handshake with these `Origin` and `Host` headers may
    /// open the WebSocket.
    pub fn allows(&self, origin: Option<&HeaderValue>, host: Option<&HeaderValue>) -> bool {
        let Some(origin) = origin else {
            // Not a browser: nothing to protect it from.
            return true;
        };
        let Some((scheme, authority)) = origin.to_str().ok().and_then(parse) else {
            return false;
        };
        match self {
            AllowedOrigins::List(list) => {
                let origin = format!("{scheme}://{authority}");
                list.contains(&origin)
            }
            AllowedOrigins::SameHost => {
                let Some(host) = host.and_then(|h| h.to_str().ok()) else {
                    return false;
                };
                let host = host.to_ascii_lowercase();
                // Browsers leave a scheme's default port out of an origin.
                let default_port = match scheme.as_str() {
                    "http" => ":80",
                    "https" => ":443",
                    _ => return false,
                };
                authority == host || host.strip_suffix(default_port) == Some(authority.as_str())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(allowed: &AllowedOrigins, origin: Option<&str>, host: Option<&str>) -> bool {
        let origin = origin.map(|o| HeaderValue::from_str(o).unwrap());
        let host = host.map(|h| HeaderValue::from_str(h).unwrap());
        allowed.allows(origin.as_ref(), host.as_ref())
    }

    #[test]
    fn by_default_only_pages_of_the_same_host_and_port() {
        let same = AllowedOrigins::SameHost;
        let host = Some("127.0.0.1:7880");
        assert!(allows(&same, Some("http://127.0.0.1:7880"), host));
        assert!(allows(&same, Some("https://127.0.0.1:7880"), host));
        assert!(allows(
            &same,
            Some("HTTP://LOCALHOST:7880"),
            Some("localhost:7880")
        ));
        assert!(allows(
            &same,
            Some("http://chat.example"),
            Some("chat.example")
        ));
        assert!(allows(
            &same,
            Some("http://chat.example"),
            Some("chat.example:80")
        ));
        assert!(allows(
            &same,
            Some("https://chat.example"),
            Some("chat.example:443")
        ));
        // Another port, another host, another scheme: another site.
        assert!(!allows(&same, Some("http://127.0.0.1:9999"), host));
        assert!(!allows(&same, Some("http://evil.example"), host));
        assert!(!allows(
            &same,
            Some("http://127.0.0.1:7880.evil.example"),
            host
        ));
        assert!(!allows(
            &same,
            Some("https://chat.example"),
            Some("chat.example:80")
        ));
        assert!(!allows(&same, Some("ftp://127.0.0.1:7880"), host));
        // Not an origin at all.
        assert!(!allows(&same, Some("null"), host));
        assert!(!allows(&same, Some("http://127.0.0.1:7880/path"), host));
        assert!(!allows(&same, Some("http://user@127.0.0.1:7880"), host));
        assert!(!allows(&same, Some("http://127.0.0.1:7880"), None));
        // No Origin: not a browser.
        assert!(allows(&same, None, host));
    }

    #[test]
    fn a_list_replaces_the_same_host_rule() {
        let list =
            AllowedOrigins::from_list(&["https://Chat.Example", "http://127.0.0.1:8000"]).unwrap();
        let host = Some("127.0.0.1:7880");
        assert!(allows(&list, Some("https://chat.example"), host));
        assert!(allows(&list, Some("http://127.0.0.1:8000"), host));
        assert!(!allows(&list, Some("http://127.0.0.1:7880"), host));
        assert!(!allows(&list, Some("http://chat.example"), host));
        assert!(!allows(&list, Some("null"), host));
        assert!(allows(&list, None, host));
    }

    #[test]
    fn configured_origins_must_be_origins() {
        assert_eq!(
            AllowedOrigins::from_list::<&str>(&[]),
            Ok(AllowedOrigins::SameHost)
        );
        for bad in [
            "chat.example",
            "https://chat.example/",
            "https://a/b",
            "*",
            "",
        ] {
            assert_eq!(
                AllowedOrigins::from_list(&[bad]),
                Err(BadOrigin(bad.to_owned())),
                "{bad}"
            );
        }
    }
}
