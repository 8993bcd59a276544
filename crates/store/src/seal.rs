//! The audit log's files outside the database, all named after the audit key file `K`:
//! `K` itself (32 random bytes, 0600, keying every entry's HMAC), `K.ed25519` and
//! `K.ed25519.pub` (the Ed25519 pair that signs the head, made by [`crate::keys`]), `K.head`
//! (the signed head, rewritten atomically after every append) and `K.checkpoints/` (the
//! server's scheduled checkpoints). For `sqlite:PATH`, `K` is `PATH.audit-key`; for
//! PostgreSQL it is `--audit-key` / `CLEARWATCH_AUDIT_KEY`, else [`DEFAULT_PG_AUDIT_KEY`] in
//! the working directory. An in-memory database keeps a key in memory and no files.

use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};
use rand::Rng;

use crate::{StoreError, keys};
use clearwatch_model::audit::{AUDIT_KEY_LEN, AuditKey, HeadState, SignedHead};
use clearwatch_model::case::AuditEntry;

/// The audit key of a PostgreSQL store when none is named.
pub const DEFAULT_PG_AUDIT_KEY: &str = "clearwatch.audit-key";

/// The key file of the SQLite database at `url`, `None` for an in-memory one.
pub fn sqlite_key_path(url: &str) -> Option<PathBuf> {
    if url.contains(":memory:") || url.contains("mode=memory") {
        return None;
    }
    let path = url.strip_prefix("sqlite:").unwrap_or(url);
    let path = path.strip_prefix("//").unwrap_or(path);
    let path = path.split('?').next().unwrap_or(path);
    Some(PathBuf::from(format!("{path}.audit-key")))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::AuditFile {
        path: path.to_path_buf(),
        source,
    }
}

/// The files of a store kept on disk.
#[derive(Debug)]
struct Files {
    key: PathBuf,
    signing: SigningKey,
}

/// The audit key and, for a store on disk, the signing key and where the head goes.
#[derive(Debug)]
pub struct AuditSeal {
    key: AuditKey,
    files: Option<Files>,
}

impl AuditSeal {
    /// A key in memory only, for an in-memory database.
    pub fn ephemeral() -> AuditSeal {
        let mut bytes = [0u8; AUDIT_KEY_LEN];
        rand::rng().fill_bytes(&mut bytes);
        AuditSeal {
            key: AuditKey::new(bytes),
            files: None,
        }
    }

    /// Loads the key at `path`, creating it (0600, random) and the signing pair on first
    /// use. Refuses to make a new key where a signed head shows there was one.
    pub fn open(path: &Path) -> Result<AuditSeal, StoreError> {
        let head = with_suffix(path, ".head");
        if !path.exists() {
            if head.exists() {
                return Err(StoreError::AuditKeyMissing {
                    key: path.to_path_buf(),
                    head,
                });
            }
            create_key(path)?;
        }
        let bytes = std::fs::read(path).map_err(io(path))?;
        let key = AuditKey::from_slice(&bytes).ok_or_else(|| StoreError::AuditKeyInvalid {
            path: path.to_path_buf(),
            len: bytes.len(),
        })?;
        let signing = keys::load_or_create(&with_suffix(path, ".ed25519"))?;
        Ok(AuditSeal {
            key,
            files: Some(Files {
                key: path.to_path_buf(),
                signing,
            }),
        })
    }

    pub fn key(&self) -> &AuditKey {
        &self.key
    }

    /// The audit key file, when the store keeps one.
    pub fn key_path(&self) -> Option<&Path> {
        self.files.as_ref().map(|f| f.key.as_path())
    }

    /// Where the signed head is kept.
    pub fn head_path(&self) -> Option<PathBuf> {
        self.key_path().map(|k| with_suffix(k, ".head"))
    }

    /// The folder the server's scheduled checkpoints go in.
    pub fn checkpoint_dir(&self) -> Option<PathBuf> {
        self.key_path().map(|k| with_suffix(k, ".checkpoints"))
    }

