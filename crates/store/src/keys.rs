//! Ed25519 signing keys, shared by evidence bundles and the audit log's signed head:
//! generation (private key PKCS#8 PEM with permissions 0600, public key SPKI PEM beside
//! it, so `openssl` can verify a signature), and loading.

use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use rand::Rng;

/// Errors of reading and writing keys, each naming the file.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The public key file written beside a private key.
pub fn public_path(private: &Path) -> PathBuf {
    let mut p = private.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

/// Creates `path` for writing, readable by its owner only (0600 on Unix); refuses to
/// overwrite.
pub fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Writes a new key pair: `path` (private, 0600) and `path.pub`. Refuses to overwrite.
pub fn generate(path: &Path) -> Result<VerifyingKey, KeyError> {
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    let key = SigningKey::from_bytes(&seed);
    let private = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| KeyError::Invalid(format!("cannot encode the private key: {e}")))?;
    let public = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| KeyError::Invalid(format!("cannot encode the public key: {e}")))?;
    let mut f = create_private(path).map_err(io(path))?;
    f.write_all(private.as_bytes()).map_err(io(path))?;
    let pub_path = public_path(path);
    std::fs::write(&pub_path, public.as_bytes()).map_err(io(&pub_path))?;
    Ok(key.verifying_key())
}

pub fn load_signing(path: &Path) -> Result<SigningKey, KeyError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    SigningKey::from_pkcs8_pem(&text).map_err(|e| {
        KeyError::Invalid(format!(
            "{}: not an Ed25519 PKCS#8 private key: {e}",
            path.display()
        ))
    })
}

pub fn parse_public(pem: &str) -> Result<VerifyingKey, KeyError> {
    VerifyingKey::from_public_key_pem(pem)
        .map_err(|e| KeyError::Invalid(format!("not an Ed25519 public key (SPKI PEM): {e}")))
}

pub fn load_public(path: &Path) -> Result<VerifyingKey, KeyError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    parse_public(&text).map_err(|e| KeyError::Invalid(format!("{}: {e}", path.display())))
}

pub fn public_pem(key: &VerifyingKey) -> Result<String, KeyError> {
    key.to_public_key_pem(LineEnding::LF)
        .map_err(|e| KeyError::Invalid(format!("cannot encode the public key: {e}")))
}

pub use clearwatch_model::audit::key_fingerprint as fingerprint;

/// The signing key at `path`, creating a key pair there on first use.
pub fn load_or_create(path: &Path) -> Result<SigningKey, KeyError> {
    if !path.exists() {
        generate(path)?;
    }
    load_signing(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, Verifier};

    #[test]
    fn generated_keys_round_trip_and_sign() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let public = generate(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let key = load_signing(&path).unwrap();
        assert_eq!(key.verifying_key(), public);
        assert_eq!(load_public(&public_path(&path)).unwrap(), public);
        let sig = key.sign(b"manifest");
        assert!(public.verify(b"manifest", &sig).is_ok());
        assert!(
            generate(&path).is_err(),
            "an existing key is never overwritten"
        );
    }
}
