//! The evidence bundle: a ZIP holding the case's files, `manifest.json` (every file with
//! its SHA-256 and size, the alerts, the exact rule texts, the input batches, the tool,
//! who exported it and when) and `manifest.sig` (a raw 64-byte Ed25519 signature of the
//! manifest bytes), plus `public_key.pem`. Apart from the export time and the signature,
//! the same case gives the same bytes. [`verify`] checks every hash and the signature and
//! names every missing, extra or altered file.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use super::{CaseExport, ExportError, files, keys, report};
use clearwatch_model::case::Status;
use clearwatch_model::format_ts;

pub const FORMAT: &str = "clearwatch-evidence/1";
pub const MANIFEST: &str = "manifest.json";
pub const SIGNATURE: &str = "manifest.sig";
pub const PUBLIC_KEY: &str = "public_key.pem";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestAlert {
    pub id: String,
    pub rule_id: String,
    pub rule_version: String,
    pub subject: String,
    pub window_from: String,
    pub window_until: String,
    pub status: Status,
    pub assignee: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestRule {
    pub rule_id: String,
    pub version: String,
    pub title: String,
    pub text: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestBatch {
    pub batch_id: i64,
    pub kind: String,
    pub source: String,
    pub profile: String,
    pub sha256: Option<String>,
    pub loaded_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub tool: String,
    pub exported_by: String,
    pub exported_at: String,
    pub alerts: Vec<ManifestAlert>,
    pub rules: Vec<ManifestRule>,
    pub input_batches: Vec<ManifestBatch>,
    /// SHA-256 of the raw Ed25519 public key that signs this manifest.
    pub public_key_sha256: String,
    pub files: Vec<ManifestFile>,
}

/// Hashes and counts what passes through.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn zip_err(e: zip::result::ZipError) -> ExportError {
    ExportError::Zip(e.to_string())
}

fn options() -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o644)
}

type ZipOut = ZipWriter<File>;

/// Streams one file into the ZIP and records it in the manifest list.
fn add_file(
    zip: &mut ZipOut,
    listed: &mut Vec<ManifestFile>,
    name: &str,
    write: impl FnOnce(&mut Hashing<&mut ZipOut>) -> Result<(), ExportError>,
) -> Result<(), ExportError> {
    zip.start_file(name, options()).map_err(zip_err)?;
    let mut w = Hashing {
        inner: &mut *zip,
        hasher: Sha256::new(),
        size: 0,
    };
    write(&mut w)?;
    w.flush()
        .map_err(|e| ExportError::Zip(format!("{name}: {e}")))?;
    listed.push(ManifestFile {
        path: name.to_string(),
        sha256: hex::encode(w.hasher.finalize()),
        size: w.size,
    });
    Ok(())
}

/// Writes the bundle to `out`; `goaml` is the goAML XML to include, when there is one.
pub fn write(
    out: &Path,
    case: &CaseExport,
    key: &SigningKey,
    exported_by: &str,
    exported_at: chrono::DateTime<chrono::Utc>,
    goaml: Option<&[u8]>,
) -> Result<Manifest, ExportError> {
    let io = |source| ExportError::Io {
        path: out.to_path_buf(),
        source,
    };
    let file = File::create(out).map_err(io)?;
    let mut zip = ZipWriter::new(file);
    let mut listed = Vec::new();
    let at = exported_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let text_err =
        |name: &'static str| move |e: std::io::Error| ExportError::Zip(format!("{name}: {e}"));
    add_file(&mut zip, &mut listed, "report.html", |w| {
        w.write_all(report::html(case, exported_by, &at).as_bytes())
            .map_err(text_err("report.html"))
    })?;
    add_file(&mut zip, &mut listed, "transactions.csv", |w| {
        files::transactions_csv(case, w)
    })?;
    add_file(&mut zip, &mut listed, "accounts.csv", |w| {
        files::accounts_csv(case, w)
    })?;
    add_file(&mut zip, &mut listed, "graph.graphml", |w| {
        files::graphml(case, w)
    })?;
    add_file(&mut zip, &mut listed, "audit.jsonl", |w| {
        files::audit_jsonl(case, w)
    })?;
    if let Some(xml) = goaml {
        add_file(&mut zip, &mut listed, "goaml.xml", |w| {
            w.write_all(xml).map_err(text_err("goaml.xml"))
        })?;
    }
    let public = key.verifying_key();
    let pem = keys::public_pem(&public)?;
    add_file(&mut zip, &mut listed, PUBLIC_KEY, |w| {
        w.write_all(pem.as_bytes()).map_err(text_err(PUBLIC_KEY))
    })?;
    let manifest = Manifest {
        format: FORMAT.to_string(),
        tool: format!("clearwatch {}", env!("CARGO_PKG_VERSION")),
        exported_by: exported_by.to_string(),
        exported_at: at,
        alerts: case
            .alerts
            .iter()
            .map(|s| ManifestAlert {
                id: s.alert.id.clone(),
                rule_id: s.alert.rule_id.clone(),
                rule_version: s.alert.rule_version.clone(),
                subject: format!("{}:{}", s.alert.subject.kind, s.alert.subject.id),
                window_from: format_ts(s.alert.window.from),
                window_until: format_ts(s.alert.window.until),
                status: s.status,
                assignee: s.assignee.clone(),
            })
            .collect(),
        rules: case
            .rules
            .iter()
            .map(|r| ManifestRule {
                rule_id: r.rule_id.clone(),
                version: r.version.clone(),
                title: r.title.clone(),
                text: r.text.clone(),
            })
            .collect(),
        input_batches: case
            .batches
            .iter()
            .map(|b| ManifestBatch {
                batch_id: b.batch_id,
                kind: b.kind.clone(),
                source: b.source.clone(),
                profile: b.profile.clone(),
                sha256: b.sha256.clone(),
                loaded_at: b.loaded_at.clone(),
            })
            .collect(),
        public_key_sha256: keys::fingerprint(&public),
        files: listed,
    };
    let mut bytes = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| ExportError::Invalid(format!("manifest: {e}")))?;
    bytes.push(b'\n');
    let signature = key.sign(&bytes);
    zip.start_file(MANIFEST, options()).map_err(zip_err)?;
    zip.write_all(&bytes)
        .map_err(|e| ExportError::Zip(format!("{MANIFEST}: {e}")))?;
    zip.start_file(SIGNATURE, options()).map_err(zip_err)?;
    zip.write_all(&signature.to_bytes())
        .map_err(|e| ExportError::Zip(format!("{SIGNATURE}: {e}")))?;
    zip.finish().map_err(zip_err)?;
    Ok(manifest)
}

