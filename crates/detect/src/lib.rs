//! Detection: runs a compiled rule pack over a temporal graph, one currency at a time,
//! rules in parallel, and turns findings into scored, summarised, deterministic alerts;
//! and runs the test cases rule files carry ([`testing`]).

pub mod testing;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use clearwatch_model::{Alert, Evidence, Millis, Subject, Window};

use clearwatch_graph::{AccountId, EdgeId, TemporalGraph};
use clearwatch_rules::Rule;
use clearwatch_rules::aggregate::Unit;
pub use clearwatch_rules::kinds::Stop;
use clearwatch_rules::kinds::{Caps, Exec, Finding};
use clearwatch_rules::scope::{Metric, Scope};
use clearwatch_rules::template::Values;

/// Which optional inputs the graph was built with.
#[derive(Debug, Clone, Copy, Default)]
pub struct Inputs {
    pub accounts: bool,
    pub merchants: bool,
}

/// A rule that did not run, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    pub rule_id: String,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct ScanReport {
    pub alerts: Vec<Alert>,
    pub skipped: Vec<Skipped>,
    /// The run was stopped before every rule finished (see [`Stop`]): the alerts are
    /// incomplete and must not be used as a result.
    pub stopped: bool,
    /// How long each rule ran (rule id, duration), in the order of the rules given.
    pub timings: Vec<(String, std::time::Duration)>,
    /// Rules whose searches were cut short at a work cap, in the order of the rules given.
    pub capped: Vec<Capped>,
    /// Alert id → the span of the episode it reports (its first window's start to its
    /// last window's end).
    pub episodes: HashMap<String, Window>,
    /// Rules run for part of their subjects ([`Part::Around`], [`Part::Subjects`]) →
    /// those subjects' ids.
    pub partial: BTreeMap<String, BTreeSet<String>>,
}

/// A rule some of whose searches stopped at the detector's work cap: alerts through them
/// may be missing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Capped {
    pub rule_id: String,
    pub capped: usize,
    pub searches: usize,
}

impl std::fmt::Display for Capped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "rule {} stopped {} of {} searches at its work cap: alerts through them may be missing",
            self.rule_id, self.capped, self.searches
        )
    }
}

/// One rule's results, or why it did not run.
type RuleOutcome = Result<RuleDone, Skipped>;

/// Runs `rules` over `g`. Output is sorted by rule, subject and window.
pub fn run(rules: &[&Rule], g: &TemporalGraph, inputs: Inputs) -> ScanReport {
    run_until(rules, g, inputs, &Stop::default())
}

/// [`run`], giving up as soon as `stop` is set (the report then says it was stopped).
pub fn run_until(rules: &[&Rule], g: &TemporalGraph, inputs: Inputs, stop: &Stop) -> ScanReport {
    let jobs: Vec<(&Rule, Part)> = rules.iter().map(|r| (*r, Part::All)).collect();
    run_parts(&jobs, g, inputs, stop)
}

/// Which of a rule's results to compute.
#[derive(Debug, Clone, Default)]
pub enum Part {
    /// Every subject, every window.
    #[default]
    All,
    /// The subjects that fire in a window holding some time in `span`, and those in
    /// `also` (subjects that fired there before), each over all its windows: exactly
    /// their alerts of a whole run, episodes included. Needs a rule with a reach; an
    /// incremental scan stores them in place of the subjects' earlier alerts.
    Around {
        span: (Millis, Millis),
        also: HashSet<String>,
    },
    /// These subjects only, each over all its windows: their alerts of a whole run when
    /// the graph holds all their transactions and the rule is local ([`Rule::local`]).
    Subjects(HashSet<String>),
}

