//! Tamper evidence for the audit log. Each entry's hash is an HMAC-SHA256 under a key kept
//! outside the database ([`AuditKey`], [`keyed_hash`]) over the previous hash and the
//! entry's canonical fields, so someone who can write the database but not read the key
//! cannot recompute the chain after an edit. The latest sequence number and hash are signed
//! with Ed25519 into a [`SignedHead`] kept outside the database too (and copied out as
//! checkpoints), so deleting the newest entries, or all of them, is seen. [`verify_log`]
//! walks the entries against the key, the head and any checkpoints and names every
//! [`Finding`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::case::{AuditCheck, AuditEntry, GENESIS_HASH};

/// Bytes of an audit key.
pub const AUDIT_KEY_LEN: usize = 32;

/// The format tag of a signed head and of a checkpoint.
pub const HEAD_FORMAT: &str = "clearwatch-audit-head/1";

/// The secret the entry hashes are keyed with; never stored in the database.
#[derive(Clone, PartialEq, Eq)]
pub struct AuditKey([u8; AUDIT_KEY_LEN]);

impl AuditKey {
    pub fn new(bytes: [u8; AUDIT_KEY_LEN]) -> AuditKey {
        AuditKey(bytes)
    }

    /// The key in `bytes`, which must be exactly [`AUDIT_KEY_LEN`] long.
    pub fn from_slice(bytes: &[u8]) -> Option<AuditKey> {
        Some(AuditKey(bytes.try_into().ok()?))
    }

    pub fn as_bytes(&self) -> &[u8; AUDIT_KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuditKey(..)")
    }
}

/// HMAC-SHA256 under `key` of the entry's canonical bytes ([`AuditEntry::feed`]: its
/// `prev_hash` first, then its fields), hex.
pub fn keyed_hash(key: &AuditKey, entry: &AuditEntry) -> String {
    let mut mac = <Hmac<sha2_hmac::Sha256> as KeyInit>::new_from_slice(key.as_bytes())
        .expect("HMAC takes a key of any length");
    entry.feed(&mut |bytes| mac.update(bytes));
    hex::encode(mac.finalize().into_bytes())
}

/// SHA-256 of the raw public key, for comparing keys by eye.
pub fn key_fingerprint(key: &VerifyingKey) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The latest sequence number and hash of the log, signed: the head written beside the
/// key on every append, and the checkpoints copied from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedHead {
    pub format: String,
    pub seq: i64,
    pub hash: String,
    /// When it was signed (RFC 3339, UTC).
    pub at: String,
    /// SHA-256 of the raw Ed25519 public key that signed it.
    pub public_key_sha256: String,
    /// The raw Ed25519 signature of [`SignedHead::message`], hex.
    pub signature: String,
}

impl SignedHead {
    pub fn sign(seq: i64, hash: &str, at: &str, key: &SigningKey) -> SignedHead {
        let mut head = SignedHead {
            format: HEAD_FORMAT.to_string(),
            seq,
            hash: hash.to_string(),
            at: at.to_string(),
            public_key_sha256: key_fingerprint(&key.verifying_key()),
            signature: String::new(),
        };
        head.signature = hex::encode(key.sign(&head.message()).to_bytes());
        head
    }

    /// The signed bytes: every field but the signature, one a line.
    pub fn message(&self) -> Vec<u8> {
        format!(
            "{}\nseq {}\nhash {}\nat {}\nkey {}\n",
            self.format, self.seq, self.hash, self.at, self.public_key_sha256
        )
        .into_bytes()
    }

    /// Checks the signature under `key`; says why it does not hold.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), String> {
        if self.format != HEAD_FORMAT {
            return Err(format!("unknown format {:?}", self.format));
        }
        if self.public_key_sha256 != key_fingerprint(key) {
            return Err(format!(
                "signed by key {}, not this installation's {}",
                self.public_key_sha256,
                key_fingerprint(key)
            ));
        }
        let bytes: [u8; 64] = hex::decode(&self.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("the signature is not 64 hex-encoded bytes")?;
        key.verify(&self.message(), &Signature::from_bytes(&bytes))
            .map_err(|_| "the signature does not match".to_string())
    }
}

