//! The evidence bundle: a ZIP holding the case's files, `manifest.json` (every file with
//! its SHA-256 and size, the alerts, the exact rule texts, the input batches, the tool,
//! who exported it and when) and `manifest.sig` (a raw 64-byte Ed25519 signature of the
//! manifest bytes), plus `public_key.pem` and `audit-checkpoint.json` (the audit log's
//! signed head at export time, listed in the manifest like every other file). Apart from
//! the export time, the checkpoint and the signature, the same case gives the same bytes. [`verify`] checks every hash and the signature and
//! names every missing, extra or altered file.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use super::entity::ReportingEntity;
use super::{CaseExport, ExportError, files, keys, report};
use clearwatch_model::case::Status;
use clearwatch_model::format_ts;

pub const FORMAT: &str = "clearwatch-evidence/1";
pub const MANIFEST: &str = "manifest.json";
pub const SIGNATURE: &str = "manifest.sig";
pub const PUBLIC_KEY: &str = "public_key.pem";
/// The audit log's signed head at export time (`clearwatch audit verify --checkpoint`).
pub const AUDIT_CHECKPOINT: &str = "audit-checkpoint.json";

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

/// What a bundle holds beside the case, all optional.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options<'a> {
    /// The goAML XML to include.
    pub goaml: Option<&'a [u8]>,
    /// The reporting institution, for the report's institution block.
    pub entity: Option<&'a ReportingEntity>,
    /// The zone the report shows times in (the exporting user's); UTC when `None`.
    pub time_zone: Option<chrono_tz::Tz>,
    /// The language of the report's own words (the exporting user's).
    pub lang: clearwatch_model::Lang,
    /// Rule titles, summaries and figure names in that language, where known.
    pub texts: Option<&'a report::ReportTexts>,
}

