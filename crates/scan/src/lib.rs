//! The scan service: the one place where "take the effective rule pack, build the graph
//! from a store or from input files, run the rules, save the alerts" happens. The CLI's
//! `scan`, `demo` and `eval`, and the dashboard's rules pages and backtest, all call it,
//! so they all treat published rule versions the same way:
//!
//! - a store's scan runs, for each rule id with a version published from the dashboard,
//!   its newest published version instead of the file ([`Pack::load`] with
//!   [`Published::Use`]);
//! - a published version that no longer compiles (say, a shared macro changed) makes the
//!   pack refuse to run ([`Pack::runnable`]) until a fixed version is published or the
//!   scan asks for the files only ([`Published::Ignore`]). A scan never silently runs
//!   something other than what was published.

pub mod local;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clearwatch_detect::{self as detect, Inputs, Part, ScanReport, Stop};
use clearwatch_graph::load::{FileLoad, from_files};
use clearwatch_graph::{GraphBuilder, TemporalGraph};
use clearwatch_ingest::{IngestError, Profile};
use clearwatch_model::{Alert, Millis, StoredAlert, Subject};
use clearwatch_rules::Diagnostic;
use clearwatch_rules::load::{self, PackSource, Replaced, RuleSet};
use clearwatch_rules::{Rule, RuleStatus};
use clearwatch_store::AlertStore;
use clearwatch_store::IngestStore;
use clearwatch_store::ListStore;
use clearwatch_store::ScanStore;
use clearwatch_store::cases::StoredRuleVersion;
use clearwatch_store::scans::{Batches, RuleScan, ScanSave, ScanSaved, Since, Supersede};
use clearwatch_store::{AlertFilter, AnyStore, RuleVersion, SaveReport, StoreError};

/// Why a scan could not run.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{} error(s) in rules: fix them or run `clearwatch rules lint`", .0.len())]
    Rules(Vec<Diagnostic>),
    #[error(
        "{} error(s) in rule versions published from the dashboard: publish a fixed version, or scan with --files-only",
        .0.len()
    )]
    Published(Vec<Diagnostic>),
    #[error("no rule {0} in the pack")]
    NoSuchRule(String),
    #[error("the text defines rule {found}, not {expected}")]
    WrongRule { expected: String, found: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("the scan worker stopped: {0}")]
    Worker(String),
    #[error("stopped after {} s, its time budget: narrow the rule's window or step, or the data", .0.as_secs())]
    OverBudget(Duration),
    #[error("stopped: the request was cancelled")]
    Cancelled,
}

impl ScanError {
    /// The diagnostics behind the error, if it is about rules.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ScanError::Rules(d) | ScanError::Published(d) => d,
            _ => &[],
        }
    }
}

/// Whether a store's published rule versions replace the rule files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    Use,
    Ignore,
}

/// One rule replaced by its published version, and who published it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromStore {
    pub replaced: Replaced,
    pub published_by: Option<String>,
    pub published_at: String,
}

/// The effective rule pack: the rule files, with published versions applied.
pub struct Pack {
    pub set: RuleSet,
    pub source: PackSource,
    /// Rules that run their published version.
    pub from_store: Vec<FromStore>,
    /// Published versions that no longer compile: the pack refuses to run while any is
    /// left (see the crate documentation).
    pub broken: Vec<Diagnostic>,
    /// Lists that the rules the pack runs (published versions in place of their files,
    /// deprecated rules aside) read with `in_list` and the store does not have (a misspelt
    /// name makes `in_list` false for every value): set by [`Pack::load`], sorted.
    pub unknown_lists: Vec<String>,
}

impl Pack {
    /// Loads the rules of `source`; every diagnostic of the files is an error.
    pub fn files(source: PackSource) -> Result<Pack, ScanError> {
        let (set, diags) = load::load_pack(&source);
        if !diags.is_empty() {
            return Err(ScanError::Rules(diags));
        }
        Ok(Pack {
            set,
            source,
            from_store: Vec::new(),
            broken: Vec::new(),
            unknown_lists: Vec::new(),
        })
    }