/// Where a signed record came from: the head beside the key, or a checkpoint file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Source {
    Head,
    Checkpoint(String),
}

impl Source {
    fn noun(&self) -> &'static str {
        match self {
            Source::Head => "head",
            Source::Checkpoint(_) => "checkpoint",
        }
    }

    fn name(&self) -> String {
        match self {
            Source::Head => String::new(),
            Source::Checkpoint(n) => format!(" [{n}]"),
        }
    }
}

/// One thing wrong with the log, named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "finding", rename_all = "snake_case")]
pub enum Finding {
    /// Entries `from..=to` are missing between two that are present.
    Deleted { from: i64, to: i64 },
    /// The newest entry is `after`, but a signed record names a later one.
    Truncated {
        after: i64,
        says: i64,
        source: Source,
    },
    /// No entries, but a signed record names some.
    Emptied { says: i64, source: Source },
    /// The entry's HMAC does not match its contents.
    Altered { seq: i64 },
    /// The entries right after an altered one fail the HMAC too: their hashes were
    /// recomputed without the key.
    Rewritten { from: i64, to: i64, after: i64 },
    /// The entry's HMAC holds but its `prev_hash` is not the previous entry's hash.
    Unlinked { seq: i64 },
    /// A signed record's hash for entry `seq` is not the log's.
    HashDiffers { seq: i64, source: Source },
    /// A signed record's signature does not hold.
    BadSignature { source: Source, reason: String },
    /// There are entries but no signed head to check them against.
    HeadMissing { entries: u64 },
}

impl Finding {
    /// The entry the finding is about (the first one, for a range).
    pub fn seq(&self) -> i64 {
        match self {
            Finding::Deleted { from, .. } | Finding::Rewritten { from, .. } => *from,
            Finding::Truncated { after, .. } => after + 1,
            Finding::Emptied { .. } => 1,
            Finding::Altered { seq } | Finding::Unlinked { seq } => *seq,
            Finding::HashDiffers { seq, .. } => *seq,
            Finding::BadSignature { .. } | Finding::HeadMissing { .. } => 0,
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Deleted { from, to } if from == to => write!(f, "entry {from} deleted"),
            Finding::Deleted { from, to } => write!(f, "entries {from}-{to} deleted"),
            Finding::Truncated {
                after,
                says,
                source,
            } => write!(
                f,
                "log truncated after {after} ({} says {says}){}",
                source.noun(),
                source.name()
            ),
            Finding::Emptied { says, source } => write!(
                f,
                "log emptied ({} says {says} entries){}",
                source.noun(),
                source.name()
            ),
            Finding::Altered { seq } => write!(f, "entry {seq} altered (HMAC mismatch)"),
            Finding::Rewritten { from, to, after } => write!(
                f,
                "entries {from}-{to} fail the HMAC too (hashes recomputed after entry {after})"
            ),
            Finding::Unlinked { seq } => write!(
                f,
                "entry {seq} does not chain from the entry before it (prev_hash differs)"
            ),
            Finding::HashDiffers { seq, source } => write!(
                f,
                "{} sequence {seq} hash differs{}",
                source.noun(),
                source.name()
            ),
            Finding::BadSignature { source, reason } => write!(
                f,
                "{} signature invalid{}: {reason}",
                source.noun(),
                source.name()
            ),
            Finding::HeadMissing { entries } => write!(
                f,
                "signed head missing ({entries} entries with nothing to check their end against)"
            ),
        }
    }
}

/// The signed head as found beside the key.
#[derive(Debug, Clone)]
pub enum HeadState {
    /// The store keeps no head (an in-memory database).
    NotKept,
    Missing,
    Present(SignedHead),
}

/// What [`verify_log`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    /// Entries present.
    pub entries: u64,
    /// The newest entry's sequence number and hash (0 and the genesis hash when empty).
    pub last_seq: i64,
    pub last_hash: String,
    /// The sequence number the signed head names, when there is a valid one.
    pub head_seq: Option<i64>,
    /// Checkpoints given and checked.
    pub checkpoints: usize,
    pub findings: Vec<Finding>,
}