/// Writes the bundle to `out`.
pub fn write(
    out: &Path,
    case: &CaseExport,
    key: &SigningKey,
    exported_by: &str,
    exported_at: chrono::DateTime<chrono::Utc>,
    extra: &Options,
) -> Result<Manifest, ExportError> {
    let goaml = extra.goaml;
    // Whole seconds, as the manifest writes it, so that the report shows the same time.
    let exported_at =
        chrono::DateTime::from_timestamp(exported_at.timestamp(), 0).unwrap_or(exported_at);
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
    let public = key.verifying_key();
    let key_sha256 = keys::fingerprint(&public);
    let meta = report::Meta {
        exported_by,
        exported_at,
        key_sha256: &key_sha256,
        entity: extra.entity,
        time_zone: extra.time_zone.unwrap_or(chrono_tz::UTC),
        lang: extra.lang,
        texts: extra.texts,
    };
    add_file(&mut zip, &mut listed, "report.html", |w| {
        w.write_all(report::html(case, &meta).as_bytes())
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
    if let Some(head) = &case.audit_checkpoint {
        let bytes = clearwatch_store::seal::signed_json(head)?;
        add_file(&mut zip, &mut listed, AUDIT_CHECKPOINT, |w| {
            w.write_all(&bytes).map_err(text_err(AUDIT_CHECKPOINT))
        })?;
    }
    if let Some(xml) = goaml {
        add_file(&mut zip, &mut listed, "goaml.xml", |w| {
            w.write_all(xml).map_err(text_err("goaml.xml"))
        })?;
    }
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
        public_key_sha256: key_sha256,
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
    let mut v = Verification::default();
    // A ZIP may hold two entries of one name: an extractor keeps one of them, a lookup by
    // name another, so a forged copy could pass the check and then be what is read.
    if zip.has_duplicate_names() {
        v.problems.push(
            "the archive holds two entries of one name (one of them could be a forgery that survives extraction)"
                .to_string(),
        );
    }
    // Every entry by index, with names that escape the folder refused.
    let mut entries: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..zip.len() {
        let name = zip
            .by_index_raw(i)
            .map_err(zip_err)?
            .name()
            .map_err(zip_err)?
            .into_owned();
        if let Some(problem) = unsafe_name(&name) {
            v.problems.push(format!("{name}: {problem}"));
        }
        entries.insert(name, i);
    }
    if !v.problems.is_empty() {
        return Ok(v);
    }
    let mut read_small = |name: &str| -> Result<Vec<u8>, String> {
        let i = *entries.get(name).ok_or("missing")?;
        let f = zip.by_index(i).map_err(|e| format!("unreadable ({e})"))?;
        let mut buf = Vec::new();
        f.take(MAX_META_BYTES + 1)
            .read_to_end(&mut buf)
            .map_err(|e| format!("unreadable ({e})"))?;
        if buf.len() as u64 > MAX_META_BYTES {
            return Err(format!("too large (over {MAX_META_BYTES} bytes)"));
        }
        Ok(buf)
    };
    let manifest_bytes = match read_small(MANIFEST) {
        Ok(b) => b,
        Err(problem) => {
            v.problems.push(format!("{MANIFEST}: {problem}"));
            return Ok(v);
        }
    };
    let manifest: Manifest = match serde_json::from_slice(&manifest_bytes) {
        Ok(m) => m,
        Err(e) => {
            v.problems.push(format!("{MANIFEST}: unreadable ({e})"));
            return Ok(v);
        }
    };
    let key = match expected {
        Some(k) => Ok(*k),
        None => {
            v.key_from_bundle = true;
            read_small(PUBLIC_KEY).and_then(|pem| {
                String::from_utf8(pem)
                    .ok()
                    .and_then(|pem| keys::parse_public(&pem).ok())
                    .ok_or_else(|| "not an Ed25519 public key".to_string())
            })
        }
    };
    match (key, read_small(SIGNATURE)) {
        (Err(problem), _) => v.problems.push(format!("{PUBLIC_KEY}: {problem}")),
        (_, Err(problem)) => v.problems.push(format!("{SIGNATURE}: {problem}")),
        (Ok(key), Ok(sig)) => {
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
        if let Some(problem) = unsafe_name(&f.path) {
            v.problems.push(format!("{}: {problem}", f.path));
            continue;
        }
        let Some(&i) = entries.get(&f.path) else {
            v.problems.push(format!("{}: missing", f.path));
            continue;
        };
        // Hashed as it streams, never held whole; reading stops one byte past the size
        // the manifest gives, so an entry that inflates without end is cut short.
        let limit = f.size.min(MAX_ENTRY_BYTES);
        let hashed = zip.by_index(i).map_err(zip_err).and_then(|entry| {
            let mut hasher = Sha256::new();
            let n = std::io::copy(&mut entry.take(limit + 1), &mut HashWriter(&mut hasher))
                .map_err(|e| ExportError::Zip(format!("{}: {e}", f.path)))?;
            Ok((n, hex::encode(hasher.finalize())))
        });
        match hashed {
            Err(e) => v.problems.push(format!("{}: unreadable ({e})", f.path)),
            Ok((n, _)) if n > limit && limit == MAX_ENTRY_BYTES => v.problems.push(format!(
                "{}: too large (over {MAX_ENTRY_BYTES} bytes)",
                f.path
            )),
            Ok((n, _)) if n > f.size => v.problems.push(format!(
                "{}: altered (larger than the {} bytes the manifest says)",
                f.path, f.size
            )),
            Ok((n, sha)) if sha != f.sha256 || n != f.size => v.problems.push(format!(
                "{}: altered (sha256 {sha}, size {n}; the manifest says {}, {})",
                f.path, f.sha256, f.size
            )),
            Ok(_) => {}
        }
    }
    for name in entries.keys() {
        if name != MANIFEST && name != SIGNATURE && !listed.contains(name.as_str()) {
            v.problems
                .push(format!("{name}: extra file, not in the manifest"));
        }
    }
    Ok(v)
}

/// The largest manifest, signature or key read.
const MAX_META_BYTES: u64 = 16 << 20;
/// The largest bundle file checked.
const MAX_ENTRY_BYTES: u64 = 64 << 30;

/// Why an entry name is unsafe to extract, if it is: absolute, with a `..` component, or
/// with backslashes (a path separator on Windows).
fn unsafe_name(name: &str) -> Option<&'static str> {
    if name.contains('\\') {
        Some("unsafe path (a backslash)")
    } else if name.starts_with('/') || name.split('/').next().is_some_and(|c| c.ends_with(':')) {
        Some("unsafe path (absolute)")
    } else if name.split('/').any(|c| c == "..") {
        Some("unsafe path (`..`)")
    } else if name.is_empty() || name.split('/').any(str::is_empty) {
        Some("unsafe path (an empty component)")
    } else {
        None
    }
}

/// Feeds what is written into a hasher.
struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