    /// Loads the rules of `source` and, with [`Published::Use`], applies the versions
    /// published to `store`; `in_list` reads the store's lists as they are now.
    pub async fn load(
        source: PackSource,
        store: &AnyStore,
        published: Published,
    ) -> Result<Pack, ScanError> {
        let src = source.clone();
        let mut pack = tokio::task::spawn_blocking(move || Pack::files(src))
            .await
            .map_err(|e| ScanError::Worker(e.to_string()))??;
        if published == Published::Use {
            let stored = store.published_rules().await?;
            pack.apply(&stored);
        }
        // The watch and allow lists as they stand now: `in_list` reads them for this scan.
        pack.set.shared.lists.set(store.list_values().await?);
        let known: BTreeSet<String> = store.lists().await?.into_iter().map(|l| l.name).collect();
        let read: BTreeSet<&String> = pack
            .set
            .rules
            .iter()
            .filter(|r| r.status != RuleStatus::Deprecated)
            .flat_map(|r| r.lists.iter())
            .collect();
        pack.unknown_lists = read
            .into_iter()
            .filter(|n| !known.contains(*n))
            .cloned()
            .collect();
        Ok(pack)
    }

    /// One warning per list that the rules name and the store does not have.
    pub fn unknown_list_warnings(&self) -> Vec<String> {
        self.unknown_lists
            .iter()
            .map(|n| {
                format!(
                    "the rules read list `{n}`, which the store does not have: \
                     in_list(\"{n}\", …) is false for every value until a list of that name \
                     is created (dashboard: Lists)"
                )
            })
            .collect()
    }

    fn apply(&mut self, stored: &[StoredRuleVersion]) {
        if stored.is_empty() {
            return;
        }
        let texts: Vec<(String, String)> = stored
            .iter()
            .map(|p| (p.rule_id.clone(), p.text.clone()))
            .collect();
        let (replaced, diags) = load::apply_published(&mut self.set, &texts);
        self.broken = diags;
        self.from_store = replaced
            .into_iter()
            .map(|r| {
                let p = stored.iter().find(|p| p.rule_id == r.rule_id);
                FromStore {
                    published_by: p.and_then(|p| p.published_by.clone()),
                    published_at: p.map(|p| p.created_at.clone()).unwrap_or_default(),
                    replaced: r,
                }
            })
            .collect();
    }

    /// The pack, if it may run (no broken published version).
    pub fn runnable(&self) -> Result<&Pack, ScanError> {
        if self.broken.is_empty() {
            Ok(self)
        } else {
            Err(ScanError::Published(self.broken.clone()))
        }
    }

    /// The rules whose status is one of `statuses`.
    pub fn with_status(&self, statuses: &[RuleStatus]) -> Vec<&Rule> {
        self.set
            .rules
            .iter()
            .filter(|r| statuses.contains(&r.status))
            .collect()
    }