/// Runs each rule over `g` for the part of its results asked for, rules in parallel,
/// giving up as soon as `stop` is set.
pub fn run_parts(
    jobs: &[(&Rule, Part)],
    g: &TemporalGraph,
    inputs: Inputs,
    stop: &Stop,
) -> ScanReport {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, RuleOutcome, std::time::Duration)>> = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(jobs.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((rule, part)) = jobs.get(i) else {
                        break;
                    };
                    if stop.is_set() {
                        break;
                    }
                    let started = std::time::Instant::now();
                    let out = run_rule(rule, part, g, inputs, stop);
                    let took = started.elapsed();
                    results
                        .lock()
                        .expect("no worker panics holding the lock")
                        .push((i, out, took));
                }
            });
        }
    });
    let mut results = results.into_inner().expect("workers finished");
    results.sort_by_key(|(i, _, _)| *i);
    let mut report = ScanReport::default();
    for (i, r, took) in results {
        let id = &jobs[i].0.id;
        report.timings.push((id.clone(), took));
        match r {
            Ok(done) => {
                report.alerts.extend(done.alerts);
                report.episodes.extend(done.episodes);
                if let Some(subjects) = done.subjects {
                    report.partial.insert(id.clone(), subjects);
                }
                let (capped, searches) = done.caps;
                if capped > 0 {
                    report.capped.push(Capped {
                        rule_id: id.clone(),
                        capped,
                        searches,
                    });
                }
            }
            Err(s) => report.skipped.push(s),
        }
    }
    report.stopped = stop.is_set();
    report
        .alerts
        .sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    report
}

/// What one rule produced.
struct RuleDone {
    alerts: Vec<Alert>,
    /// Alert id → the span of its episode.
    episodes: HashMap<String, Window>,
    /// The subjects computed, for a [`Part::Around`] or [`Part::Subjects`].
    subjects: Option<BTreeSet<String>>,
    caps: (usize, usize),
}

fn run_rule(
    rule: &Rule,
    part: &Part,
    g: &TemporalGraph,
    inputs: Inputs,
    stop: &Stop,
) -> Result<RuleDone, Skipped> {
    let missing = match (
        rule.requires_accounts && !inputs.accounts,
        rule.requires_merchants && !inputs.merchants,
    ) {
        (true, true) => Some("needs the account and merchant registries"),
        (true, false) => Some("needs the account registry (--accounts)"),
        (false, true) => Some("needs the merchant registry (--merchants)"),
        (false, false) => None,
    };
    if let Some(reason) = missing {
        return Err(Skipped {
            rule_id: rule.id.clone(),
            reason: reason.to_string(),
        });
    }
    let caps = Caps::default();
    let subjects = match part {
        Part::All => None,
        Part::Around { span, also } => {
            let mut firing = also.clone();
            for c in 0..g.currencies().len() {
                let mut exec = Exec::new(g, c as u8, stop, &caps);
                exec.span = Some(*span);
                exec.zone = rule.time_zone;
                firing.extend(rule.detector.run(&exec).into_iter().map(|f| f.subject.id));
            }
            Some(firing)
        }
        Part::Subjects(only) => Some(only.clone()),
    };
    let mut done = RuleDone {
        alerts: Vec::new(),
        episodes: HashMap::new(),
        subjects: subjects.as_ref().map(|s| s.iter().cloned().collect()),
        caps: (0, 0),
    };
    if subjects.as_ref().is_some_and(HashSet::is_empty) {
        done.caps = caps.counts();
        return Ok(done);
    }
    for (c, currency) in g.currencies().iter().enumerate() {
        let mut exec = Exec::new(g, c as u8, stop, &caps);
        exec.subjects = subjects.as_ref();
        exec.zone = rule.time_zone;
        let mut findings = rule.detector.run(&exec);
        if let Some(only) = &subjects {
            findings.retain(|f| only.contains(&f.subject.id));
        }
        for (f, episode) in episodes(rule, g, findings) {
            let alert = to_alert(rule, &f, currency.code(), g);
            // One subject and window in two currencies share an id: the span covers both.
            done.episodes
                .entry(alert.id.clone())
                .and_modify(|w: &mut Window| {
                    w.from = w.from.min(episode.from);
                    w.until = w.until.max(episode.until);
                })
                .or_insert(episode);
            done.alerts.push(alert);
        }
    }
    done.caps = caps.counts();
    Ok(done)
}

