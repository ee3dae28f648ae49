//! The key-encryption key that wraps ticket keys before they go to Redis.

use core::fmt;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::{Zeroize, Zeroizing};

/// The prefix of a wrapped value: format tag and version.
const WRAP_TAG: &[u8; 4] = b"TRW1";

/// Why a key-encryption key could not be had, or a wrapped value not opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KekError {
    /// The file could not be read.
    #[error("key-encryption key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The file can be read by its group or others.
    #[error("key-encryption key file {path} is readable by others (mode {mode:o}); chmod 600 it")]
    Permissions {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// The variable is not set or not Unicode.
    #[error("key-encryption key variable {0} is not set")]
    MissingVar(String),
    /// Neither 32 raw bytes nor 64 hex digits.
    #[error("key-encryption key from {0}: expected 32 bytes or 64 hex digits")]
    Format(String),
    /// A wrapped value did not open: another key-encryption key, or tampered.
    #[error("wrapped key does not open (another key-encryption key, or tampered)")]
    Unwrap,
    /// The system random generator failed.
    #[error("the system random generator failed")]
    Random,
}

/// A 32-byte AES-256-GCM key-encryption key (KEK). Zeroised on drop; `Debug` never shows it.
///
/// Every node of a fleet is given the same KEK; Redis only ever sees ticket keys sealed under
/// it, bound to the Redis key name they are stored under.
pub struct Kek(Zeroizing<[u8; 32]>);

impl Kek {
    /// A KEK from its bytes.
    pub fn from_bytes(mut bytes: [u8; 32]) -> Self {
        let kek = Self(Zeroizing::new(bytes));
        bytes.zeroize();
        kek
    }

    /// A random KEK (for tests, or to print once with [`Kek::generate_hex`]).
    pub fn generate() -> Result<Self, KekError> {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| KekError::Random)?;
        Ok(Self::from_bytes(bytes))
    }

    /// 64 random hex digits, the text form [`Kek::from_file`] and [`Kek::from_env`] read.
    pub fn generate_hex() -> Result<Zeroizing<String>, KekError> {
        let kek = Self::generate()?;
        let mut out = Zeroizing::new(String::with_capacity(64));
        for b in kek.0.iter() {
            out.push(hex_digit(b >> 4));
            out.push(hex_digit(b & 0xf));
        }
        Ok(out)
    }

    /// Reads a KEK from a file holding 32 raw bytes or 64 hex digits (surrounding whitespace
    /// ignored). The file must not be readable or writable by group or others.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, KekError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let io = |source| KekError::Io {
            path: name.clone(),
            source,
        };
        let mode = fs::metadata(path).map_err(io)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(KekError::Permissions {
                path: name,
                mode: mode & 0o7777,
            });
        }
        let bytes = Zeroizing::new(fs::read(path).map_err(io)?);
        Self::parse(&bytes).ok_or(KekError::Format(name))
    }

    /// Reads a KEK from the environment variable `var` (64 hex digits).
    pub fn from_env(var: &str) -> Result<Self, KekError> {
        let value =
            Zeroizing::new(std::env::var(var).map_err(|_| KekError::MissingVar(var.to_owned()))?);
        Self::parse(value.as_bytes()).ok_or_else(|| KekError::Format(format!("${var}")))
    }

    fn parse(bytes: &[u8]) -> Option<Self> {
        let mut key = [0u8; 32];
        if bytes.len() == 32 {
            key.copy_from_slice(bytes);
            return Some(Self::from_bytes(key));
        }
        let text = bytes.trim_ascii();
        if text.len() != 64 {
            return None;
        }
        for (i, pair) in text.chunks_exact(2).enumerate() {
            match (hex_value(pair[0]), hex_value(pair[1])) {
                (Some(hi), Some(lo)) => key[i] = (hi << 4) | lo,
                _ => {
                    key.zeroize();
                    return None;
                }
            }
        }
        Some(Self::from_bytes(key))
    }

    fn aead(&self) -> Result<LessSafeKey, KekError> {
        UnboundKey::new(&AES_256_GCM, self.0.as_ref())
            .map(LessSafeKey::new)
            .map_err(|_| KekError::Unwrap)
    }

    /// Seals `plaintext`, bound to `label` (the Redis key it is stored under).
    pub(crate) fn wrap(&self, label: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, KekError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| KekError::Random)?;
        let mut sealed = Zeroizing::new(plaintext.to_vec());
        self.aead()?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(label),
                &mut *sealed,
            )
            .map_err(|_| KekError::Unwrap)?;
        let mut out = Vec::with_capacity(WRAP_TAG.len() + NONCE_LEN + sealed.len());
        out.extend_from_slice(WRAP_TAG);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens a value sealed by [`wrap`](Self::wrap) under the same `label`.
    pub(crate) fn unwrap(
        &self,
        label: &[u8],
        wrapped: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KekError> {
        let rest = wrapped.strip_prefix(WRAP_TAG).ok_or(KekError::Unwrap)?;
        if rest.len() < NONCE_LEN {
            return Err(KekError::Unwrap);
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| KekError::Unwrap)?;
        let mut buf = Zeroizing::new(sealed.to_vec());
        let len = self
            .aead()?
            .open_in_place(nonce, Aad::from(label), &mut buf)
            .map_err(|_| KekError::Unwrap)?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Kek(<redacted>)")
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn hex_digit(v: u8) -> char {
    char::from(b"0123456789abcdef"[usize::from(v & 0xf)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_roundtrips_and_binds_the_label() {
        let kek = Kek::from_bytes([7; 32]);
        let wrapped = kek.wrap(b"a", b"secret bytes").expect("wrap");
        assert!(!wrapped.windows(12).any(|w| w == b"secret bytes"));
        assert_eq!(
            kek.unwrap(b"a", &wrapped).expect("unwrap").as_slice(),
            b"secret bytes"
        );
        assert!(kek.unwrap(b"b", &wrapped).is_err());
        assert!(Kek::from_bytes([8; 32]).unwrap(b"a", &wrapped).is_err());
        assert!(kek.unwrap(b"a", &wrapped[..10]).is_err());
    }

    #[test]
    fn parses_hex_and_raw_and_refuses_others() {
        let hex = Kek::generate_hex().expect("hex");
        assert_eq!(hex.len(), 64);
        assert!(Kek::parse(format!("{}\n", hex.as_str()).as_bytes()).is_some());
        assert!(Kek::parse(&[1; 32]).is_some());
        assert!(Kek::parse(b"xyz").is_none());
        assert!(Kek::parse(&[b'g'; 64]).is_none());
        assert_eq!(
            format!("{:?}", Kek::from_bytes([0xab; 32])),
            "Kek(<redacted>)"
        );
    }

    #[test]
    fn refuses_a_file_others_can_read() {
        let dir = std::env::temp_dir().join(format!("tlsresume-kek-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("kek");
        fs::write(&path, Kek::generate_hex().expect("hex").as_bytes()).expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = Kek::from_file(&path).expect_err("world-readable");
        assert!(err.to_string().contains("readable by others"), "{err}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        Kek::from_file(&path).expect("private file");
        let _ = fs::remove_dir_all(&dir);
    }
}