    /// Every rule but the deprecated ones.
    pub fn active(&self) -> Vec<&Rule> {
        self.set
            .rules
            .iter()
            .filter(|r| r.status != RuleStatus::Deprecated)
            .collect()
    }

    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.set.rules.iter().find(|r| r.id == id)
    }

    /// The ids of the rules that run their published version.
    pub fn published_ids(&self) -> BTreeSet<String> {
        self.from_store
            .iter()
            .map(|f| f.replaced.rule_id.clone())
            .collect()
    }

    /// A draft of a new rule, compiled as a file of the pack named after the id its text
    /// declares (`NEW-01-draft.yaml`), so lint reports what adding the file would: an id
    /// the pack already has is a duplicate.
    pub fn compile_draft(&self, text: &str) -> Result<Rule, Vec<Diagnostic>> {
        let id = load::declared_id(text).unwrap_or_else(|| "draft".to_string());
        let path = PathBuf::from(format!("{id}-draft.yaml"));
        if let Some(existing) = self.rule(&id) {
            let line = text
                .lines()
                .position(|l| l.starts_with("id:"))
                .map_or(0, |i| i + 1);
            return Err(vec![
                Diagnostic::new(&path, line, 1, format!("duplicate rule id `{id}`")).with_help(
                    Some(format!(
                        "{} defines it: give the draft an id of its own, or edit {id} on its page",
                        existing.path.display()
                    )),
                ),
            ]);
        }
        load::compile_text(&self.set, &path, text)
    }

    /// Compiles `text` as the file of rule `id` in this pack (same `_shared`, so its
    /// version is the one a scan computes for this text).
    pub fn compile_edit(&self, id: &str, text: &str) -> Result<Rule, Vec<Diagnostic>> {
        let path = self
            .rule(id)
            .map_or_else(|| PathBuf::from(format!("{id}.yaml")), |r| r.path.clone());
        load::compile_text(&self.set, &path, text)
    }
}

/// What a scan produced.
pub struct Scanned {
    pub report: ScanReport,
    pub graph: TemporalGraph,
    /// Which optional inputs the graph was built with.
    pub inputs: Inputs,
    /// How many rules ran.
    pub rules: usize,
    /// Time spent reading the input and building the graph.
    pub load: Duration,
    /// What the input files amounted to (file scans only).
    pub file_load: Option<FileLoad>,
}

/// The time range of a scan: transactions with `ts` in `[from, until)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Range {
    pub from: Option<Millis>,
    pub until: Option<Millis>,
}

/// Input files of an in-memory scan.
#[derive(Debug, Clone)]
pub struct InputFiles {
    pub transactions: PathBuf,
    pub accounts: Option<PathBuf>,
    pub merchants: Option<PathBuf>,
    pub profile: Profile,
}

/// A builder holding what `store` has (transactions with `ts` in `range` streamed in one
/// row at a time) and whether accounts and merchants were registered. `build()` is left
/// to the caller, which may run it off the async runtime.
pub async fn graph_of_store(
    store: &AnyStore,
    range: Range,
) -> Result<(GraphBuilder, Inputs), StoreError> {
    let accounts = store.accounts().await?;
    let merchants = store.merchants().await?;
    let inputs = Inputs {
        accounts: !accounts.is_empty(),
        merchants: !merchants.is_empty(),
    };
    let mut builder = GraphBuilder::with_records(&accounts, &merchants);
    drop((accounts, merchants));
    store
        .each_transaction(range.from, range.until, |t| builder.add_transaction(&t))
        .await?;
    Ok((builder, inputs))
}

/// Runs `rules` over input files, in memory; nothing is stored.
pub fn scan_files(files: &InputFiles, rules: &[&Rule], range: Range) -> Result<Scanned, ScanError> {
    let started = Instant::now();
    let (graph, file_load) = from_files(
        &files.transactions,
        files.accounts.as_deref(),
        files.merchants.as_deref(),
        &files.profile,
        range.from,
        range.until,
    )?;
    let load = started.elapsed();
    let inputs = Inputs {
        accounts: files.accounts.is_some(),
        merchants: files.merchants.is_some(),
    };
    let report = detect::run(rules, &graph, inputs);
    Ok(Scanned {
        report,
        graph,
        inputs,
        rules: rules.len(),
        load,
        file_load: Some(file_load),
    })
}

/// Runs `rules` over what the store holds in `range`; nothing is stored (see [`save`]).
pub async fn scan_store(
    store: &AnyStore,
    rules: &[&Rule],
    range: Range,
) -> Result<Scanned, ScanError> {
    let started = Instant::now();
    let (builder, inputs) = graph_of_store(store, range).await?;
    let graph = builder.build();
    let load = started.elapsed();
    let report = detect::run(rules, &graph, inputs);
    Ok(Scanned {
        report,
        graph,
        inputs,
        rules: rules.len(),
        load,
        file_load: None,
    })
}

