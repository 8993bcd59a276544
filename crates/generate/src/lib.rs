//! Deterministic scenario generator: simulates a CNY card / QR-code
//! acquiring ecosystem with labelled two-clear schemes (TYPOLOGIES.md TC-01..TC-12, `cycle`),
//! legitimate technical-integration aggregators as decoys, and background noise. Writes
//! clearwatch's native `transactions.csv`, `accounts.csv`, `merchants.csv` and a ground-truth
//! `truth.csv`; the native files' headers come from [`clearwatch_model::Table`].
//!
//! Same config ⇒ byte-identical files: one seeded ChaCha stream, no hash-map iteration, no
//! wall clock. Memory is O(population): days are generated in time order and streamed out.
//!
//! Conventions:
//! - A simulated day is the UTC day `[start + d·24h, start + (d+1)·24h)`; activity profiles are in
//!   China local time (UTC+8), so a UTC day covers local 08:00 to 08:00 the next morning.
//! - Settlement for day `d`'s sales is `settlement` acquirer → registered settlement account on day
//!   `d + settlement_cycle_days`, local 09:00–11:00, amount = gross payments − fee (fee rounded
//!   down). Refunds are separate `refund` rows and are not netted.
//! - `scale` multiplies every population count; each labelled typology has at least one instance.
//! - Truth roles by typology: TC-04/05/01/02 `hub` + `merchant` (TC-04 also the operator's own
//!   second account as `member`); TC-03 `payer` + `merchant`; TC-09 `hub`, `nested_hub`,
//!   `merchant`; TC-06 `payee` (or `hub` for a personal-account operator); TC-10 `member`;
//!   TC-11 `merchant`; TC-12 `mule` + collector `payee`; `cycle` `member`; decoys `aggregator`.
//! - [`Variant`]s other than the default add backgrounds (payroll, marketplace, dense
//!   circulation), data-quality defects (sparse registry), small-slow operators, the
//!   AMLSim-named patterns (`fan_in`, `fan_out`, `cycle`, `scatter_gather`, `gather_scatter`,
//!   `stack`, `bipartite`: `hub` + `member`) and legitimate look-alikes as decoys (`D` ids,
//!   central account `hub`). The default variant draws exactly the random numbers it drew
//!   before variants existed, so its files are byte-identical for a seed.

mod csvio;
mod extras;
pub mod jsonl;
mod names;
mod population;
mod rng;
mod sim;
mod truth;
mod tx;
mod variant;
mod writer;

pub use variant::Variant;

use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone, Utc};
use rand::SeedableRng;

use self::rng::SimRng;

/// Links held in memory before truth spills to disk (16 bytes each).
const TRUTH_SPILL_BUDGET: usize = 1 << 20;
const MAX_DAYS: u32 = 36_600;
const MAX_SCALE: f64 = 100_000.0;

/// What to simulate. Defaults give about 25 k transactions; volume is linear in
/// `scale × days` (about 850 transactions per scale unit per day).
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioConfig {
    pub seed: u64,
    pub days: u32,
    /// Compliant (directly settled) merchants per scale unit; schemes add their own victims.
    pub merchants: u32,
    pub consumers: u32,
    /// Multiplies every population count (consumers, merchants, operators, schemes, …).
    pub scale: f64,
    /// Start of day 0; should be a UTC midnight (other times shift the daily profile).
    pub start: DateTime<Utc>,
    /// Which backgrounds, look-alikes and defects to add; `Default` is the original scenario.
    pub variant: Variant,
}

impl ScenarioConfig {
    /// The scale that gives about `transactions` transactions over `days` for `variant`
    /// with the default merchant and consumer counts (clamped to the valid range).
    pub fn scale_for_transactions(variant: Variant, days: u32, transactions: u64) -> f64 {
        let per_unit = variant.transactions_per_scale_day() * f64::from(days.max(1));
        (transactions as f64 / per_unit).clamp(0.01, MAX_SCALE)
    }
}

