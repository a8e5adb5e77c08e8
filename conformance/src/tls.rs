//! Certificates for running the suite over TLS, made when first needed.
//!
//! [`test_ca`] is a certificate authority made with rcgen for this process,
//! with a server certificate it signed for `localhost` and `127.0.0.1`:
//! servers under test serve that certificate, and clients trust only that
//! CA, so every TLS case verifies a real chain. [`other_ca`] is a second,
//! unrelated one, for clients that must fail verification. Nothing is
//! written to disk except where a test asks for files
//! ([`TestCa::write_pem_files`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use transport_common::tls::{ClientTls, ServerTls};

/// A certificate authority and a server certificate it signed.
pub struct TestCa {
    /// The CA's certificate, PEM.
    pub ca_pem: String,
    /// The server's certificate (signed by the CA), PEM.
    pub cert_pem: String,
    /// The server's private key, PEM.
    pub key_pem: String,
    server: ServerTls,
    client: ClientTls,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl TestCa {
    /// A new CA named `name`, and a certificate it signed for `localhost`
    /// and `127.0.0.1`.
    pub fn new(name: &str) -> TestCa {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, name);
        let ca_key = KeyPair::generate().expect("CA key");
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);
        let server_params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("server params");
        let server_key = KeyPair::generate().expect("server key");
        let server_cert = server_params
            .signed_by(&server_key, &issuer)
            .expect("server certificate");
        let (ca_pem, cert_pem, key_pem) =
            (ca_cert.pem(), server_cert.pem(), server_key.serialize_pem());
        let server =
            ServerTls::from_pem(cert_pem.as_bytes(), key_pem.as_bytes()).expect("server settings");
        let client = ClientTls::from_ca_pem(ca_pem.as_bytes()).expect("client settings");
        TestCa {
            ca_pem,
            cert_pem,
            key_pem,
            server,
            client,
        }
    }

    /// The server's settings: the certificate and its key.
    pub fn server(&self) -> &ServerTls {
        &self.server
    }

    /// A client's settings: trust this CA only.
    pub fn client(&self) -> &ClientTls {
        &self.client
    }

    /// The rustls configuration of a raw client that trusts this CA.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        self.client.config().clone()
    }

    /// Writes `ca.pem`, `cert.pem` and `key.pem` into `dir`; returns their
    /// paths in that order.
    pub fn write_pem_files(&self, dir: &Path) -> [PathBuf; 3] {
        let files = [
            (dir.join("ca.pem"), &self.ca_pem),
            (dir.join("cert.pem"), &self.cert_pem),
            (dir.join("key.pem"), &self.key_pem),
        ];
        for (path, pem) in &files {
            std::fs::write(path, pem).expect("write a PEM file");
        }
        files.map(|(path, _)| path)
    }
}

/// The CA every TLS case of this process uses.
pub fn test_ca() -> &'static TestCa {
    static CA: OnceLock<TestCa> = OnceLock::new();
    CA.get_or_init(|| TestCa::new("chat conformance CA"))
}

/// An unrelated CA: a client trusting it must refuse the servers of
/// [`test_ca`].
pub fn other_ca() -> &'static TestCa {
    static CA: OnceLock<TestCa> = OnceLock::new();
    CA.get_or_init(|| TestCa::new("some other CA"))
}

/// How a test client connects: [`Plain`], [`Tls`], or [`Untrusted`].
pub trait Wire: 'static {
    /// With TLS.
    const TLS: bool;

    /// The CA a TLS client trusts.
    fn ca() -> &'static TestCa {
        test_ca()
    }
}

/// Plain TCP.
#[derive(Debug)]
pub struct Plain;

impl Wire for Plain {
    const TLS: bool = false;
}

/// TLS, trusting the test CA only.
#[derive(Debug)]
pub struct Tls;

impl Wire for Tls {
    const TLS: bool = true;
}

/// TLS, trusting [`other_ca`] only: it must refuse every server under
/// test.
#[derive(Debug)]
pub struct Untrusted;

impl Wire for Untrusted {
    const TLS: bool = true;

    fn ca() -> &'static TestCa {
        other_ca()
    }
}
