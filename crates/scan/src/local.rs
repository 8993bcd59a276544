//! Scans of some accounts only: the rules whose findings on an account rest on that
//! account's own transactions and the registries ([`Rule::local`]), evaluated over a graph
//! of those accounts' transactions read from the store. The stream workers run one after
//! each committed batch, for the accounts its transactions touched, so those rules' alerts
//! are stored as the transactions arrive; a whole-store scan would store the same ones.

use std::collections::{BTreeSet, HashMap, HashSet};

use clearwatch_detect::{self as detect, Inputs, Part, ScanReport, Stop};
use clearwatch_graph::GraphBuilder;
use clearwatch_model::{Account, Merchant, Transaction};
use clearwatch_rules::Rule;
use clearwatch_store::scans::{RuleScan, ScanSave, ScanSaved, Supersede};
use clearwatch_store::{AnyStore, IngestStore, ScanStore};

use crate::{ScanError, rule_version};

/// The registries, kept between scans of accounts and read again only when a registry
/// batch was loaded since (a scan of a few accounts should not re-read every account).
#[derive(Default)]
pub struct LocalScanner {
    registry_batch: Option<i64>,
    accounts: HashMap<String, Account>,
    merchants: HashMap<String, Merchant>,
}

/// What a scan of some accounts did.
pub struct LocalScan {
    pub report: ScanReport,
    pub saved: ScanSaved,
}

impl LocalScanner {
    /// Evaluates the local rules of `rules` for `accounts`, each over all its windows, and
    /// stores their alerts on those accounts in place of the earlier ones (as
    /// [`ScanStore::save_scan`] replaces them). Rules that are not local are left out.
    pub async fn scan(
        &mut self,
        store: &AnyStore,
        rules: &[&Rule],
        accounts: &BTreeSet<String>,
    ) -> Result<LocalScan, ScanError> {
        let rules: Vec<&Rule> = rules.iter().copied().filter(|r| r.local).collect();
        if rules.is_empty() || accounts.is_empty() {
            return Ok(LocalScan {
                report: ScanReport::default(),
                saved: ScanSaved::default(),
            });
        }
        let newest = store.newest_batches().await?;
        if self.registry_batch != Some(newest.registry) {
            self.accounts = store
                .accounts()
                .await?
                .into_iter()
                .map(|a| (a.account_id.clone(), a))
                .collect();
            self.merchants = store
                .merchants()
                .await?
                .into_iter()
                .map(|m| (m.merchant_id.clone(), m))
                .collect();
            self.registry_batch = Some(newest.registry);
        }
        let ids: Vec<String> = accounts.iter().cloned().collect();
        let mut txs: Vec<Transaction> = Vec::new();
        store.each_transaction_of(&ids, |t| txs.push(t)).await?;
        // Only the records the graph's transactions name: the subjects' own and their
        // counterparties' (roles, holders), and the merchants of record.
        let mut named: BTreeSet<&str> = accounts.iter().map(String::as_str).collect();
        let mut merchants: BTreeSet<&str> = BTreeSet::new();
        for t in &txs {
            named.insert(&t.from);
            named.insert(&t.to);
            if let Some(m) = &t.merchant_id {
                merchants.insert(m);
            }
        }
        let records: Vec<Account> = named
            .iter()
            .filter_map(|a| self.accounts.get(*a).cloned())
            .collect();
        // And the merchants settled into those accounts or held by their holders: whether
        // an account is its own holder's merchant account (`own_merchant_account`) and
        // whether its holder holds a merchant (`holds_merchant`) read them.
        let holders: BTreeSet<&str> = records
            .iter()
            .filter_map(|a| a.holder_id.as_deref())
            .filter(|h| !h.is_empty())
            .collect();
        let mut merchant_records: Vec<Merchant> = self
            .merchants
            .values()
            .filter(|m| {
                merchants.contains(m.merchant_id.as_str())
                    || m.settlement_account
                        .as_deref()
                        .is_some_and(|a| named.contains(a))
                    || m.holder_id.as_deref().is_some_and(|h| holders.contains(h))
            })
            .cloned()
            .collect();
        merchant_records.sort_by(|a, b| a.merchant_id.cmp(&b.merchant_id));
        let mut builder = GraphBuilder::with_records(&records, &merchant_records);
        for t in &txs {
            builder.add_transaction(t);
        }
        drop(txs);
        let graph = builder.build();
        let inputs = Inputs {
            accounts: !self.accounts.is_empty(),
            merchants: !self.merchants.is_empty(),
        };
        let only: HashSet<String> = accounts.iter().cloned().collect();
        let jobs: Vec<(&Rule, Part)> = rules
            .iter()
            .map(|r| (*r, Part::Subjects(only.clone())))
            .collect();
        let report = detect::run_parts(&jobs, &graph, inputs, &Stop::default());
        let skipped: BTreeSet<&str> = report.skipped.iter().map(|s| s.rule_id.as_str()).collect();
        let saves: Vec<RuleScan> = rules
            .iter()
            .map(|r| RuleScan {
                version: rule_version(r),
                supersede: if skipped.contains(r.id.as_str()) {
                    Supersede::Nothing
                } else {
                    Supersede::Subjects(accounts.clone())
                },
                mark: None,
            })
            .collect();
        let saved = store
            .save_scan(ScanSave {
                alerts: &report.alerts,
                episodes: &report.episodes,
                rules: &saves,
            })
            .await?;
        Ok(LocalScan { report, saved })
    }
}
