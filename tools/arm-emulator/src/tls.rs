//! The TLS listener's certificate: a generated CA with a leaf it signed (webpki and Go's
//! crypto/x509 refuse a self-signed leaf as its own trust anchor), or a PEM pair the user gives.
//! Azure's clients require https for their authority host, so the offline Entra ID needs it.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Names the generated leaf is valid for (rcgen makes IP SANs of the addresses).
const LEAF_NAMES: [&str; 3] = ["127.0.0.1", "::1", "localhost"];

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("no certificate in the PEM given")]
    NoCertificate,
    #[error("the PEM given is not a certificate chain: {0}")]
    BadCertificate(String),
    #[error("the PEM given is not a private key: {0}")]
    BadKey(String),
    #[error("rustls refuses the certificate and key: {0}")]
    Rejected(#[from] rustls::Error),
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// The additional https listener: where it listens and what it serves.
#[derive(Clone)]
pub struct TlsConfig {
    /// Address of the TLS listener (`127.0.0.1:0` unless set).
    pub listen: SocketAddr,
    /// The served chain, leaf first.
    chain_pem: String,
    key_pem: String,
    /// What a client must trust: the generated CA, or the given certificate.
    ca_pem: String,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("listen", &self.listen)
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// A fresh CA and a leaf it signed for 127.0.0.1, ::1 and localhost, on `127.0.0.1:0`.
    ///
    /// # Panics
    /// If rcgen cannot generate a key (it only fails on a broken RNG).
    pub fn generated() -> TlsConfig {
        Self::try_generated().expect("rcgen generates a CA and a leaf")
    }

    fn try_generated() -> Result<TlsConfig, TlsError> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "ARM emulator CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
        let leaf_key = KeyPair::generate()?;
        let mut leaf_params = CertificateParams::new(LEAF_NAMES.map(str::to_string).to_vec())?;
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "ARM emulator");
        let leaf = leaf_params.signed_by(&leaf_key, &ca)?;
        Ok(TlsConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            chain_pem: format!("{}{}", leaf.pem(), ca.pem()),
            key_pem: leaf_key.serialize_pem(),
            ca_pem: ca.pem(),
        })
    }

    /// A given chain (leaf first) and its private key, both PEM; clients trust the chain as given.
    pub fn from_pem(chain_pem: &str, key_pem: &str) -> Result<TlsConfig, TlsError> {
        let config = TlsConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            chain_pem: chain_pem.to_string(),
            key_pem: key_pem.to_string(),
            ca_pem: chain_pem.to_string(),
        };
        config.server_config()?;
        Ok(config)
    }

    /// [`TlsConfig::from_pem`] of two files.
    pub fn from_files(cert: &Path, key: &Path) -> Result<TlsConfig, TlsError> {
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|source| TlsError::Read {
                path: path.display().to_string(),
                source,
            })
        };
        Self::from_pem(&read(cert)?, &read(key)?)
    }

    /// The same certificate on another address.
    pub fn with_listen(self, listen: SocketAddr) -> TlsConfig {
        TlsConfig { listen, ..self }
    }

    /// The PEM a client adds to its roots.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// rustls' server side: ring, TLS 1.2 and 1.3, ALPN http/1.1 only (the server is HTTP/1.1;
    /// a client offering h2 as well settles on http/1.1, as Go's does).
    pub(crate) fn server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let chain = CertificateDer::pem_slice_iter(self.chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| TlsError::BadCertificate(error.to_string()))?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificate);
        }
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|error| TlsError::BadKey(error.to_string()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_pair_is_served_and_a_given_one_is_trusted_as_given() {
        let generated = TlsConfig::generated();
        assert!(generated.server_config().is_ok());
        assert!(
            generated
                .ca_pem()
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
        assert_ne!(generated.ca_pem(), generated.chain_pem);
        let given = TlsConfig::from_pem(&generated.chain_pem, &generated.key_pem).unwrap();
        assert_eq!(given.ca_pem(), generated.chain_pem);
    }

    #[test]
    fn a_pair_that_is_not_pem_is_refused() {
        let generated = TlsConfig::generated();
        assert!(matches!(
            TlsConfig::from_pem("not a certificate", &generated.key_pem),
            Err(TlsError::NoCertificate)
        ));
        assert!(matches!(
            TlsConfig::from_pem(&generated.chain_pem, "no key"),
            Err(TlsError::BadKey(_))
        ));
    }
}