/// Whether a store scan may evaluate only what was loaded since each rule's last scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Incremental,
    /// Every rule over the whole store (`scan --full`).
    Full,
    /// As [`Mode::Incremental`], except that the transactions loaded since are left to
    /// the stream workers for local rules ([`Rule::local`]) when those workers evaluated
    /// them for the accounts they touched before acknowledging them ([`Plan::Streamed`],
    /// [`ScanStore::streamed_since_mark`]).
    Stream,
}

/// Why a rule ran over the whole store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whole {
    /// `scan --full`.
    Asked,
    /// This rule version never scanned the store.
    FirstScan,
    /// Accounts or merchants were loaded since its last scan.
    Registry,
    /// It reads account figures of the whole loaded period (`out_count`, `payers`…).
    WholePeriod,
    /// Its kind has no windows that bound what it reads.
    Kind(&'static str),
    /// A batch loaded before batches recorded their time span.
    UnknownSpan,
}

impl std::fmt::Display for Whole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Whole::Asked => write!(f, "--full"),
            Whole::FirstScan => write!(f, "first scan of this version"),
            Whole::Registry => write!(f, "accounts or merchants loaded since its last scan"),
            Whole::WholePeriod => write!(f, "it reads figures of the whole loaded period"),
            Whole::Kind(k) => write!(f, "kind {k} is always evaluated in full"),
            Whole::UnknownSpan => write!(f, "a batch without a recorded time span"),
        }
    }
}

/// What a store scan did with one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Nothing was loaded since this rule version last scanned the store.
    Unchanged,
    /// Only transactions were loaded since, all by stream workers that evaluated this
    /// local rule for the accounts they touched, after this rule's last scan was saved
    /// ([`Mode::Stream`]).
    Streamed,
    /// Every window, for this reason.
    Whole(Whole),
    /// The windows holding some time in `[from, until]` (what was loaded since its last
    /// scan, and with history every later window), then every subject firing there or
    /// alerted there before, over all its windows.
    Windows {
        from: Millis,
        until: Millis,
        /// How many windows that is, up to the last loaded transaction.
        windows: u64,
        /// How many subjects were then evaluated over all their windows.
        subjects: usize,
    },
}

/// One rule of a store scan, and what the scan did with it.
#[derive(Debug, Clone)]
pub struct RulePlan {
    pub rule_id: String,
    pub plan: Plan,
}

/// What a whole-store scan did.
pub struct StoreScan {
    pub scanned: Scanned,
    pub plans: Vec<RulePlan>,
    pub saved: ScanSaved,
}

