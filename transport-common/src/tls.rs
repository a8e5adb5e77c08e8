//! TLS settings, written once for every transport (feature `tls`).
//!
//! A server is given a certificate chain and its private key in PEM
//! ([`ServerTls::from_pem_files`]); a client a set of roots to verify the
//! server against: the system's ([`ClientTls::system_roots`]) or a given CA
//! ([`ClientTls::from_ca_file`]). Each becomes a rustls configuration that
//! the transports use as it is: the async ones through futures-rustls, the
//! blocking one through rustls's own connection types. Whatever is wrong
//! with a file is said here, once, naming the file: unreadable, no
//! certificate in it, no key in it, not PEM, or a key that does not belong
//! to the certificate ([`TlsError`]).
//!
//! # Choices
//!
//! * **rustls with the ring provider**, not aws-lc-rs (rustls's default).
//!   Build: ring needs a C compiler and nothing else, and compiles in
//!   seconds; aws-lc-rs builds the AWS-LC C library (a far longer compile,
//!   and on some platforms CMake, NASM or a recent compiler), which every
//!   fresh CI machine and every library user that turns `tls` on would pay
//!   for. Speed: rustls's published benchmarks put aws-lc-rs ahead on some
//!   handshake operations (RSA signing above all) and level on bulk AES-GCM;
//!   we did not measure aws-lc-rs here. A chat server's bulk is many small
//!   records, whose cost is system calls and record framing more than the
//!   cipher, and a certificate with an ECDSA P-256 key (what the README's
//!   commands make) avoids RSA signing altogether; BENCHMARKS.md measures
//!   what TLS with ring costs per delivery and per idle connection.
//!   aws-lc-rs's FIPS mode is the reason to switch, and [`ServerTls::from_config`]
//!   and [`ClientTls::from_config`] take a configuration built on any
//!   provider. The provider is passed explicitly to every configuration
//!   built here, so a program that also links aws-lc-rs for something else
//!   does not make these builders ambiguous.
//! * **The system's roots** (rustls-native-certs), not a compiled-in list
//!   (webpki-roots). A compiled-in list is the same everywhere, even in a
//!   container without a CA bundle, but it ages with the binary and ignores
//!   what the machine's administrator trusts or distrusts (a company CA, a
//!   removed root). The system's store follows the machine; where there is
//!   none, [`ClientTls::system_roots`] says so and a CA file
//!   ([`ClientTls::from_ca_file`]) is the way.
//! * **PEM parsing by rustls-pki-types** (which rustls already depends
//!   on), not rustls-pemfile, which is no longer maintained.
//!
//! Protocol versions are rustls's safe defaults: TLS 1.3 and 1.2.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::options::Address;

pub use rustls;

/// The crypto provider every configuration here is built with: ring.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// What is wrong with the TLS settings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {what} {path}: {source}")]
    Read {
        /// What the file was meant to hold.
        what: &'static str,
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not valid PEM.
    #[error("{source_name} is not valid PEM: {detail}")]
    BadPem {
        /// The file (or what was given instead of one).
        source_name: String,
        /// What the PEM parser said.
        detail: String,
    },
    /// No certificate where one was expected.
    #[error("{source_name} holds no certificate (a PEM block `-----BEGIN CERTIFICATE-----`)")]
    NoCertificate {
        /// The file (or what was given instead of one).
        source_name: String,
    },
    /// No private key where one was expected.
    #[error(
        "{source_name} holds no private key (a PEM block `-----BEGIN PRIVATE KEY-----`, \
         `RSA PRIVATE KEY` or `EC PRIVATE KEY`)"
    )]
    NoKey {
        /// The file (or what was given instead of one).
        source_name: String,
    },
    /// The private key is not the certificate's.
    #[error("the private key in {key} does not belong to the certificate in {cert}")]
    KeyMismatch {
        /// Where the certificate came from.
        cert: String,
        /// Where the key came from.
        key: String,
    },
    /// rustls refused the certificate or key.
    #[error("{what}: {source}")]
    Rejected {
        /// What was being set up.
        what: String,
        /// rustls's reason.
        source: rustls::Error,
    },
    /// The system has no root certificates to verify servers with.
    #[error(
        "no trusted root certificates found on this system{detail}; install the system's CA \
         bundle (ca-certificates) or give the server's CA certificate (--ca FILE)"
    )]
    NoRoots {
        /// What the loader reported, if anything.
        detail: String,
    },
    /// The name to verify the server's certificate against is not a DNS
    /// name or an IP address.
    #[error("{name:?} is not a valid server name for TLS (a DNS name or an IP address)")]
    BadServerName {
        /// The name.
        name: String,
    },
}