    pub fn public_key(&self) -> Option<VerifyingKey> {
        self.files.as_ref().map(|f| f.signing.verifying_key())
    }

    /// The signed head as found on disk.
    pub fn head(&self) -> Result<HeadState, StoreError> {
        let Some(path) = self.head_path() else {
            return Ok(HeadState::NotKept);
        };
        match std::fs::read(&path) {
            Ok(bytes) => Ok(HeadState::Present(read_signed(&path, &bytes)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HeadState::Missing),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Signs `entry` (committed) as the head unless the head already names a later entry;
    /// writes a temporary file and renames it over the head, under a lock file so that
    /// writers in other processes take turns.
    pub fn seal(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.write_head(entry.seq, &entry.hash)
    }

    /// Writes the head for `(seq, hash)` unless it already names a later entry.
    pub(crate) fn write_head(&self, seq: i64, hash: &str) -> Result<(), StoreError> {
        let (Some(files), Some(path)) = (&self.files, self.head_path()) else {
            return Ok(());
        };
        let lock_path = with_suffix(&files.key, ".lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        lock.lock().map_err(io(&lock_path))?;
        if let HeadState::Present(current) = self.head()?
            && current.seq >= seq
        {
            return Ok(());
        }
        let signed = SignedHead::sign(seq, hash, &crate::rows::now_text(), &files.signing);
        write_atomically(&path, &signed_json(&signed)?)
    }
}

/// `signed` as the pretty JSON of a head or checkpoint file.
pub fn signed_json(signed: &SignedHead) -> Result<Vec<u8>, StoreError> {
    let mut bytes = serde_json::to_vec_pretty(signed)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// A head or checkpoint read from `path`.
pub fn read_signed(path: &Path, bytes: &[u8]) -> Result<SignedHead, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::AuditFileInvalid {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, and renames it over `path`:
/// a reader sees the old file or the new one, never half of one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io(dir))?;
    tmp.write_all(bytes).map_err(io(path))?;
    tmp.as_file().sync_all().map_err(io(path))?;
    tmp.persist(path).map_err(|e| io(path)(e.error))?;
    Ok(())
}

/// Creates the key file with 32 random bytes, 0600, unless another process made it first.
fn create_key(path: &Path) -> Result<(), StoreError> {
    let mut bytes = [0u8; AUDIT_KEY_LEN];
    rand::rng().fill_bytes(&mut bytes);
    let mut f = match keys::create_private(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(io(path)(e)),
    };
    f.write_all(&bytes).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_made_once_with_0600_and_the_head_only_moves_forward() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.audit-key");
        let seal = AuditSeal::open(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(std::fs::read(&path).unwrap().len(), AUDIT_KEY_LEN);
        let again = AuditSeal::open(&path).unwrap();
        assert_eq!(again.key(), seal.key());
        assert!(matches!(seal.head().unwrap(), HeadState::Missing));
        seal.write_head(5, "h5").unwrap();
        seal.write_head(3, "h3").unwrap();
        let HeadState::Present(h) = seal.head().unwrap() else {
            panic!("no head")
        };
        assert_eq!((h.seq, h.hash.as_str()), (5, "h5"));
        assert!(h.verify(&seal.public_key().unwrap()).is_ok());
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(
            AuditSeal::open(&path).unwrap_err(),
            StoreError::AuditKeyMissing { .. }
        ));
    }

    #[test]
    fn sqlite_urls_name_their_key_file() {
        assert_eq!(
            sqlite_key_path("sqlite:/d/cw.db?mode=rwc"),
            Some(PathBuf::from("/d/cw.db.audit-key"))
        );
        assert_eq!(
            sqlite_key_path("sqlite://cw.db"),
            Some(PathBuf::from("cw.db.audit-key"))
        );
        assert_eq!(sqlite_key_path("sqlite::memory:"), None);
    }
}