fn score(rule: &Rule, g: &TemporalGraph, metrics: &[Metric]) -> u32 {
    let mut sc = Scope::new(g, rule.time_zone);
    sc.metrics = metrics;
    let total = rule.score_base
        + rule
            .score_mods
            .iter()
            .filter(|(p, _)| p.test(&sc))
            .map(|(_, pts)| *pts)
            .sum::<i64>();
    total.clamp(0, 100) as u32
}

/// Consecutive firing windows of one subject are one episode, reported once: its
/// highest-scoring window, the earliest on ties, with the span of the whole episode and
/// the evidence of every window in it (a burst over three nights shows all three).
fn episodes(rule: &Rule, g: &TemporalGraph, findings: Vec<Finding>) -> Vec<(Finding, Window)> {
    let mut by_subject: BTreeMap<Subject, Vec<Finding>> = BTreeMap::new();
    for f in findings {
        by_subject.entry(f.subject.clone()).or_default().push(f);
    }
    let mut out = Vec::new();
    for (_, mut fs) in by_subject {
        fs.sort_by_key(|f| (f.window_index, f.from));
        let mut open: Option<Episode> = None;
        let mut prev: Option<i64> = None;
        for f in fs {
            let s = score(rule, g, &f.metrics);
            let continues = prev.is_some_and(|p| f.window_index == p + 1);
            prev = Some(f.window_index);
            match &mut open {
                Some(e) if continues => e.add(s, f),
                _ => {
                    out.extend(open.take().map(Episode::close));
                    open = Some(Episode::new(s, f));
                }
            }
        }
        out.extend(open.map(Episode::close));
    }
    out
}

/// An episode being gathered: its best window so far, its span, and the evidence of
/// every window.
struct Episode {
    score: u32,
    best: Finding,
    span: Window,
    edges: EpisodeIds<EdgeId>,
    accounts: EpisodeIds<AccountId>,
}

impl Episode {
    fn new(score: u32, mut f: Finding) -> Self {
        let span = Window {
            from: f.from,
            until: f.until,
        };
        // The best finding's own ids are replaced by the episode's when it closes.
        Episode {
            score,
            edges: EpisodeIds::of(std::mem::take(&mut f.edges)),
            accounts: EpisodeIds::of(std::mem::take(&mut f.accounts)),
            best: f,
            span,
        }
    }

    fn add(&mut self, score: u32, mut f: Finding) {
        self.span.until = self.span.until.max(f.until);
        self.edges.add(&std::mem::take(&mut f.edges));
        self.accounts.add(&std::mem::take(&mut f.accounts));
        if score > self.score {
            self.score = score;
            self.best = f;
        }
    }

    fn close(mut self) -> (Finding, Window) {
        self.best.edges = self.edges.done();
        self.best.accounts = self.accounts.done();
        (self.best, self.span)
    }
}

/// The ids of an episode's windows. Overlapping windows repeat most of them, so the list
/// is deduplicated whenever it doubles since the last time: it stays within twice the
/// episode's distinct ids (or 1,024).
struct EpisodeIds<T> {
    ids: Vec<T>,
    distinct: usize,
}

impl<T: Ord + Copy> EpisodeIds<T> {
    fn of(ids: Vec<T>) -> Self {
        EpisodeIds { ids, distinct: 0 }
    }

    fn add(&mut self, more: &[T]) {
        self.ids.extend_from_slice(more);
        if self.ids.len() >= 2 * self.distinct.max(512) {
            self.compact();
        }
    }

    fn compact(&mut self) {
        self.ids.sort_unstable();
        self.ids.dedup();
        self.distinct = self.ids.len();
    }

    fn done(mut self) -> Vec<T> {
        self.compact();
        self.ids
    }
}

