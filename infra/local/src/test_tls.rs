//! TLS for the loopback HTTPS receivers of the end-to-end tests and the benchmark (feature
//! `test-tls`): one throw-away CA per process, a server certificate it issued for `localhost`
//! and 127.0.0.1, and the accept loop every receiver runs.
//!
//! The CA's PEM is written to a temporary file that the service is given as `EXTRA_CA_CERT`, so
//! the service's HTTPS sender trusts the receivers exactly as it would a public one, with no
//! verification switched off. The receivers differ only in what they do with a connection.

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// The process's test CA and the receivers' server configuration.
#[derive(Debug)]
pub struct TestCa {
    pem_path: PathBuf,
    server_config: Arc<rustls::ServerConfig>,
}

static TEST_CA: OnceLock<TestCa> = OnceLock::new();

impl TestCa {
    /// The process's CA, generated on first use.
    ///
    /// # Panics
    /// When the certificates cannot be generated or the PEM file cannot be written.
    pub fn get() -> &'static TestCa {
        TEST_CA.get_or_init(|| generate().expect("generate the test CA"))
    }

    /// Path of the PEM file holding the CA certificate (pass it as `EXTRA_CA_CERT`).
    pub fn pem_path(&self) -> &Path {
        &self.pem_path
    }

    /// The server configuration of every receiver (HTTP/1.1 over TLS, certificate for
    /// `localhost` and 127.0.0.1).
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        self.server_config.clone()
    }
}

/// Accepts connections on `listener` until the returned task is aborted, completes each TLS
/// handshake with the test certificate, and hands the stream to `handle` on its own task
/// (failed handshakes are dropped).
pub fn serve_tls<F, Fut>(listener: TcpListener, handle: F) -> JoinHandle<()>
where
    F: Fn(TlsStream<TcpStream>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let acceptor = TlsAcceptor::from(TestCa::get().server_config());
    let handle = Arc::new(handle);
    tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            while connections.try_join_next().is_some() {}
            let (acceptor, handle) = (acceptor.clone(), handle.clone());
            connections.spawn(async move {
                let _ = stream.set_nodelay(true);
                let Ok(tls) = acceptor.accept(stream).await else { return };
                handle(tls).await;
            });
        }
    })
}

fn generate() -> anyhow::Result<TestCa> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};

    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "puck test CA");
    ca_params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca_cert = ca_params.self_signed(&ca_key)?;

    let leaf_key = KeyPair::generate()?;
    let mut leaf_params = CertificateParams::new(vec!["localhost".to_owned()])?;
    leaf_params.subject_alt_names.push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    leaf_params.distinguished_name.push(DnType::CommonName, "localhost");
    let leaf = leaf_params.signed_by(&leaf_key, &ca_cert, &ca_key)?;

    let pem_path = std::env::temp_dir().join(format!("puck-test-ca-{}.pem", std::process::id()));
    std::fs::write(&pem_path, ca_cert.pem())?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(leaf.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )?;
    server_config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TestCa { pem_path, server_config: Arc::new(server_config) })
}
