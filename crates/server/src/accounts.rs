//! The account view: profile, money in and out, top counterparties, alerts and recent
//! transactions of one account.

use std::collections::{BTreeMap, HashMap};

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use super::extract::CurrentUser;
use super::views::{AccountPage, Counterparty, PageCtx, TxRow};
use super::{AppError, Shared};
use clearwatch_model::{Currency, format_amount};
use clearwatch_store::AlertFilter;
use clearwatch_store::AlertStore;
use clearwatch_store::IngestStore;

/// Most transactions read for one account view.
pub const ACCOUNT_TX_LIMIT: u64 = 2000;

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/accounts/{id}", get(account))
        .route("/account", get(account_by_query))
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
            subject: Some(id.clone()),
            limit: 100,
            ..AlertFilter::default()
        })
        .await?
        .into_iter()
        .filter(|a| a.alert.subject.id == id)
        .collect::<Vec<_>>();
    if acc.is_none() && txs.is_empty() && alerts.is_empty() {
        return Err(AppError::NotFound);
    }
    let (mut totals_in, mut totals_out) = (BTreeMap::new(), BTreeMap::new());
    // Sums in 128 bits: a few amounts near the maximum already pass 2^63.
    let mut parties: HashMap<String, (u64, i128, String)> = HashMap::new();
    for t in &txs {
        let code = t.currency.code().to_string();
        let other = if t.to == id {
            *totals_in.entry(code.clone()).or_insert(0) += i128::from(t.amount);
            &t.from
        } else {
            *totals_out.entry(code.clone()).or_insert(0) += i128::from(t.amount);
            &t.to
        };
        let e = parties.entry(other.clone()).or_insert((0, 0, code));
        e.0 += 1;
        e.1 += i128::from(t.amount);
    }
    let mut counterparties: Vec<(String, (u64, i128, String))> = parties.into_iter().collect();
    counterparties.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(&b.0)));
    let counterparties = counterparties
        .into_iter()
        .take(10)
        .map(|(account, (n, amount, code))| Counterparty {
            account,
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
    let page = AccountPage {
        ctx: PageCtx::new(&user),
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
