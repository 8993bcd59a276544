//! The account view: profile, money in and out, top counterparties, alerts and recent
//! transactions of one account; and an account's flows as graph JSON, for expanding a
//! node of the alert graph.

use std::collections::{BTreeMap, HashMap};

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use super::extract::CurrentUser;
use super::views::{AccountPage, Counterparty, PageCtx, TxRow};
use super::{AppError, Shared};
use chrono::Timelike;
use clearwatch_model::{Currency, format_amount};
use clearwatch_store::AlertFilter;
use clearwatch_store::AlertStore;
use clearwatch_store::IngestStore;
use clearwatch_store::ScanStore;

/// Most transactions read for one account view.
pub const ACCOUNT_TX_LIMIT: u64 = 2000;

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/accounts/{id}", get(account))
        .route("/account", get(account_by_query))
        .route("/flows", get(flows))
}

/// Transactions, their sum in minor units and the currency code, of one counterparty
/// and direction.
type Tally = (u64, i128, String);

/// Counterparty rows on the account page.
const COUNTERPARTY_ROWS: usize = 15;

/// Money in and out per day in the user's time zone, in the account's most used
/// currency (others are left out, never mixed in), as a bar chart.
fn activity(txs: &[clearwatch_model::Transaction], id: &str, tz: chrono_tz::Tz) -> String {
    let mut uses: BTreeMap<&str, usize> = BTreeMap::new();
    for t in txs {
        *uses.entry(t.currency.code()).or_insert(0) += 1;
    }
    let Some(currency) = uses
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .and_then(|(c, _)| Currency::from_code(c))
    else {
        return String::new();
    };
    let scale = 10f64.powi(currency.exponent() as i32);
    let mut days: BTreeMap<i64, (f64, f64)> = BTreeMap::new();
    for t in txs.iter().filter(|t| t.currency == currency) {
        let Some(local) = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(t.ts) else {
            continue;
        };
        let local = local.with_timezone(&tz);
        // The start of the local day, as a UTC instant.
        let start = t.ts
            - i64::from(local.num_seconds_from_midnight()) * 1000
            - i64::from(local.timestamp_subsec_millis());
        let d = days.entry(start).or_insert((0.0, 0.0));
        let x = t.amount as f64 / scale;
        if t.to == id {
            d.0 += x;
        } else {
            d.1 += x;
        }
    }
    let days: Vec<(i64, f64, f64)> = days.into_iter().map(|(t, (i, o))| (t, i, o)).collect();
    super::views::activity_svg(&days, currency.code(), currency.exponent(), tz)
}

/// Most transactions drawn when a node of the alert graph is expanded.
pub const EXPAND_TX_LIMIT: u64 = 300;

/// The account's most recent transactions as a fund-flow graph laid out around it (JSON,
/// as the alert page embeds it), for "expand this node".
async fn flows(
    State(st): State<Shared>,
    _user: CurrentUser,
    Query(q): Query<AccountQuery>,
) -> Result<Response, AppError> {
    let mut txs = st
        .store
        .account_transactions(&q.id, EXPAND_TX_LIMIT)
        .await?;
    if txs.is_empty() {
        return Err(AppError::NotFound);
    }
    txs.sort_by(|a, b| (a.ts, &a.tx_id).cmp(&(b.ts, &b.tx_id)));
    let mut ids: Vec<String> = txs
        .iter()
        .flat_map(|t| [t.from.clone(), t.to.clone()])
        .collect();
    ids.sort();
    ids.dedup();
    let accounts = st.store.accounts_of(&ids).await?;
    let mut graph = clearwatch_export::flowgraph::flow_graph(&txs, &accounts, &[q.id.as_str()]);
    graph.mark_inferred(&st.store.inferred_roles(&graph.without_role()).await?);
    Ok(axum::Json(graph).into_response())
}

#[derive(serde::Deserialize)]
struct AccountQuery {
    id: String,
}

