//! The extractors handlers take besides axum's own: the signed-in user that the guard
//! ([`crate::auth::guard`]) put on the request.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use std::sync::Arc;

use crate::AppError;
use crate::i18n::Catalog;
use clearwatch_rules::texts::Texts;
use clearwatch_store::cases::User;

/// The signed-in user of a request, put there by [`crate::auth::guard`].
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: User,
    pub csrf: String,
    pub catalog: &'static Catalog,
    /// The rule pack's titles, summaries and figure names in every language.
    pub texts: Arc<Texts>,
}

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AppError> {
        parts
            .extensions
            .get::<CurrentUser>()
            .cloned()
            .ok_or(AppError::Unauthenticated { api: false })
    }
}
