//! Serve across a network: TLS on the listeners and the outputs (rustls, with ring as its one
//! crypto provider), client certificates, the bearer token HTTP and OTLP senders must present,
//! Forward's shared key, and the headers outputs send. Every secret is read from a file once, at
//! start; a file that cannot be used stops serve with a message saying which and why.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

#[derive(Args, Clone, Debug, Default)]
pub struct SecurityArgs {
    /// TLS on every input (TCP, HTTP, Forward, OTLP): the certificate chain they present (PEM).
    #[arg(long, value_name = "PEM", env = "TURBOLOG_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "PEM", env = "TURBOLOG_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Inputs take only senders with a client certificate signed by these CAs (PEM; needs --tls-cert).
    #[arg(long, value_name = "PEM", env = "TURBOLOG_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Outputs over TLS (tcp+tls://, forward+tls://, otlp-https://, otlp-grpcs://) verify the downstream's
    /// certificate against these CAs (PEM) instead of the public web CAs.
    #[arg(long, value_name = "PEM", env = "TURBOLOG_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// Outputs over TLS skip verifying the downstream's certificate (anyone on the path can read
    /// and change the records: for tests only); inputs may listen on a non-loopback address
    /// without TLS or credentials. Said on stderr.
    #[arg(long, env = "TURBOLOG_INSECURE")]
    pub insecure: bool,
    /// HTTP and OTLP inputs take only requests with `Authorization: Bearer <the token in this
    /// file>`; others get 401.
    #[arg(long, value_name = "FILE", env = "TURBOLOG_AUTH_TOKEN_FILE")]
    pub auth_token_file: Option<PathBuf>,
    /// The Forward input takes only senders that prove this shared key (Fluent Bit's and
    /// Fluentd's `Shared_Key`: the HELO/PING/PONG handshake).
    #[arg(long, value_name = "FILE", env = "TURBOLOG_SHARED_KEY_FILE")]
    pub shared_key_file: Option<PathBuf>,
    /// A header sent with every OTLP/HTTP request of the output, e.g. "Authorization: Bearer
    /// TOKEN" (repeatable).
    #[arg(long = "to-header", value_name = "NAME: VALUE")]
    pub to_headers: Vec<String>,
    /// The output sends `Authorization: Bearer <the token in this file>` (OTLP/HTTP).
    #[arg(long, value_name = "FILE", env = "TURBOLOG_TO_TOKEN_FILE")]
    pub to_token_file: Option<PathBuf>,
    /// A Forward output proves this shared key to its receiver (Fluent Bit's and Fluentd's
    /// `shared_key` on their `forward` input).
    #[arg(long, value_name = "FILE", env = "TURBOLOG_TO_SHARED_KEY_FILE")]
    pub to_shared_key_file: Option<PathBuf>,
}

/// What the listeners require, ready to use.
#[derive(Clone, Default)]
pub struct Listening {
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub token: Option<Arc<Secret>>,
    pub shared_key: Option<Arc<Secret>>,
}

/// What the outputs present and verify, ready to use.
#[derive(Clone)]
pub struct Sending {
    pub tls: Arc<ClientConfig>,
    pub headers: Vec<(String, String)>,
    pub shared_key: Option<Arc<Secret>>,
}

/// A secret from a file: compared in constant time, never printed.
pub struct Secret(Vec<u8>);