fn metric_json(m: Metric, unit: Unit) -> serde_json::Value {
    let round = |x: f64| {
        if x.is_finite() {
            serde_json::json!((x * 10_000.0).round() / 10_000.0)
        } else {
            serde_json::Value::Null
        }
    };
    match (m, unit) {
        (Metric::Money(minor, exp), _) => {
            serde_json::json!(clearwatch_model::format_amount(minor, exp))
        }
        (Metric::Int(i), _) => serde_json::json!(i),
        (Metric::Float(x), _) => round(x),
    }
}

fn to_alert(rule: &Rule, f: &Finding, currency: &str, g: &TemporalGraph) -> Alert {
    let window = Window {
        from: f.from,
        until: f.until,
    };
    let summary = rule.summary_of(&Values {
        metrics: &f.metrics,
        subject: &f.subject.id,
        from: f.from,
        until: f.until,
        currency,
        params: &rule.params,
        zone: rule.time_zone,
    });
    let metrics = rule
        .metrics
        .iter()
        .zip(&f.metrics)
        .map(|((name, unit), m)| (name.clone(), metric_json(*m, *unit)))
        .collect();
    let mut transactions: Vec<String> = f.edges.iter().map(|&e| g.tx_id(e).to_string()).collect();
    transactions.sort();
    transactions.dedup();
    let mut accounts: Vec<String> = f
        .accounts
        .iter()
        .map(|&a| g.account_name(a).to_string())
        .collect();
    accounts.sort();
    accounts.dedup();
    Alert {
        id: Alert::make_id(&rule.id, &rule.version, &f.subject, window),
        rule_id: rule.id.clone(),
        rule_version: rule.version.clone(),
        title: rule.title.clone(),
        subject: f.subject.clone(),
        window,
        severity: rule.severity,
        score: score(rule, g, &f.metrics),
        summary,
        currency: Some(currency.to_string()),
        metrics,
        evidence: Evidence {
            transactions,
            accounts,
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::*;
    use clearwatch_graph::load::from_files;
    use clearwatch_ingest::Profile;
    use clearwatch_rules::compile::compile_rule;
    use clearwatch_rules::load::load_shipped;

    fn demo() -> TemporalGraph {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/demo");
        from_files(
            &dir.join("transactions.csv"),
            Some(&dir.join("accounts.csv")),
            Some(&dir.join("merchants.csv")),
            &Profile::native(),
            None,
            None,
        )
        .unwrap()
        .0
    }

    const ALL_INPUTS: Inputs = Inputs {
        accounts: true,
        merchants: true,
    };

    #[test]
    fn a_set_stop_runs_nothing_and_says_so() {
        let (set, _) = load_shipped();
        let rules: Vec<&Rule> = set.rules.iter().collect();
        let stop = Stop::default();
        stop.stop();
        let report = run_until(&rules, &demo(), ALL_INPUTS, &stop);
        assert!(report.stopped);
        assert!(report.alerts.is_empty());
        assert!(!run(&rules, &demo(), ALL_INPUTS).stopped);
    }

    /// TC-04 with a one-second step slides over a million windows per hub (minutes of
    /// work on the demo set): a stop set while it runs ends it at the next window.
    #[test]
    fn a_stop_set_while_a_rule_runs_ends_it() {
        let (set, _) = load_shipped();
        let src = set
            .sources
            .iter()
            .find(|s| s.config.id.value == "TC-04")
            .unwrap();
        let overrides = BTreeMap::from([("step".to_string(), serde_json::json!("1s"))]);
        let rule =
            compile_rule(&src.config, &src.path, &src.text, &set.shared, &overrides).unwrap();
        let g = demo();
        let stop = Stop::default();
        let report = std::thread::scope(|s| {
            let running = s.spawn(|| run_until(&[&rule], &g, ALL_INPUTS, &stop));
            std::thread::sleep(std::time::Duration::from_millis(200));
            stop.stop();
            running.join().unwrap()
        });
        assert!(report.stopped);
    }
}