impl Default for ScenarioConfig {
    fn default() -> Self {
        ScenarioConfig {
            seed: 42,
            days: 30,
            merchants: 60,
            consumers: 600,
            scale: 1.0,
            start: Utc
                .with_ymd_and_hms(2026, 1, 5, 0, 0, 0)
                .single()
                .unwrap_or_default(),
            variant: Variant::Default,
        }
    }
}

/// A small demo set: two weeks, a few thousand transactions, every typology present.
pub fn demo_config() -> ScenarioConfig {
    ScenarioConfig {
        days: 14,
        merchants: 40,
        consumers: 300,
        ..ScenarioConfig::default()
    }
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateSummary {
    pub transactions: u64,
    pub accounts: u64,
    /// Registry size (compliant merchants plus scheme registrations).
    pub merchants: u64,
    /// Labelled schemes (decoys not counted).
    pub schemes: u64,
    /// transactions.csv, accounts.csv, merchants.csv, truth.csv.
    pub files: Vec<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("invalid scenario config: {0}")]
    InvalidConfig(String),
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write CSV {path}: {source}")]
    Csv {
        path: PathBuf,
        #[source]
        source: csv::Error,
    },
}

/// Generates the scenario into `out_dir` (created if missing; the four files are overwritten).
pub fn generate_two_clear(
    cfg: &ScenarioConfig,
    out_dir: &Path,
) -> Result<GenerateSummary, GenerateError> {
    generate_with_budget(cfg, out_dir, TRUTH_SPILL_BUDGET)
}

fn validate(cfg: &ScenarioConfig) -> Result<(), GenerateError> {
    let invalid = |msg: String| Err(GenerateError::InvalidConfig(msg));
    if cfg.days == 0 || cfg.days > MAX_DAYS {
        return invalid(format!("days must be in 1..={MAX_DAYS}, got {}", cfg.days));
    }
    if !cfg.scale.is_finite() || cfg.scale <= 0.0 || cfg.scale > MAX_SCALE {
        return invalid(format!(
            "scale must be in (0, {MAX_SCALE}], got {}",
            cfg.scale
        ));
    }
    if cfg.merchants == 0 || cfg.consumers < 2 {
        return invalid(format!(
            "need at least 1 merchant and 2 consumers, got {} and {}",
            cfg.merchants, cfg.consumers
        ));
    }
    let population = (f64::from(cfg.merchants) + f64::from(cfg.consumers)) * cfg.scale;
    if population > 200_000_000.0 {
        return invalid(format!("population of {population:.0} is too large"));
    }
    let last_day = cfg
        .start
        .timestamp()
        .checked_add(i64::from(cfg.days + 8) * 86_400);
    if last_day
        .and_then(|ts| DateTime::from_timestamp(ts, 0))
        .is_none()
    {
        return invalid("start + days is out of the representable time range".to_owned());
    }
    Ok(())
}

fn generate_with_budget(
    cfg: &ScenarioConfig,
    out_dir: &Path,
    truth_budget: usize,
) -> Result<GenerateSummary, GenerateError> {
    validate(cfg)?;
    std::fs::create_dir_all(out_dir).map_err(csvio::io_error(out_dir))?;
    let mut rng = SimRng::seed_from_u64(cfg.seed);
    let pop = population::build(cfg, &mut rng);

    let accounts_path = out_dir.join("accounts.csv");
    writer::write_accounts(&pop, &accounts_path)?;
    let merchants_path = out_dir.join("merchants.csv");
    writer::write_merchants(&pop, &merchants_path)?;

    let transactions_path = out_dir.join("transactions.csv");
    let spill = truth::TruthSpill::new(out_dir, truth_budget);
    let mut tx_out = writer::TxWriter::create(transactions_path.clone(), spill)?;
    sim::Sim::new(&pop, rng, cfg.start.timestamp(), cfg.days).run(&mut tx_out)?;
    let (transactions, spill) = tx_out.finish()?;

    let truth_path = out_dir.join("truth.csv");
    spill.write(&pop, &truth_path)?;

    Ok(GenerateSummary {
        transactions,
        accounts: pop.accounts.len() as u64,
        merchants: pop.merchants.len() as u64,
        schemes: pop.labelled_schemes(),
        files: vec![transactions_path, accounts_path, merchants_path, truth_path],
    })
}

