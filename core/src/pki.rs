//! Certificates and keys: loading them from PEM files or DER, with errors that name the file.

use core::fmt;
use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use zeroize::Zeroizing;

use crate::error::Error;

/// The encoding of a private key's DER.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyFormat {
    /// PKCS#8 (`BEGIN PRIVATE KEY`).
    Pkcs8,
    /// PKCS#1 RSA (`BEGIN RSA PRIVATE KEY`).
    Pkcs1,
    /// SEC1 EC (`BEGIN EC PRIVATE KEY`).
    Sec1,
}

/// A certificate chain and its private key.
///
/// The key bytes are zeroised on drop and never printed.
#[derive(Clone)]
pub struct Identity {
    chain: Vec<Vec<u8>>,
    key: Zeroizing<Vec<u8>>,
    format: KeyFormat,
}

impl Identity {
    /// From DER: the chain leaf first, and the key in the given format.
    pub fn from_der(chain: Vec<Vec<u8>>, key: Vec<u8>, format: KeyFormat) -> Result<Self, Error> {
        if chain.is_empty() {
            return Err(Error::Config("the certificate chain is empty".into()));
        }
        if key.is_empty() {
            return Err(Error::Config("the private key is empty".into()));
        }
        Ok(Self {
            chain,
            key: Zeroizing::new(key),
            format,
        })
    }

    /// From PEM text: every certificate in `certs_pem`, and the first key in `key_pem`.
    pub fn from_pem(certs_pem: &[u8], key_pem: &[u8]) -> Result<Self, Error> {
        Self::from_pem_named(certs_pem, "certificate PEM", key_pem, "key PEM")
    }

    /// From PEM files.
    pub fn from_pem_files(cert_path: &Path, key_path: &Path) -> Result<Self, Error> {
        let certs = read_file(cert_path)?;
        let key = Zeroizing::new(read_file(key_path)?);
        Self::from_pem_named(
            &certs,
            &cert_path.display().to_string(),
            &key,
            &key_path.display().to_string(),
        )
    }

    fn from_pem_named(
        certs_pem: &[u8],
        cert_name: &str,
        key_pem: &[u8],
        key_name: &str,
    ) -> Result<Self, Error> {
        let chain = certificates_from_pem(certs_pem, cert_name)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| Error::File {
            path: key_name.to_owned(),
            why: format!("no usable private key: {e}"),
        })?;
        let format = match &key {
            PrivateKeyDer::Pkcs1(_) => KeyFormat::Pkcs1,
            PrivateKeyDer::Sec1(_) => KeyFormat::Sec1,
            _ => KeyFormat::Pkcs8,
        };
        Self::from_der(chain, key.secret_der().to_vec(), format)
    }

    /// The chain, leaf first, DER.
    pub fn chain(&self) -> &[Vec<u8>] {
        &self.chain
    }

    /// The private key DER.
    pub fn key_der(&self) -> &[u8] {
        &self.key
    }

    /// The private key's format.
    pub fn key_format(&self) -> KeyFormat {
        self.format
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("chain_len", &self.chain.len())
            .field("key", &format_args!("<{:?} redacted>", self.format))
            .finish()
    }
}

/// Every certificate in a PEM text; an error naming `source` when there is none.
pub fn certificates_from_pem(pem: &[u8], source: &str) -> Result<Vec<Vec<u8>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::File {
            path: source.to_owned(),
            why: format!("bad PEM: {e}"),
        })?;
    if certs.is_empty() {
        return Err(Error::File {
            path: source.to_owned(),
            why: "no certificate found".into(),
        });
    }
    Ok(certs)
}

/// Every certificate in a PEM file.
pub fn certificates_from_pem_file(path: &Path) -> Result<Vec<Vec<u8>>, Error> {
    let pem = read_file(path)?;
    certificates_from_pem(&pem, &path.display().to_string())
}

/// Reads a whole file, with an error naming it.
pub fn read_file(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::File {
        path: path.display().to_string(),
        why: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_garbage_files_give_errors_naming_them() {
        let err = Identity::from_pem_files(
            Path::new("/nonexistent/cert.pem"),
            Path::new("/nonexistent/key.pem"),
        )
        .expect_err("missing");
        assert!(err.to_string().contains("/nonexistent/cert.pem"), "{err}");
        let err = Identity::from_pem(b"garbage", b"garbage").expect_err("garbage");
        assert!(err.to_string().contains("certificate PEM"), "{err}");
    }

    #[test]
    fn debug_hides_the_key() {
        let id = Identity::from_der(vec![vec![1]], vec![0xAB; 8], KeyFormat::Pkcs8).expect("id");
        let text = format!("{id:?}");
        assert!(!text.contains("171") && text.contains("redacted"), "{text}");
    }
}