/// Scans the whole store with `rules` and stores the results. In [`Mode::Incremental`],
/// each rule version evaluates only the windows that the transactions loaded since its
/// last scan touch, and the subjects alerted there; its stored alerts on those subjects
/// are replaced ([`ScanStore::save_scan`]), so the stored alerts equal those of a full
/// scan of the same data. Rules that cannot be bounded that way run in full ([`Whole`]).
pub async fn scan_store_marked(
    store: &AnyStore,
    rules: &[&Rule],
    mode: Mode,
) -> Result<StoreScan, ScanError> {
    let newest = store.newest_batches().await?;
    let marks: HashMap<(String, String), Batches> = store
        .scan_marks()
        .await?
        .into_iter()
        .map(|m| ((m.rule_id, m.rule_version), m.seen))
        .collect();
    let mut since_cache: HashMap<i64, Since> = HashMap::new();
    let mut plans = Vec::with_capacity(rules.len());
    for r in rules {
        let mark = marks.get(&(r.id.clone(), r.version.clone()));
        let plan = match (mode, mark) {
            (Mode::Full, _) => Plan::Whole(Whole::Asked),
            (_, None) => Plan::Whole(Whole::FirstScan),
            (_, Some(m)) if m.registry != newest.registry => Plan::Whole(Whole::Registry),
            (_, Some(m)) if m.transactions == newest.transactions => Plan::Unchanged,
            (_, Some(m)) if m.transactions > newest.transactions => Plan::Whole(Whole::FirstScan),
            (Mode::Stream, Some(_))
                if r.local && store.streamed_since_mark(&rule_version(r)).await? =>
            {
                Plan::Streamed
            }
            (_, Some(m)) => {
                let since = match since_cache.get(&m.transactions) {
                    Some(s) => *s,
                    None => {
                        let s = store.loaded_since(m.transactions).await?;
                        since_cache.insert(m.transactions, s);
                        s
                    }
                };
                match (since, r.reach) {
                    (Since::Nothing, _) => Plan::Unchanged,
                    (Since::Unknown, _) => Plan::Whole(Whole::UnknownSpan),
                    (Since::Span(..), None) if r.kind == "star" => Plan::Whole(Whole::WholePeriod),
                    (Since::Span(..), None) => Plan::Whole(Whole::Kind(r.kind)),
                    (Since::Span(first, last), Some(reach)) => {
                        let (from, until) = reach.span(first, last);
                        Plan::Windows {
                            from,
                            until,
                            windows: 0,
                            subjects: 0,
                        }
                    }
                }
            }
        };
        plans.push(RulePlan {
            rule_id: r.id.clone(),
            plan,
        });
    }
    let mut jobs: Vec<(&Rule, Part)> = Vec::new();
    for (r, p) in rules.iter().zip(&plans) {
        match &p.plan {
            Plan::Unchanged | Plan::Streamed => {}
            Plan::Whole(_) => jobs.push((r, Part::All)),
            Plan::Windows { from, until, .. } => {
                let also = store
                    .episode_subjects(&rule_version(r), *from, *until)
                    .await?;
                let span = (*from, *until);
                jobs.push((
                    r,
                    Part::Around {
                        span,
                        also: also.into_iter().collect(),
                    },
                ));
            }
        }
    }
    let started = Instant::now();
    let (builder, inputs) = if jobs.is_empty() {
        (GraphBuilder::new(), Inputs::default())
    } else {
        graph_of_store(store, Range::default()).await?
    };
    let graph = builder.build();
    let load = started.elapsed();
    let report = detect::run_parts(&jobs, &graph, inputs, &Stop::default());
    let last_ts = graph.ts.iter().copied().max().unwrap_or(0);
    let skipped: BTreeSet<&str> = report.skipped.iter().map(|s| s.rule_id.as_str()).collect();
    let mut saves = Vec::new();
    for (r, p) in rules.iter().zip(plans.iter_mut()) {
        if let Plan::Windows {
            from,
            until,
            windows,
            subjects,
        } = &mut p.plan
        {
            if let Some(reach) = r.reach {
                *windows = reach
                    .windows
                    .count_covering(*from, (*until).min(last_ts), r.time_zone);
            }
            *subjects = report.partial.get(&r.id).map_or(0, BTreeSet::len);
        }
        let ran = !skipped.contains(r.id.as_str());
        let supersede = match &p.plan {
            _ if !ran => Supersede::Nothing,
            Plan::Unchanged | Plan::Streamed => Supersede::Nothing,
            Plan::Whole(_) => Supersede::All,
            Plan::Windows { .. } => {
                Supersede::Subjects(report.partial.get(&r.id).cloned().unwrap_or_default())
            }
        };
        saves.push(RuleScan {
            version: rule_version(r),
            supersede,
            mark: ran.then_some(newest),
        });
    }
    let saved = store
        .save_scan(ScanSave {
            alerts: &report.alerts,
            episodes: &report.episodes,
            rules: &saves,
        })
        .await?;
    if !jobs.is_empty() {
        // The graph holds the whole store: its accounts' inferred roles replace the last.
        store.save_inferred_roles(&inferred_roles(&graph)).await?;
    }
    let rules_run = report.timings.len();
    Ok(StoreScan {
        scanned: Scanned {
            report,
            graph,
            inputs,
            rules: rules_run,
            load,
            file_load: None,
        },
        plans,
        saved,
    })
}

