//! The core's typed errors: what went wrong, in words that say what to do about it.

use crate::ports::StoreError;
use std::fmt;

/// A stable, machine-readable error code (the JS API exposes it as `error.code`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    UnknownCollection,
    InvalidRecord,
    InvalidId,
    NotFound,
    Storage,
    QuotaExceeded,
    Corrupt,
    UnknownConflict,
    UnknownDeadLetter,
    Closed,
    StorageLost,
    /// The app's migration refused a record (or gave one Ferry cannot store); nothing changed.
    MigrationFailed,
    /// The stored data was migrated by a newer release of the app than the one opening it.
    DataTooNew,
    /// The server accepts writes only from a newer data version than this client's.
    UpgradeRequired,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::UnknownCollection => "unknown_collection",
            ErrorCode::InvalidRecord => "invalid_record",
            ErrorCode::InvalidId => "invalid_id",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Storage => "storage_failed",
            ErrorCode::QuotaExceeded => "quota_exceeded",
            ErrorCode::Corrupt => "corrupt_data",
            ErrorCode::UnknownConflict => "unknown_conflict",
            ErrorCode::UnknownDeadLetter => "unknown_dead_letter",
            ErrorCode::Closed => "closed",
            ErrorCode::StorageLost => "storage_lost",
            ErrorCode::MigrationFailed => "migration_failed",
            ErrorCode::DataTooNew => "data_too_new",
            ErrorCode::UpgradeRequired => "upgrade_required",
        }
    }
}

/// An error from the core, with its code and a message that says how to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreError {
    pub code: ErrorCode,
    pub message: String,
}

impl CoreError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        CoreError {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for CoreError {}

impl From<StoreError> for CoreError {
    fn from(e: StoreError) -> Self {
        let code = match e {
            StoreError::QuotaExceeded(_) => ErrorCode::QuotaExceeded,
            StoreError::Corrupt(_) => ErrorCode::Corrupt,
            StoreError::Lost(_) => ErrorCode::StorageLost,
            _ => ErrorCode::Storage,
        };
        CoreError::new(code, e.to_string())
    }
}