/// A server's TLS settings: its certificate chain and private key, as a
/// rustls server configuration.
#[derive(Clone)]
pub struct ServerTls {
    config: Arc<rustls::ServerConfig>,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls").finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Reads the certificate chain (leaf first, then intermediates, as
    /// certificate authorities hand them out) from `cert_path` and its
    /// private key (PKCS#8, PKCS#1 or SEC1) from `key_path`, both PEM.
    pub fn from_pem_files(
        cert_path: impl AsRef<Path>,
        key_path: impl AsRef<Path>,
    ) -> Result<ServerTls, TlsError> {
        let (cert_path, key_path) = (cert_path.as_ref(), key_path.as_ref());
        let certs = read_file("the certificate file", cert_path)?;
        let key = read_file("the key file", key_path)?;
        Self::from_pem_named(
            &certs,
            &cert_path.display().to_string(),
            &key,
            &key_path.display().to_string(),
        )
    }

    /// [`from_pem_files`](Self::from_pem_files), from PEM held in memory.
    pub fn from_pem(cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<ServerTls, TlsError> {
        Self::from_pem_named(
            cert_chain_pem,
            "the certificate PEM",
            key_pem,
            "the key PEM",
        )
    }

    fn from_pem_named(
        certs_pem: &[u8],
        cert_name: &str,
        key_pem: &[u8],
        key_name: &str,
    ) -> Result<ServerTls, TlsError> {
        let certs = certificates(certs_pem, cert_name)?;
        let key = private_key(key_pem, key_name)?;
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|source| rejected("the protocol versions", source))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|source| match source {
                rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch {
                    cert: cert_name.to_owned(),
                    key: key_name.to_owned(),
                },
                source => rejected(&format!("{cert_name} with {key_name}"), source),
            })?;
        Ok(ServerTls::from_config(Arc::new(config)))
    }

    /// Settings from a rustls configuration made elsewhere (client
    /// certificates, a certificate resolver, other versions).
    pub fn from_config(config: Arc<rustls::ServerConfig>) -> ServerTls {
        ServerTls { config }
    }

    /// The rustls configuration.
    pub fn config(&self) -> &Arc<rustls::ServerConfig> {
        &self.config
    }
}

/// A client's TLS settings: the roots it verifies servers against, as a
/// rustls client configuration, and optionally the name to verify.
///
/// The name a server's certificate must carry (also sent as SNI) is the
/// host of the address connected to (`chat.example.com` in
/// `"chat.example.com:7878"`), or, for an address given as an IP, that IP;
/// [`with_server_name`](Self::with_server_name) sets it explicitly.
#[derive(Clone)]
pub struct ClientTls {
    config: Arc<rustls::ClientConfig>,
    server_name: Option<ServerName<'static>>,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl ClientTls {
    /// Verifies servers against the system's root certificates. Fails if
    /// the system has none.
    pub fn system_roots() -> Result<ClientTls, TlsError> {
        let found = rustls_native_certs::load_native_certs();
        let mut roots = rustls::RootCertStore::empty();
        let (added, _ignored) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            let detail = match found.errors.first() {
                Some(e) => format!(" ({e})"),
                None => String::new(),
            };
            return Err(TlsError::NoRoots { detail });
        }
        Self::from_roots(roots)
    }

    /// Verifies servers against the CA certificates in the PEM file
    /// `ca_path` only (a private CA, or a self-signed server certificate).
    pub fn from_ca_file(ca_path: impl AsRef<Path>) -> Result<ClientTls, TlsError> {
        let ca_path = ca_path.as_ref();
        let pem = read_file("the CA file", ca_path)?;
        Self::from_ca_named(&pem, &ca_path.display().to_string())
    }

    /// [`from_ca_file`](Self::from_ca_file), from PEM held in memory.
    pub fn from_ca_pem(ca_pem: &[u8]) -> Result<ClientTls, TlsError> {
        Self::from_ca_named(ca_pem, "the CA PEM")
    }

    fn from_ca_named(pem: &[u8], name: &str) -> Result<ClientTls, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in certificates(pem, name)? {
            roots
                .add(cert)
                .map_err(|source| rejected(&format!("a certificate in {name}"), source))?;
        }
        Self::from_roots(roots)
    }

    fn from_roots(roots: rustls::RootCertStore) -> Result<ClientTls, TlsError> {
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|source| rejected("the protocol versions", source))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(ClientTls::from_config(Arc::new(config)))
    }

    /// Settings from a rustls configuration made elsewhere.
    pub fn from_config(config: Arc<rustls::ClientConfig>) -> ClientTls {
        ClientTls {
            config,
            server_name: None,
        }
    }

    /// Verifies the server's certificate against `name` (and sends it as
    /// SNI), whatever address is connected to.
    pub fn with_server_name(mut self, name: &str) -> Result<ClientTls, TlsError> {
        self.server_name = Some(server_name(name)?);
        Ok(self)
    }

    /// The rustls configuration.
    pub fn config(&self) -> &Arc<rustls::ClientConfig> {
        &self.config
    }

    /// The name to verify the server at `addr` against: the one set with
    /// [`with_server_name`](Self::with_server_name), else the host of
    /// `addr`, else its (first) IP address.
    pub fn server_name_for(&self, addr: &Address) -> Result<ServerName<'static>, TlsError> {
        if let Some(name) = &self.server_name {
            return Ok(name.clone());
        }
        match addr {
            Address::Host(host) => server_name(host_of(host)),
            Address::Socket(socket) => Ok(ServerName::IpAddress(socket.ip().into())),
            Address::List(list) => match list.first() {
                Some(socket) => Ok(ServerName::IpAddress(socket.ip().into())),
                None => Err(TlsError::BadServerName {
                    name: String::new(),
                }),
            },
        }
    }
}

