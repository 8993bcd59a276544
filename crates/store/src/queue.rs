//! The case queue, read the same way by the dashboard, the JSON API and `clearwatch cases
//! list`: the alerts under a filter, folded into one case per subject
//! ([`clearwatch_model::cases`]), filtered by deadline band, sorted and paged, and each case
//! on the page completed with its holder, role and the amounts of its evidence.

use serde::Serialize;

use clearwatch_model::calendar::WorkingCalendar;
use clearwatch_model::case::Sla;
use clearwatch_model::cases::{Case, CaseSort, fold_cases};
use clearwatch_model::{Currency, Role, Subject, SubjectKind, format_amount};

use crate::{AlertFilter, AlertStore, AnyStore, IngestStore, StoreError, Suppressed};

/// The most alerts one case list folds (about 150 bytes each): beyond it the list covers
/// the highest-scored alerts only and says so. Reading and folding costs about 10 µs per
/// alert on SQLite, so a list answers within about half a second (docs/performance.md).
pub const CASE_ALERT_LIMIT: u64 = 50_000;

/// Which cases, in what order, which page.
#[derive(Debug, Clone, Default)]
pub struct CaseQuery {
    /// The alerts that make up the cases: status, rule, subject, assignee. Its sort, limit
    /// and offset are not used.
    pub filter: AlertFilter,
    /// Only cases in this deadline band.
    pub sla: Option<Sla>,
    pub sort: CaseSort,
    pub limit: usize,
    pub offset: usize,
}

/// An amount in one currency, as a decimal string in major units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Amount {
    pub currency: String,
    pub amount: String,
}

/// A case with what the queue shows beside it.
#[derive(Debug, Clone, Serialize)]
pub struct CaseRow {
    #[serde(flatten)]
    pub case: Case,
    /// From the account or merchant registry.
    pub holder_name: Option<String>,
    /// The registry's role of an account subject.
    pub role: Option<Role>,
    /// The evidence transactions of its alerts under the filter, each counted once, per
    /// currency (of all of them, when the list was cut at [`CASE_ALERT_LIMIT`]).
    pub amounts: Vec<Amount>,
}

/// One page of cases.
#[derive(Debug, Clone, Serialize)]
pub struct CasePage {
    pub cases: Vec<CaseRow>,
    /// Cases under the query, before paging.
    pub total: usize,
    /// Alerts folded.
    pub alerts_read: u64,
    /// Whether more alerts matched than one list folds.
    pub truncated: bool,
}

/// The cases of the alerts under `filter` (its sort, limit and offset aside), in `sort`
/// order with deadlines as of `today`; the alerts folded; whether more matched than
/// [`CASE_ALERT_LIMIT`].
pub async fn cases(
    store: &AnyStore,
    filter: &AlertFilter,
    sort: CaseSort,
    today: chrono::NaiveDate,
    review_days: u32,
) -> Result<(Vec<Case>, u64, bool), StoreError> {
    let read = AlertFilter {
        // One more, to tell a cut list from one that fits exactly.
        limit: CASE_ALERT_LIMIT + 1,
        offset: 0,
        sort: Default::default(),
        ..filter.clone()
    };
    let mut hits = store.case_hits(&read).await?;
    let truncated = hits.len() as u64 > CASE_ALERT_LIMIT;
    hits.truncate(CASE_ALERT_LIMIT as usize);
    let cases = fold_cases(&hits, today, WorkingCalendar::china(), review_days, sort);
    Ok((cases, hits.len() as u64, truncated))
}

/// The page of cases `q` asks for, with deadlines as of `today`.
pub async fn case_page(
    store: &AnyStore,
    q: &CaseQuery,
    today: chrono::NaiveDate,
    review_days: u32,
) -> Result<CasePage, StoreError> {
    let (mut cases, alerts_read, truncated) =
        cases(store, &q.filter, q.sort, today, review_days).await?;
    if let Some(sla) = q.sla {
        cases.retain(|c| c.deadline.sla == sla);
    }
    let total = cases.len();
    let page: Vec<Case> = cases.into_iter().skip(q.offset).take(q.limit).collect();
    let rows = rows_of(store, page, &q.filter).await?;
    Ok(CasePage {
        cases: rows,
        total,
        alerts_read,
        truncated,
    })
}

/// The alerts on exactly `subject` folded as one case, with its holder, role and amounts:
/// with `open`, as the case queue shows it by default (open alerts, those a suppression
/// hides left out); without, every alert of any status. `None` when no alert is left.
pub async fn subject_case(
    store: &AnyStore,
    subject: &Subject,
    open: bool,
    today: chrono::NaiveDate,
    review_days: u32,
) -> Result<Option<CaseRow>, StoreError> {
    let filter = AlertFilter {
        subject_is: Some(subject.clone()),
        open_only: open,
        suppressed: if open {
            Suppressed::Hide
        } else {
            Suppressed::Include
        },
        limit: CASE_ALERT_LIMIT,
        ..AlertFilter::default()
    };
    let hits = store.case_hits(&filter).await?;
    let cases = fold_cases(
        &hits,
        today,
        WorkingCalendar::china(),
        review_days,
        CaseSort::Risk,
    );
    Ok(rows_of(store, cases, &filter).await?.into_iter().next())
}

/// `page`'s cases completed with their holder, role and the amounts of their evidence
/// under `filter`.
async fn rows_of(
    store: &AnyStore,
    page: Vec<Case>,
    filter: &AlertFilter,
) -> Result<Vec<CaseRow>, StoreError> {
    let account_ids: Vec<String> = page
        .iter()
        .filter(|c| c.subject.kind == SubjectKind::Account)
        .map(|c| c.subject.id.clone())
        .collect();
    let mut accounts = store.accounts_of(&account_ids).await?.into_iter();
    let merchants = if page.iter().any(|c| c.subject.kind == SubjectKind::Merchant) {
        store.merchants().await?
    } else {
        Vec::new()
    };
    let mut rows = Vec::with_capacity(page.len());
    for case in page {
        let (holder_name, role) = match case.subject.kind {
            SubjectKind::Account => match accounts.next() {
                Some(a) => (a.holder_name, Some(a.role)),
                None => (None, None),
            },
            SubjectKind::Merchant => (
                merchants
                    .iter()
                    .find(|m| m.merchant_id == case.subject.id)
                    .and_then(|m| m.legal_name.clone()),
                None,
            ),
        };
        let amounts = store
            .case_amounts(&case.subject, filter)
            .await?
            .into_iter()
            .map(|(code, minor)| Amount {
                amount: format_amount(
                    minor,
                    Currency::from_code(&code).map_or(2, |c| c.exponent()),
                ),
                currency: code,
            })
            .collect();
        rows.push(CaseRow {
            case,
            holder_name,
            role,
            amounts,
        });
    }
    Ok(rows)
}
