//! The harness's local certificate authority.
//!
//! Each `harness up` creates a fresh CA whose private key never leaves the
//! process: it signs the server certificates of the IAM gateway (HTTPS) and
//! of the SMTP capture, and its certificate (public, PEM) is what every client
//! the harness configures is told to trust: the harness's own SDK clients, the
//! lambdas (`SSL_CERT_FILE`), and a user's AWS CLI (`AWS_CA_BUNDLE`, printed
//! by `harness env`).
//!
//! ```
//! let ca = local_ca::LocalCa::generate().expect("a CA");
//! let server = ca.server_config(&["127.0.0.1", "localhost"]).expect("a server config");
//! assert!(ca.certificate_pem().starts_with("-----BEGIN CERTIFICATE-----"));
//! # drop(server);
//! ```
#![warn(missing_docs)]

use std::{fmt, sync::Arc};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::{
    ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
};

/// Why a certificate could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// The certificate generator refused.
    #[error("cannot create a certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// rustls refused the generated certificate or key.
    #[error("cannot build the TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// A CA made for one run: its key stays in memory, its certificate is public.
pub struct LocalCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl fmt::Debug for LocalCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        f.debug_struct("LocalCa").finish_non_exhaustive()
    }
}

impl LocalCa {
    /// A new CA with a fresh P-256 key, valid for rcgen's default period.
    pub fn generate() -> Result<Self, CaError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params
            .distinguished_name
            .push(DnType::CommonName, "servicenow-alert harness local CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        Ok(Self { issuer })
    }

    /// The CA's certificate, PEM-encoded: what clients trust.
    pub fn certificate_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A rustls server configuration presenting a new certificate for `names`
    /// (DNS names or IP addresses), signed by this CA, with HTTP/1.1 as ALPN.
    pub fn server_config(&self, names: &[&str]) -> Result<Arc<ServerConfig>, CaError> {
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())?;
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("harness"),
        );
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let key = KeyPair::generate()?;
        let leaf = params.signed_by(&key, &self.issuer)?;
        let chain = vec![leaf.der().clone(), self.issuer.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// The CA's certificate in DER, for a rustls client's root store.
    pub fn certificate_der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls::{ClientConfig, RootCertStore, pki_types::ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::{TlsAcceptor, TlsConnector};

    use super::*;

    fn client(trusted: &LocalCa) -> TlsConnector {
        let mut roots = RootCertStore::empty();
        roots.add(trusted.certificate_der()).expect("a root");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        TlsConnector::from(Arc::new(config))
    }

    /// Serves one TLS connection with `ca`'s certificate for `names`; a client
    /// trusting `trusted` connects to `server_name` and exchanges a byte.
    async fn handshake(
        ca: &LocalCa,
        names: &[&str],
        trusted: &LocalCa,
        server_name: &'static str,
    ) -> std::io::Result<u8> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(ca.server_config(names).expect("config"));
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await?;
            let mut tls = acceptor.accept(stream).await?;
            tls.write_all(&[42]).await?;
            tls.flush().await?;
            std::io::Result::Ok(())
        });
        let stream = tokio::net::TcpStream::connect(addr).await?;
        let name = ServerName::try_from(server_name).expect("a name");
        let mut tls = client(trusted).connect(name, stream).await?;
        let mut byte = [0u8; 1];
        tls.read_exact(&mut byte).await?;
        let _ = server.await;
        Ok(byte[0])
    }

    #[tokio::test]
    async fn a_client_trusting_the_ca_accepts_its_server_certificates() {
        let ca = LocalCa::generate().expect("a CA");
        let got = handshake(&ca, &["127.0.0.1", "localhost"], &ca, "127.0.0.1").await;
        assert_eq!(got.expect("handshake by IP"), 42);
        let got = handshake(&ca, &["127.0.0.1", "localhost"], &ca, "localhost").await;
        assert_eq!(got.expect("handshake by name"), 42);
    }

    #[tokio::test]
    async fn another_ca_or_another_name_is_refused() {
        let ca = LocalCa::generate().expect("a CA");
        let stranger = LocalCa::generate().expect("another CA");
        let err = handshake(&ca, &["127.0.0.1"], &stranger, "127.0.0.1")
            .await
            .expect_err("an untrusted issuer");
        // Both CAs bear the same name, so webpki tries the stranger's key on the signature.
        assert!(
            err.to_string().contains("invalid peer certificate"),
            "{err}"
        );
        let err = handshake(&ca, &["127.0.0.1"], &ca, "localhost")
            .await
            .expect_err("a name the certificate lacks");
        assert!(err.to_string().contains("not valid for name"), "{err}");
    }

    #[test]
    fn debug_never_shows_the_key() {
        let ca = LocalCa::generate().expect("a CA");
        assert_eq!(format!("{ca:?}"), "LocalCa { .. }");
    }
}