/// The account page of an id that cannot be a path segment (see
/// [`crate::views::account_href`]).
async fn account_by_query(
    st: State<Shared>,
    user: CurrentUser,
    Query(q): Query<AccountQuery>,
) -> Result<Response, AppError> {
    account(st, user, Path(q.id)).await
}

fn money(totals: &BTreeMap<String, i128>) -> Vec<(String, String)> {
    totals
        .iter()
        .map(|(c, v)| {
            let exp = Currency::from_code(c).map_or(2, Currency::exponent);
            (c.clone(), format_amount(*v, exp))
        })
        .collect()
}

async fn account(
    State(st): State<Shared>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let acc = st.store.account(&id).await?;
    let txs = st.store.account_transactions(&id, ACCOUNT_TX_LIMIT).await?;
    let alerts = st
        .store
        .alerts(&AlertFilter {
            subject_is: Some(clearwatch_model::Subject {
                kind: clearwatch_model::SubjectKind::Account,
                id: id.clone(),
            }),
            limit: 100,
            ..AlertFilter::default()
        })
        .await?;
    if acc.is_none() && txs.is_empty() && alerts.is_empty() {
        return Err(AppError::NotFound);
    }
    let (mut totals_in, mut totals_out) = (BTreeMap::new(), BTreeMap::new());
    // Sums in 128 bits: a few amounts near the maximum already pass 2^63.
    let mut parties: HashMap<(String, bool), Tally> = HashMap::new();
    for t in &txs {
        let code = t.currency.code().to_string();
        let outgoing = t.to != id;
        let other = if outgoing {
            *totals_out.entry(code.clone()).or_insert(0) += i128::from(t.amount);
            &t.to
        } else {
            *totals_in.entry(code.clone()).or_insert(0) += i128::from(t.amount);
            &t.from
        };
        let e = parties
            .entry((other.clone(), outgoing))
            .or_insert((0, 0, code));
        e.0 += 1;
        e.1 += i128::from(t.amount);
    }
    let mut counterparties: Vec<((String, bool), Tally)> = parties.into_iter().collect();
    counterparties.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(&b.0)));
    let counterparties = counterparties
        .into_iter()
        .take(COUNTERPARTY_ROWS)
        .map(|((account, outgoing), (n, amount, code))| Counterparty {
            account,
            outgoing,
            transactions: n,
            amount: format!(
                "{} {code}",
                format_amount(
                    amount,
                    Currency::from_code(&code).map_or(2, Currency::exponent)
                )
            ),
        })
        .collect();
    let ctx = PageCtx::new(&user);
    let activity_svg = activity(&txs, &id, ctx.tz);
    let inferred_role = st
        .store
        .inferred_roles(std::slice::from_ref(&id))
        .await?
        .remove(&id)
        .filter(|_| {
            acc.as_ref()
                .is_none_or(|a| a.role == clearwatch_model::Role::Unknown)
        });
    let page = AccountPage {
        inferred_role: inferred_role.map(|r| r.as_str().to_string()),
        ctx,
        activity_svg,
        registered: acc.is_some(),
        role: acc
            .as_ref()
            .map_or("unknown", |a| a.role.as_str())
            .to_string(),
        kind: acc
            .as_ref()
            .and_then(|a| a.kind)
            .map_or("", |k| k.as_str())
            .to_string(),
        holder: acc
            .as_ref()
            .and_then(|a| a.holder_name.clone())
            .unwrap_or_default(),
        holder_id: acc
            .as_ref()
            .and_then(|a| a.holder_id.clone())
            .unwrap_or_default(),
        institution: acc
            .as_ref()
            .and_then(|a| a.institution.clone())
            .unwrap_or_default(),
        licensed: acc.as_ref().is_some_and(|a| a.licensed),
        totals_in: money(&totals_in),
        totals_out: money(&totals_out),
        counterparties,
        alerts,
        txs: txs.iter().take(200).map(TxRow::new).collect(),
        id,
    };
    Ok(Html(page.render()?).into_response())
}