/// What verifying a bundle found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verification {
    pub files_checked: usize,
    /// One line per problem, each naming the file.
    pub problems: Vec<String>,
    /// Fingerprint of the key the signature was checked against.
    pub key_sha256: String,
    /// The key came from the bundle itself rather than from the receiver.
    pub key_from_bundle: bool,
}

impl Verification {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks every file's hash and size against the manifest, and the manifest's signature
/// against `expected` (or, when absent, the bundle's own public key).
pub fn verify(path: &Path, expected: Option<&VerifyingKey>) -> Result<Verification, ExportError> {
    let io = |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let mut zip = ZipArchive::new(file).map_err(zip_err)?;
    let mut read = |name: &str| -> Option<Vec<u8>> {
        let mut f = zip.by_name(name).ok()?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf).ok()?;
        Some(buf)
    };
    let mut v = Verification::default();
    let Some(manifest_bytes) = read(MANIFEST) else {
        v.problems.push(format!("{MANIFEST}: missing"));
        return Ok(v);
    };
    let manifest: Manifest = match serde_json::from_slice(&manifest_bytes) {
        Ok(m) => m,
        Err(e) => {
            v.problems.push(format!("{MANIFEST}: unreadable ({e})"));
            return Ok(v);
        }
    };
    let key = match expected {
        Some(k) => Some(*k),
        None => {
            v.key_from_bundle = true;
            read(PUBLIC_KEY)
                .and_then(|pem| String::from_utf8(pem).ok())
                .and_then(|pem| keys::parse_public(&pem).ok())
        }
    };
    match (key, read(SIGNATURE)) {
        (None, _) => v.problems.push(format!(
            "{PUBLIC_KEY}: missing or not an Ed25519 public key"
        )),
        (_, None) => v.problems.push(format!("{SIGNATURE}: missing")),
        (Some(key), Some(sig)) => {
            v.key_sha256 = keys::fingerprint(&key);
            let valid = Signature::from_slice(&sig)
                .map(|s| key.verify(&manifest_bytes, &s).is_ok())
                .unwrap_or(false);
            if !valid {
                v.problems.push(format!(
                    "{MANIFEST}: the signature does not match (the manifest was altered, or it was signed with another key)"
                ));
            }
        }
    }
    let mut listed = BTreeSet::new();
    for f in &manifest.files {
        listed.insert(f.path.as_str());
        v.files_checked += 1;
        match read(&f.path) {
            None => v.problems.push(format!("{}: missing", f.path)),
            Some(bytes) => {
                let sha = hex::encode(Sha256::digest(&bytes));
                if sha != f.sha256 || bytes.len() as u64 != f.size {
                    v.problems.push(format!(
                        "{}: altered (sha256 {sha}, size {}; the manifest says {}, {})",
                        f.path,
                        bytes.len(),
                        f.sha256,
                        f.size
                    ));
                }
            }
        }
    }
    let names: Vec<String> = zip
        .file_names()
        .map(|n| n.map(|n| n.into_owned()))
        .collect::<Result<_, _>>()
        .map_err(zip_err)?;
    for name in names {
        if name != MANIFEST && name != SIGNATURE && !listed.contains(name.as_str()) {
            v.problems
                .push(format!("{name}: extra file, not in the manifest"));
        }
    }
    Ok(v)
}