/// The accounts of `graph` whose behaviour shows a role the registry does not give
/// ([`clearwatch_model::roles`]), with that role.
pub fn inferred_roles(graph: &TemporalGraph) -> Vec<(String, clearwatch_model::Role)> {
    (0..graph.account_count() as clearwatch_graph::AccountId)
        .filter_map(|a| {
            let role = graph.inferred_role(a);
            (role != clearwatch_model::Role::Unknown)
                .then(|| (graph.account_name(a).to_string(), role))
        })
        .collect()
}

impl Scanned {
    /// Runs `rule` again over the graph this scan built (a parameter sweep): the graph is
    /// read and built once for every value tried.
    pub fn rerun(&self, rule: &Rule) -> ScanReport {
        detect::run(&[rule], &self.graph, self.inputs)
    }
}

/// Stores the alerts of a scan and the versions of the rules that ran (re-running adds
/// nothing new; a changed rule version makes new alerts).
pub async fn save(
    store: &AnyStore,
    rules: &[&Rule],
    alerts: &[Alert],
) -> Result<SaveReport, ScanError> {
    let versions: Vec<RuleVersion> = rules.iter().map(|r| rule_version(r)).collect();
    Ok(store.save_alerts(alerts, &versions).await?)
}

/// A rule as the store keeps its versions.
pub fn rule_version(r: &Rule) -> RuleVersion {
    RuleVersion {
        rule_id: r.id.clone(),
        version: r.version.clone(),
        title: r.title.clone(),
        text: r.text.clone(),
    }
}

/// How a subject's alerts change in a backtest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// The subject would be alerted and is not now.
    Appears,
    /// The subject is alerted now and would not be.
    Disappears,
    /// Alerted both ways, with other windows or scores.
    Changed,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Appears => "appears",
            Change::Disappears => "disappears",
            Change::Changed => "changed",
        }
    }
}

/// One subject whose alerts a backtest changes: what an analyst would see in the queue.
#[derive(Debug, Clone)]
pub struct SubjectChange {
    pub subject: Subject,
    pub change: Change,
    /// The edited rule's highest-scoring alert on the subject (the earliest on ties), and
    /// how many it would raise.
    pub new: Option<Alert>,
    pub new_alerts: usize,
    /// The stored alert with the highest score on the subject, and how many are stored.
    pub old: Option<StoredAlert>,
    pub old_alerts: usize,
}

impl SubjectChange {
    /// The highest score before and after.
    pub fn scores(&self) -> (Option<u32>, Option<u32>) {
        (
            self.old.as_ref().map(|a| a.alert.score),
            self.new.as_ref().map(|a| a.score),
        )
    }
}

/// What a backtest of one rule found, against its stored alerts, subject by subject:
/// windows are how a rule reports, subjects are what analysts triage.
#[derive(Debug, Clone, Default)]
pub struct Backtest {
    /// Subjects that appear, disappear or change; by change, then highest score (highest
    /// first), then subject.
    pub subjects: Vec<SubjectChange>,
    /// Subjects alerted the same way (same windows and scores) both times.
    pub unchanged: usize,
    /// Searches of the rule cut short at its work cap, if any.
    pub capped: Option<detect::Capped>,
}

impl Backtest {
    pub fn count(&self, change: Change) -> usize {
        self.subjects.iter().filter(|s| s.change == change).count()
    }
}

