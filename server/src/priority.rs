//! Push priorities under load: a push names the most urgent collection priority it carries
//! (`Ferry-Priority: critical | normal | background`), and the limiter lets it use that
//! priority's share of the tenant's in-flight slots and token bucket. What the smaller shares
//! leave is there only for more urgent pushes, so when a tenant's share runs out, critical
//! pushes still go through and background ones are the first refused (429 with
//! `Retry-After`). A push that names none (an older client) uses the whole share, as before.

use crate::errors::ApiError;
use axum::http::HeaderMap;
use ferry_core::priority::Priority;

/// The header a push names its priority in.
pub const PRIORITY_HEADER: &str = "ferry-priority";

/// The part of a tenant's limits a push of each priority may use.
pub fn share(priority: Priority) -> f64 {
    match priority {
        Priority::Critical => 1.0,
        Priority::Normal => 0.8,
        Priority::Background => 0.5,
    }
}

/// The share of the request's `Ferry-Priority` (1: none named).
pub fn requested_share(headers: &HeaderMap) -> Result<f64, ApiError> {
    let Some(value) = headers.get(PRIORITY_HEADER) else {
        return Ok(1.0);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| Priority::parse(v.trim()))
        .map(share)
        .ok_or_else(|| ApiError::BadRequest {
            code: "invalid_request",
            message: "the Ferry-Priority header must be critical, normal or background".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_names_a_share_and_nothing_else_passes() {
        let mut h = HeaderMap::new();
        assert_eq!(requested_share(&h).unwrap(), 1.0);
        h.insert(PRIORITY_HEADER, "background".parse().unwrap());
        assert_eq!(requested_share(&h).unwrap(), 0.5);
        h.insert(PRIORITY_HEADER, "critical".parse().unwrap());
        assert_eq!(requested_share(&h).unwrap(), 1.0);
        h.insert(PRIORITY_HEADER, "urgent".parse().unwrap());
        assert_eq!(requested_share(&h).unwrap_err().code(), "invalid_request");
    }
}