impl Secret {
    fn read(path: &Path, what: &str) -> Result<Secret, String> {
        let raw = std::fs::read(path).map_err(|e| format!("cannot read {what} from {}: {e}", path.display()))?;
        let s = raw.trim_ascii();
        if s.is_empty() {
            return Err(format!("{} is empty: write the {what} into it", path.display()));
        }
        Ok(Secret(s.to_vec()))
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// Equal to `other`, in time that depends only on the lengths.
    pub fn matches(&self, other: &[u8]) -> bool {
        self.0.len() == other.len() && self.0.iter().zip(other).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certificates(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let bad = |e: &dyn std::fmt::Display| format!("{what} {}: {e}: give a PEM file with BEGIN CERTIFICATE blocks", path.display());
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| bad(&e))?.collect::<Result<Vec<_>, _>>().map_err(|e| bad(&e))?;
    if certs.is_empty() {
        return Err(bad(&"no certificate in it"));
    }
    Ok(certs)
}

fn roots(path: &Path, what: &str) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    for c in certificates(path, what)? {
        store.add(c).map_err(|e| format!("{what} {}: a certificate in it is not a CA rustls can use: {e}", path.display()))?;
    }
    Ok(store)
}

impl SecurityArgs {
    /// The listeners' TLS and credentials. `alpn`: the application protocols offered.
    pub fn listening(&self, alpn: &[&[u8]]) -> Result<Listening, String> {
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                let chain = certificates(cert, "--tls-cert")?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("--tls-key {}: {e}: give the certificate's private key in PEM", key.display()))?;
                let builder = ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions().map_err(|e| format!("TLS: {e}"))?;
                let builder = match &self.tls_client_ca {
                    Some(ca) => {
                        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca, "--tls-client-ca")?), provider())
                            .build()
                            .map_err(|e| format!("--tls-client-ca {}: {e}", ca.display()))?;
                        builder.with_client_cert_verifier(verifier)
                    }
                    None => builder.with_no_client_auth(),
                };
                let mut config = builder.with_single_cert(chain, key).map_err(|e| format!("--tls-cert and --tls-key do not make a usable pair: {e}"))?;
                config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
                Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
            }
            _ => None,
        };
        let token = self.auth_token_file.as_deref().map(|p| Secret::read(p, "--auth-token-file token").map(Arc::new)).transpose()?;
        let shared_key = self.shared_key_file.as_deref().map(|p| Secret::read(p, "--shared-key-file key").map(Arc::new)).transpose()?;
        Ok(Listening { tls, token, shared_key })
    }

    /// The outputs' TLS client and request headers.
    pub fn sending(&self) -> Result<Sending, String> {
        let builder = ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions().map_err(|e| format!("TLS: {e}"))?;
        let config = if self.insecure {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerification(provider()))).with_no_client_auth()
        } else {
            let store = match &self.tls_ca {
                Some(ca) => roots(ca, "--tls-ca")?,
                None => RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() },
            };
            builder.with_root_certificates(store).with_no_client_auth()
        };
        let mut headers = Vec::new();
        for h in &self.to_headers {
            let (name, value) = h.split_once(':').ok_or_else(|| format!("--to-header `{h}` is not NAME: VALUE"))?;
            let (name, value) = (name.trim(), value.trim());
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)) || value.bytes().any(|b| b == b'\r' || b == b'\n') {
                return Err(format!("--to-header `{name}` is not a header name and value on one line"));
            }
            headers.push((name.to_string(), value.to_string()));
        }
        if let Some(p) = &self.to_token_file {
            let token = Secret::read(p, "--to-token-file token")?;
            let token = String::from_utf8(token.0).map_err(|_| format!("--to-token-file {}: the token is not text", p.display()))?;
            headers.push(("Authorization".into(), format!("Bearer {token}")));
        }
        let shared_key = self.to_shared_key_file.as_deref().map(|p| Secret::read(p, "--to-shared-key-file key").map(Arc::new)).transpose()?;
        Ok(Sending { tls: Arc::new(config), headers, shared_key })
    }
}

/// `--insecure`: any certificate is taken (its signatures are still checked, so the handshake
/// itself is sound), for tests against self-signed downstreams.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(&self, _: &CertificateDer<'_>, _: &[CertificateDer<'_>], _: &ServerName<'_>, _: &[u8], _: UnixTime) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A bearer token check for an HTTP request's `Authorization` header.
pub fn bearer_ok(token: &Secret, header: Option<&[u8]>) -> bool {
    let Some(h) = header else { return false };
    let Some(rest) = h.get(..7).filter(|p| p.eq_ignore_ascii_case(b"bearer ")).map(|_| &h[7..]) else { return false };
    token.matches(rest.trim_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_match_exactly() {
        let t = Secret(b"s3cret".to_vec());
        assert!(bearer_ok(&t, Some(b"Bearer s3cret")));
        assert!(bearer_ok(&t, Some(b"bearer s3cret ")));
        assert!(!bearer_ok(&t, Some(b"Bearer s3cre")));
        assert!(!bearer_ok(&t, Some(b"Bearer s3cretX")));
        assert!(!bearer_ok(&t, Some(b"Basic s3cret")));
        assert!(!bearer_ok(&t, Some(b"Bearer")));
        assert!(!bearer_ok(&t, None));
    }

    #[test]
    fn bad_files_say_which_and_why() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let a = SecurityArgs { auth_token_file: Some(empty), ..Default::default() };
        assert!(a.listening(&[]).err().unwrap().contains("is empty"));
        let not_pem = dir.path().join("cert.pem");
        std::fs::write(&not_pem, "hello").unwrap();
        let a = SecurityArgs { tls_cert: Some(not_pem.clone()), tls_key: Some(not_pem), ..Default::default() };
        assert!(a.listening(&[]).err().unwrap().contains("--tls-cert"));
        let a = SecurityArgs { to_headers: vec!["Authorization Bearer x".into()], ..Default::default() };
        assert!(a.sending().err().unwrap().contains("NAME: VALUE"));
    }
}