/// Compares the alerts a rule would raise with its stored ones, per subject.
pub fn compare_by_subject(
    new: Vec<Alert>,
    stored: Vec<StoredAlert>,
) -> (Vec<SubjectChange>, usize) {
    use std::collections::BTreeMap;
    let mut by: BTreeMap<Subject, (Vec<Alert>, Vec<StoredAlert>)> = BTreeMap::new();
    for a in new {
        by.entry(a.subject.clone()).or_default().0.push(a);
    }
    for a in stored {
        by.entry(a.alert.subject.clone()).or_default().1.push(a);
    }
    let mut unchanged = 0;
    let mut out = Vec::new();
    for (subject, (new, old)) in by {
        // Windows and scores: what an analyst would see change.
        let new_shape: BTreeSet<_> = new
            .iter()
            .map(|a| (a.window.from, a.window.until, a.score))
            .collect();
        let old_shape: BTreeSet<_> = old
            .iter()
            .map(|a| (a.alert.window.from, a.alert.window.until, a.alert.score))
            .collect();
        let change = match (new.is_empty(), old.is_empty()) {
            (false, true) => Change::Appears,
            (true, false) => Change::Disappears,
            _ if new_shape == old_shape => {
                unchanged += 1;
                continue;
            }
            _ => Change::Changed,
        };
        let (new_alerts, old_alerts) = (new.len(), old.len());
        let new = new
            .into_iter()
            .min_by_key(|a| (std::cmp::Reverse(a.score), a.window.from));
        let old = old
            .into_iter()
            .min_by_key(|a| (std::cmp::Reverse(a.alert.score), a.alert.window.from));
        out.push(SubjectChange {
            subject,
            change,
            new,
            new_alerts,
            old,
            old_alerts,
        });
    }
    out.sort_by(|a, b| {
        let top = |s: &SubjectChange| {
            let (o, n) = s.scores();
            o.max(n).unwrap_or(0)
        };
        (a.change, std::cmp::Reverse(top(a)), &a.subject).cmp(&(
            b.change,
            std::cmp::Reverse(top(b)),
            &b.subject,
        ))
    });
    (out, unchanged)
}

/// Sets a [`Stop`] when dropped: a request's work stops when the request goes away.
struct StopOnDrop(Stop);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// Runs `rule` over the whole store and compares its alerts with the stored alerts of
/// its id. Nothing is written. It gives up when `stop` is set, when `budget` runs out,
/// or when the returned future is dropped (a client that went away).
pub async fn backtest(
    store: &AnyStore,
    rule: Rule,
    stop: Stop,
    budget: Duration,
) -> Result<Backtest, ScanError> {
    // No time at all is over budget at once: the timer alone would let work that finishes
    // before its first tick through.
    if budget.is_zero() {
        return Err(ScanError::OverBudget(budget));
    }
    let _guard = StopOnDrop(stop.clone());
    let work = backtest_until(store, rule, stop.clone());
    match tokio::time::timeout(budget, work).await {
        Ok(result) => result,
        Err(_) => {
            stop.stop();
            Err(ScanError::OverBudget(budget))
        }
    }
}

async fn backtest_until(store: &AnyStore, rule: Rule, stop: Stop) -> Result<Backtest, ScanError> {
    let (builder, inputs) = graph_of_store(store, Range::default()).await?;
    let stored = store
        .alerts(&AlertFilter {
            rule_id: Some(rule.id.clone()),
            limit: u64::MAX / 2,
            ..AlertFilter::default()
        })
        .await?;
    let report = tokio::task::spawn_blocking(move || {
        detect::run_until(&[&rule], &builder.build(), inputs, &stop)
    })
    .await
    .map_err(|e| ScanError::Worker(e.to_string()))?;
    if report.stopped {
        return Err(ScanError::Cancelled);
    }
    let (subjects, unchanged) = compare_by_subject(report.alerts, stored);
    Ok(Backtest {
        subjects,
        unchanged,
        capped: report.capped.into_iter().next(),
    })
}