/// The host part of `host:port`, `[v6]:port`, or a bare host.
fn host_of(addr: &str) -> &str {
    if let Some(rest) = addr.strip_prefix('[')
        && let Some((v6, _)) = rest.split_once(']')
    {
        return v6;
    }
    match addr.rsplit_once(':') {
        // A bare IPv6 address has more than one colon and no port.
        Some((host, _)) if !host.contains(':') => host,
        _ => addr,
    }
}

fn server_name(name: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(name.to_owned()).map_err(|_| TlsError::BadServerName {
        name: name.to_owned(),
    })
}

fn rejected(what: &str, source: rustls::Error) -> TlsError {
    TlsError::Rejected {
        what: what.to_owned(),
        source,
    }
}

fn read_file(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.display().to_string(),
        source,
    })
}

/// Every certificate in `pem`; at least one.
fn certificates(pem: &[u8], name: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_pem(name, e))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            source_name: name.to_owned(),
        });
    }
    Ok(certs)
}

/// The first private key in `pem`.
fn private_key(pem: &[u8], name: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoKey {
            source_name: name.to_owned(),
        },
        e => bad_pem(name, e),
    })
}

fn bad_pem(name: &str, e: rustls::pki_types::pem::Error) -> TlsError {
    TlsError::BadPem {
        source_name: name.to_owned(),
        detail: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for `localhost` and its key, in PEM.
    fn self_signed() -> (String, String) {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        (certified.cert.pem(), certified.signing_key.serialize_pem())
    }

    #[test]
    fn a_certificate_and_its_key_make_a_server_config() {
        let (cert, key) = self_signed();
        ServerTls::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
        ClientTls::from_ca_pem(cert.as_bytes()).unwrap();
    }

    #[test]
    fn a_key_of_another_certificate_is_named_as_such() {
        let (cert, _) = self_signed();
        let (_, other_key) = self_signed();
        let err = ServerTls::from_pem(cert.as_bytes(), other_key.as_bytes()).unwrap_err();
        assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "the private key in the key PEM does not belong to the certificate in the certificate PEM"
        );
    }

    #[test]
    fn files_swapped_missing_or_garbled_are_named() {
        let (cert, key) = self_signed();
        // Key and certificate given the wrong way round.
        let err = ServerTls::from_pem(key.as_bytes(), cert.as_bytes()).unwrap_err();
        assert!(matches!(err, TlsError::NoCertificate { .. }), "{err}");
        assert!(err.to_string().contains("holds no certificate"), "{err}");
        let err = ServerTls::from_pem(cert.as_bytes(), cert.as_bytes()).unwrap_err();
        assert!(matches!(err, TlsError::NoKey { .. }), "{err}");
        // A block cut short.
        let cut = &cert[..cert.len() - 30];
        let err = ServerTls::from_pem(cut.as_bytes(), key.as_bytes()).unwrap_err();
        assert!(matches!(err, TlsError::BadPem { .. }), "{err}");
        // No such file, named with what it was meant to hold.
        let err =
            ServerTls::from_pem_files("/nonexistent/cert.pem", "/nonexistent/key.pem").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot read the certificate file /nonexistent/cert.pem: "),
            "{err}"
        );
        let err = ClientTls::from_ca_pem(b"not pem at all").unwrap_err();
        assert!(matches!(err, TlsError::NoCertificate { .. }), "{err}");
    }

    #[test]
    fn the_server_name_comes_from_the_address_unless_set() {
        let (cert, _) = self_signed();
        let tls = ClientTls::from_ca_pem(cert.as_bytes()).unwrap();
        let name = |tls: &ClientTls, addr: Address| tls.server_name_for(&addr).unwrap();
        let dns = |s: &str| ServerName::try_from(s.to_owned()).unwrap();
        assert_eq!(
            name(&tls, Address::from("chat.example.com:7878")),
            dns("chat.example.com")
        );
        assert_eq!(name(&tls, Address::from("[::1]:7878")), dns("::1"));
        let socket: std::net::SocketAddr = "127.0.0.1:7878".parse().unwrap();
        assert_eq!(name(&tls, Address::from(socket)), dns("127.0.0.1"));
        let tls = tls.with_server_name("localhost").unwrap();
        assert_eq!(name(&tls, Address::from(socket)), dns("localhost"));
        let err = tls.with_server_name("bad name!").unwrap_err();
        assert!(matches!(err, TlsError::BadServerName { .. }), "{err}");
        assert_eq!(host_of("example.com"), "example.com");
        assert_eq!(host_of("example.com:1"), "example.com");
        assert_eq!(host_of("[fe80::1]:1"), "fe80::1");
        assert_eq!(host_of("fe80::1"), "fe80::1");
    }
}