impl AuditReport {
    pub fn intact(&self) -> bool {
        self.findings.is_empty()
    }

    /// The summary: intact, or broken at the first finding with all of them named.
    pub fn check(&self) -> AuditCheck {
        match self.findings.first() {
            None => AuditCheck::Intact {
                entries: self.entries,
                head: self.last_hash.clone(),
            },
            Some(first) => AuditCheck::Broken {
                seq: first.seq(),
                reason: self
                    .findings
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            },
        }
    }
}

/// Walks `entries` (in `seq` order) against `key`, then checks the signed head and each
/// checkpoint (signature under `public`, then its sequence number and hash against the
/// log), naming every finding.
pub fn verify_log(
    entries: impl IntoIterator<Item = AuditEntry>,
    key: &AuditKey,
    head: &HeadState,
    public: Option<&VerifyingKey>,
    checkpoints: &[(String, SignedHead)],
) -> AuditReport {
    let mut anchors: Vec<(Source, &SignedHead)> = Vec::new();
    if let HeadState::Present(h) = head {
        anchors.push((Source::Head, h));
    }
    anchors.extend(
        checkpoints
            .iter()
            .map(|(name, c)| (Source::Checkpoint(name.clone()), c)),
    );
    let wanted: BTreeSet<i64> = anchors.iter().map(|(_, a)| a.seq).collect();
    let mut hashes: BTreeMap<i64, String> = BTreeMap::new();
    let mut findings = Vec::new();
    let (mut last_seq, mut last_hash, mut n) = (0i64, GENESIS_HASH.to_string(), 0u64);
    // The altered entry and the run of failures right after it.
    let mut rewritten: Option<(i64, i64, i64)> = None;
    let close = |run: &mut Option<(i64, i64, i64)>, findings: &mut Vec<Finding>| {
        if let Some((after, from, to)) = run.take()
            && from <= to
        {
            findings.push(Finding::Rewritten { from, to, after });
        }
    };
    for e in entries {
        let gap = e.seq != last_seq + 1;
        if gap && e.seq > last_seq + 1 {
            findings.push(Finding::Deleted {
                from: last_seq + 1,
                to: e.seq - 1,
            });
        }
        if keyed_hash(key, &e) != e.hash {
            match &mut rewritten {
                Some((_, _, to)) if !gap && *to == e.seq - 1 => *to = e.seq,
                _ => {
                    close(&mut rewritten, &mut findings);
                    findings.push(Finding::Altered { seq: e.seq });
                    rewritten = Some((e.seq, e.seq + 1, e.seq));
                }
            }
        } else {
            close(&mut rewritten, &mut findings);
            if !gap && e.prev_hash != last_hash {
                findings.push(Finding::Unlinked { seq: e.seq });
            }
        }
        if wanted.contains(&e.seq) {
            hashes.insert(e.seq, e.hash.clone());
        }
        last_seq = e.seq;
        last_hash = e.hash;
        n += 1;
    }
    close(&mut rewritten, &mut findings);
    if matches!(head, HeadState::Missing) && n > 0 {
        findings.push(Finding::HeadMissing { entries: n });
    }
    let mut head_seq = None;
    for (source, signed) in anchors {
        let verified = match public {
            Some(k) => signed.verify(k),
            None => Err("no public key to check it with".into()),
        };
        if let Err(reason) = verified {
            findings.push(Finding::BadSignature { source, reason });
            continue;
        }
        if source == Source::Head {
            head_seq = Some(signed.seq);
        }
        if signed.seq > last_seq {
            findings.push(if n == 0 {
                Finding::Emptied {
                    says: signed.seq,
                    source,
                }
            } else {
                Finding::Truncated {
                    after: last_seq,
                    says: signed.seq,
                    source,
                }
            });
        } else if signed.seq == 0 {
            if signed.hash != GENESIS_HASH {
                findings.push(Finding::HashDiffers { seq: 0, source });
            }
        } else if let Some(h) = hashes.get(&signed.seq)
            && *h != signed.hash
        {
            findings.push(Finding::HashDiffers {
                seq: signed.seq,
                source,
            });
        }
        // An entry missing below the newest is already named as deleted.
    }
    AuditReport {
        entries: n,
        last_seq,
        last_hash,
        head_seq,
        checkpoints: checkpoints.len(),
        findings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> AuditKey {
        AuditKey::new([7; AUDIT_KEY_LEN])
    }

    fn signer() -> SigningKey {
        SigningKey::from_bytes(&[9; 32])
    }

    fn chain(n: i64) -> Vec<AuditEntry> {
        crate::case::tests::chain_with(n, |e| keyed_hash(&key(), e))
    }

    fn head_of(c: &[AuditEntry]) -> HeadState {
        let last = c.last().unwrap();
        HeadState::Present(SignedHead::sign(last.seq, &last.hash, "t", &signer()))
    }

    fn findings(c: Vec<AuditEntry>, head: &HeadState) -> Vec<String> {
        let public = signer().verifying_key();
        verify_log(c, &key(), head, Some(&public), &[])
            .findings
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn an_intact_keyed_chain_with_its_head_has_no_findings() {
        let c = chain(5);
        let head = head_of(&c);
        assert_eq!(findings(c, &head), Vec::<String>::new());
    }

    #[test]
    fn each_kind_of_tampering_is_named() {
        let c = chain(6);
        let head = head_of(&c);

        let mut truncated = c.clone();
        truncated.truncate(4);
        assert_eq!(
            findings(truncated, &head),
            ["log truncated after 4 (head says 6)"]
        );
        assert_eq!(
            findings(Vec::new(), &head),
            ["log emptied (head says 6 entries)"]
        );

        let mut gap = c.clone();
        gap.remove(2);
        assert_eq!(findings(gap, &head), ["entry 3 deleted"]);

        // Altered and re-chained without the key: SHA-256 in place of the HMAC.
        let mut rehashed = c.clone();
        rehashed[1].actor = "mallory".into();
        for i in 1..rehashed.len() {
            rehashed[i].prev_hash = rehashed[i - 1].hash.clone();
            rehashed[i].hash = rehashed[i].unkeyed_hash();
        }
        assert_eq!(
            findings(rehashed, &head),
            [
                "entry 2 altered (HMAC mismatch)",
                "entries 3-6 fail the HMAC too (hashes recomputed after entry 2)",
                "head sequence 6 hash differs"
            ]
        );

        let HeadState::Present(mut forged) = head.clone() else {
            unreachable!()
        };
        forged.seq = 4;
        assert_eq!(
            findings(c.clone(), &HeadState::Present(forged)),
            ["head signature invalid: the signature does not match"]
        );
        assert_eq!(
            findings(c, &HeadState::Missing),
            ["signed head missing (6 entries with nothing to check their end against)"]
        );
    }

    #[test]
    fn a_checkpoint_names_a_rewritten_history() {
        let c = chain(4);
        let cp = SignedHead::sign(3, &c[2].hash, "t", &signer());
        let mut other = chain(4);
        other[2].hash = "00".into();
        let public = signer().verifying_key();
        let report = verify_log(
            other,
            &key(),
            &HeadState::NotKept,
            Some(&public),
            &[("cp.json".into(), cp)],
        );
        let names: Vec<String> = report.findings.iter().map(ToString::to_string).collect();
        assert!(
            names.contains(&"checkpoint sequence 3 hash differs [cp.json]".to_string()),
            "{names:?}"
        );
        let stranger = SigningKey::from_bytes(&[1; 32]);
        let foreign = SignedHead::sign(3, &c[2].hash, "t", &stranger);
        let report = verify_log(
            c,
            &key(),
            &HeadState::NotKept,
            Some(&public),
            &[("x".into(), foreign)],
        );
        assert!(matches!(
            report.findings[..],
            [Finding::BadSignature { .. }]
        ));
    }
}