#[cfg(test)]
mod variant_tests;

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::fs;

    use clearwatch_model::Table;

    use super::*;

    pub(crate) fn small() -> ScenarioConfig {
        ScenarioConfig {
            days: 12,
            merchants: 20,
            consumers: 160,
            ..ScenarioConfig::default()
        }
    }

    pub(crate) fn rows(path: &Path) -> Vec<Vec<String>> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_path(path)
            .expect("open csv");
        reader
            .records()
            .map(|r| r.expect("csv record").iter().map(str::to_owned).collect())
            .collect()
    }

    pub(crate) fn generated(cfg: &ScenarioConfig) -> (tempfile::TempDir, GenerateSummary) {
        let dir = tempfile::tempdir().expect("tempdir");
        let summary = generate_two_clear(cfg, dir.path()).expect("generate");
        (dir, summary)
    }

    fn parse_fen(amount: &str) -> Option<i64> {
        let (units, cents) = amount.split_once('.')?;
        if cents.len() != 2 || units.is_empty() || !units.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if !cents.bytes().all(|b| b.is_ascii_digit()) || (units.len() > 1 && units.starts_with('0'))
        {
            return None;
        }
        Some(units.parse::<i64>().ok()? * 100 + cents.parse::<i64>().ok()?)
    }

    #[test]
    fn same_seed_gives_identical_files() {
        let (a, summary_a) = generated(&small());
        let (b, summary_b) = generated(&small());
        assert_eq!(summary_a.transactions, summary_b.transactions);
        for name in [
            "transactions.csv",
            "accounts.csv",
            "merchants.csv",
            "truth.csv",
        ] {
            let left = fs::read(a.path().join(name)).expect("read");
            let right = fs::read(b.path().join(name)).expect("read");
            assert!(left == right, "{name} differs between runs");
        }
    }

    #[test]
    fn different_seed_gives_different_transactions() {
        let (a, _) = generated(&small());
        let (b, _) = generated(&ScenarioConfig { seed: 7, ..small() });
        let left = fs::read(a.path().join("transactions.csv")).expect("read");
        let right = fs::read(b.path().join("transactions.csv")).expect("read");
        assert_ne!(left, right);
    }

    #[test]
    fn spilled_truth_matches_in_memory_truth() {
        let in_memory = tempfile::tempdir().expect("tempdir");
        let spilled = tempfile::tempdir().expect("tempdir");
        generate_with_budget(&small(), in_memory.path(), usize::MAX).expect("generate");
        generate_with_budget(&small(), spilled.path(), 97).expect("generate");
        let left = fs::read(in_memory.path().join("truth.csv")).expect("read");
        let right = fs::read(spilled.path().join("truth.csv")).expect("read");
        assert!(left == right);
        let leftovers: Vec<_> = fs::read_dir(spilled.path()).expect("list").collect();
        assert_eq!(leftovers.len(), 4, "run files must be removed");
    }

    #[test]
    fn files_are_consistent() {
        let (dir, summary) = generated(&small());
        let txs = rows(&dir.path().join("transactions.csv"));
        let accounts = rows(&dir.path().join("accounts.csv"));
        let merchants = rows(&dir.path().join("merchants.csv"));
        let truth = rows(&dir.path().join("truth.csv"));
        assert_eq!(txs[0], clearwatch_model::Transaction::native_header());
        assert_eq!(accounts[0], clearwatch_model::Account::native_header());
        assert_eq!(merchants[0], clearwatch_model::Merchant::native_header());
        assert_eq!(truth[0], truth::TRUTH_HEADER);
        assert_eq!(summary.transactions as usize, txs.len() - 1);

        let account_ids: Vec<&str> = accounts[1..].iter().map(|r| r[0].as_str()).collect();
        assert!(
            account_ids.windows(2).all(|w| w[0] < w[1]),
            "accounts sorted and unique"
        );
        let account_set: BTreeSet<&str> = account_ids.iter().copied().collect();
        let merchant_ids: Vec<&str> = merchants[1..].iter().map(|r| r[0].as_str()).collect();
        assert!(
            merchant_ids.windows(2).all(|w| w[0] < w[1]),
            "merchants sorted and unique"
        );
        let merchant_set: BTreeSet<&str> = merchant_ids.iter().copied().collect();
        for m in &merchants[1..] {
            assert!(
                account_set.contains(m[3].as_str()),
                "settlement account {} missing",
                m[3]
            );
            assert!(
                account_set.contains(m[4].as_str()),
                "acquirer {} missing",
                m[4]
            );
        }

        let mut tx_ids = BTreeSet::new();
        let mut last_ts = String::new();
        let types = [
            "payment",
            "settlement",
            "transfer",
            "cash_in",
            "cash_out",
            "fee",
            "refund",
        ];
        for tx in &txs[1..] {
            assert!(tx_ids.insert(tx[0].clone()), "duplicate tx id {}", tx[0]);
            assert!(
                tx[1].len() == 20 && tx[1].ends_with('Z'),
                "bad ts {}",
                tx[1]
            );
            assert!(DateTime::parse_from_rfc3339(&tx[1]).is_ok());
            assert!(tx[1] >= last_ts, "ts goes backwards at {}", tx[0]);
            last_ts = tx[1].clone();
            assert!(account_set.contains(tx[2].as_str()) && account_set.contains(tx[3].as_str()));
            assert_ne!(tx[2], tx[3]);
            assert!(
                parse_fen(&tx[4]).is_some_and(|fen| fen > 0),
                "bad amount {}",
                tx[4]
            );
            assert_eq!(tx[5], "CNY");
            assert!(types.contains(&tx[6].as_str()));
            let needs_merchant = matches!(tx[6].as_str(), "payment" | "settlement" | "refund");
            assert_eq!(
                needs_merchant,
                !tx[7].is_empty(),
                "merchant_id on {}",
                tx[0]
            );
            if needs_merchant {
                assert!(merchant_set.contains(tx[7].as_str()));
            }
        }

        let mut previous: Option<(String, String, String)> = None;
        let mut typologies = BTreeSet::new();
        for row in &truth[1..] {
            let key = (row[0].clone(), row[2].clone(), row[3].clone());
            if let Some(prev) = &previous {
                assert!(prev < &key, "truth not sorted at {key:?}");
            }
            previous = Some(key);
            typologies.insert(row[1].clone());
            match row[2].as_str() {
                "account" => assert!(
                    account_set.contains(row[3].as_str()),
                    "truth account {}",
                    row[3]
                ),
                "transaction" => {
                    assert!(tx_ids.contains(&row[3]), "truth tx {}", row[3]);
                    assert!(row[4].is_empty());
                }
                other => panic!("bad truth kind {other}"),
            }
        }
        for code in [
            "TC-01",
            "TC-02",
            "TC-03",
            "TC-04",
            "TC-05",
            "TC-06",
            "TC-09",
            "TC-10",
            "TC-11",
            "TC-12",
            "cycle",
            "legit_aggregator",
        ] {
            assert!(typologies.contains(code), "{code} missing from truth");
        }
    }

    #[test]
    fn aggregators_never_receive_settlements() {
        let (dir, _) = generated(&small());
        let txs = rows(&dir.path().join("transactions.csv"));
        let truth = rows(&dir.path().join("truth.csv"));
        let decoys: BTreeSet<&str> = truth[1..]
            .iter()
            .filter(|r| r[1] == "legit_aggregator")
            .map(|r| r[3].as_str())
            .collect();
        assert!(!decoys.is_empty());
        let mut fees = 0;
        for tx in &txs[1..] {
            if decoys.contains(tx[3].as_str()) {
                assert_ne!(tx[6], "settlement", "aggregator {} got a settlement", tx[3]);
                fees += usize::from(tx[6] == "fee");
            }
        }
        assert!(fees > 0, "aggregators earn commission");
        assert!(txs[1..].iter().any(|tx| tx[8] == "aggregator"));
    }

    #[test]
    fn schemes_have_their_shape() {
        let (dir, _) = generated(&ScenarioConfig::default());
        let txs = rows(&dir.path().join("transactions.csv"));
        let merchants = rows(&dir.path().join("merchants.csv"));
        let accounts = rows(&dir.path().join("accounts.csv"));
        let truth = rows(&dir.path().join("truth.csv"));
        let total = txs.len() - 1;
        assert!((20_000..=60_000).contains(&total), "{total} transactions");

        // TC-02: some settlement account is shared by ≥ 10 merchants with different holders.
        let mut holders_by_account: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for m in &merchants[1..] {
            holders_by_account
                .entry(m[3].as_str())
                .or_default()
                .insert(m[2].as_str());
        }
        assert!(holders_by_account.values().any(|h| h.len() >= 10));

        // TC-10: ≥ 12 cash deposits just under 50,000 on one account.
        let mut structured: BTreeMap<&str, usize> = BTreeMap::new();
        for tx in &txs[1..] {
            let fen = parse_fen(&tx[4]).unwrap_or(0);
            if tx[6] == "cash_in" && (4_500_000..5_000_000).contains(&fen) {
                *structured.entry(tx[3].as_str()).or_default() += 1;
            }
        }
        assert!(structured.values().any(|&n| n >= 12));

        // Hubs pay out to ≥ 10 distinct payees.
        let hubs: BTreeSet<&str> = truth[1..]
            .iter()
            .filter(|r| r[1] == "TC-04" && r[4] == "hub")
            .map(|r| r[3].as_str())
            .collect();
        assert!(hubs.len() >= 3);
        for hub in &hubs {
            let payees: BTreeSet<&str> = txs[1..]
                .iter()
                .filter(|tx| tx[2] == *hub)
                .map(|tx| tx[3].as_str())
                .collect();
            assert!(payees.len() >= 10, "hub {hub} has {} payees", payees.len());
        }

        let labelled: BTreeSet<&str> = truth[1..]
            .iter()
            .filter(|r| r[2] == "transaction")
            .map(|r| r[3].as_str())
            .collect();
        assert!(
            labelled.len() * 2 < total,
            "background must be the majority"
        );

        // XSS fixtures are present once.
        assert_eq!(
            merchants[1..]
                .iter()
                .filter(|m| m[1] == population::XSS_MERCHANT_NAME)
                .count(),
            1
        );
        assert_eq!(
            txs[1..].iter().filter(|tx| tx[10] == sim::XSS_MEMO).count(),
            1
        );
        // Licensed accounts are acquirers and banks only.
        for a in &accounts[1..] {
            assert_eq!(a[5] == "true", a[4] == "acquirer" || a[4] == "bank");
        }
    }

    #[test]
    fn demo_is_small_but_complete() {
        let (_dir, summary) = generated(&demo_config());
        assert!(
            (3_000..=8_000).contains(&summary.transactions),
            "{} transactions",
            summary.transactions
        );
    }

    #[test]
    fn rejects_bad_config() {
        let dir = tempfile::tempdir().expect("tempdir");
        for cfg in [
            ScenarioConfig { days: 0, ..small() },
            ScenarioConfig {
                scale: 0.0,
                ..small()
            },
            ScenarioConfig {
                scale: f64::NAN,
                ..small()
            },
            ScenarioConfig {
                consumers: 1,
                ..small()
            },
        ] {
            assert!(matches!(
                generate_two_clear(&cfg, dir.path()),
                Err(GenerateError::InvalidConfig(_))
            ));
        }
    }
}
