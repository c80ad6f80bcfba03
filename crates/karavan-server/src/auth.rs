//! Authentication: every `/v1/` route takes `Authorization: Bearer KEY`; the key's hash is looked up
//! on each request, so a revoked key stops working at once, also when the CLI revoked it.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use karavan_domain::{ApiKey, Role};
use karavan_store::Principal;

use crate::AppState;
use crate::error::{ApiError, ErrorCode};

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl Caller {
    pub fn require(&self, role: Role, action: &str) -> Result<(), ApiError> {
        if self.0.role >= role {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!("{action} needs the {role} role; this key is {}", self.0.role)))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        // Authenticated already by the router's role check (`enforce_access`).
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "authorization: send `Authorization: Bearer KEY`"))?;
        let text = header
            .to_str()
            .map_err(|_| ApiError::new(ErrorCode::Unauthorized, "authorization: the header is not ASCII"))?;
        let token = text
            .strip_prefix("Bearer ")
            .or_else(|| text.strip_prefix("bearer "))
            .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "authorization: expected the Bearer scheme"))?;
        let key = ApiKey::parse(token.trim())
            .map_err(|_| ApiError::new(ErrorCode::Unauthorized, "authorization: the API key is malformed"))?;
        let hash = key.hash();
        let principal = state.blocking(move |store| store.authenticate(&hash)).await?;
        principal
            .map(Caller)
            .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "authorization: unknown or revoked API key"))
    }
}
