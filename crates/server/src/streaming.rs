//! The stream's lag (admin role): for each partition of the JetStream stream the workers
//! consume, the messages not yet delivered to a worker and those delivered but not yet
//! acknowledged, as `clearwatch stream status` shows them. The server watches the stream
//! named at start-up (`serve --nats URL --stream NAME`); without `--nats` the page says how
//! to turn it on. NATS errors are logged, never shown: the page says only that the stream
//! server did not answer.

use std::time::Duration;

use askama::Template;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::extract::CurrentUser;
use super::views::PageCtx;
use super::{ApiError, AppError, Shared};
use clearwatch_stream::PartitionLag;

/// The stream the server watches.
#[derive(Debug, Clone)]
pub struct StreamWatch {
    pub nats: String,
    pub stream: String,
}

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/admin/stream", get(page))
        .route("/api/v1/stream", get(api))
}

/// The lag of the watched stream.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamLag {
    /// Whether the server was started with a stream to watch (`serve --nats`).
    pub configured: bool,
    pub stream: Option<String>,
    /// Whether the stream exists (a worker or a publisher made it).
    pub exists: bool,
    pub partitions: u32,
    /// Messages not yet delivered to a worker, over every partition.
    pub pending: u64,
    /// Messages delivered but not yet acknowledged, over every partition.
    pub unacknowledged: u64,
    #[schema(value_type = Vec<Object>)]
    pub lags: Vec<PartitionLag>,
}

/// How long the server waits for NATS before saying it did not answer.
const NATS_TIMEOUT: Duration = Duration::from_secs(3);

async fn lag(st: &Shared) -> Result<StreamLag, AppError> {
    let mut out = StreamLag {
        configured: st.stream.is_some(),
        stream: st.stream.as_ref().map(|w| w.stream.clone()),
        exists: false,
        partitions: 0,
        pending: 0,
        unacknowledged: 0,
        lags: Vec::new(),
    };
    let Some(watch) = &st.stream else {
        return Ok(out);
    };
    let asked = async {
        let js = clearwatch_stream::connect(&watch.nats).await?;
        clearwatch_stream::status_by_name(&js, &watch.stream).await
    };
    let found = match tokio::time::timeout(NATS_TIMEOUT, asked).await {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            eprintln!("warning: stream status: {e}");
            return Err(AppError::Unavailable(
                "the stream server did not answer".into(),
            ));
        }
        Err(_) => {
            eprintln!("warning: stream status: NATS did not answer in time");
            return Err(AppError::Unavailable(
                "the stream server did not answer".into(),
            ));
        }
    };
    if let Some((topo, lags)) = found {
        out.exists = true;
        out.partitions = topo.partitions;
        out.pending = lags.iter().map(|l| l.pending).sum();
        out.unacknowledged = lags.iter().map(|l| l.unacknowledged).sum();
        out.lags = lags;
    }
    Ok(out)
}

#[derive(Template)]
#[template(path = "stream.html")]
pub struct StreamPage {
    pub ctx: PageCtx,
    pub lag: StreamLag,
}

async fn page(State(st): State<Shared>, user: CurrentUser) -> Result<Response, AppError> {
    let lag = lag(&st).await?;
    let page = StreamPage {
        ctx: PageCtx::new(&user),
        lag,
    };
    Ok(Html(page.render()?).into_response())
}

/// The lag of each partition of the stream the server watches.
#[utoipa::path(get, path = "/api/v1/stream",
    responses((status = 200, body = StreamLag), (status = 503, description = "the stream server did not answer")))]
pub async fn api(State(st): State<Shared>) -> Result<Json<StreamLag>, ApiError> {
    Ok(Json(lag(&st).await?))
}
