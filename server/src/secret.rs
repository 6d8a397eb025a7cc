//! The token signing secret: `--secret` / `FERRY_SECRET`, or for SQLite one generated once
//! and kept in `<database file>.secret` (mode 0600) beside the database, so tokens survive a
//! restart. PostgreSQL deployments run several processes, which must share one secret: there
//! it is required.

use crate::db::{is_postgres_url, sqlite};
use rand::RngCore;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Shortest secret accepted.
pub const MIN_SECRET_LEN: usize = 16;

/// Why no secret could be had.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the secret must be at least {MIN_SECRET_LEN} bytes")]
    TooShort,
    #[error("--secret (or FERRY_SECRET) is required with PostgreSQL: every process must share it")]
    Required,
    #[error("{0}")]
    BadUrl(String),
    #[error("secret file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The secret for a server on `database`.
pub fn resolve(given: Option<&str>, database: &str) -> Result<Vec<u8>, SecretError> {
    if let Some(secret) = given {
        if secret.len() < MIN_SECRET_LEN {
            return Err(SecretError::TooShort);
        }
        return Ok(secret.as_bytes().to_vec());
    }
    if is_postgres_url(database) {
        return Err(SecretError::Required);
    }
    match sqlite::sqlite_file(database).map_err(|e| SecretError::BadUrl(e.to_string()))? {
        Some(db_file) => load_or_create(&secret_path(&db_file)),
        None => Ok(random_secret().into_bytes()),
    }
}

/// `<db file>.secret`.
pub fn secret_path(db_file: &Path) -> PathBuf {
    let mut name = db_file.as_os_str().to_owned();
    name.push(".secret");
    PathBuf::from(name)
}

fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn load_or_create(path: &Path) -> Result<Vec<u8>, SecretError> {
    let io = |source| SecretError::Io {
        path: path.to_owned(),
        source,
    };
    loop {
        match std::fs::read_to_string(path) {
            Ok(text) if text.trim().len() >= MIN_SECRET_LEN => {
                return Ok(text.trim().as_bytes().to_vec())
            }
            Ok(_) => return Err(SecretError::TooShort),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(path) {
            Ok(mut file) => {
                let secret = random_secret();
                file.write_all(secret.as_bytes())
                    .and_then(|_| file.sync_all())
                    .map_err(io)?;
                return Ok(secret.into_bytes());
            }
            // Another process created it first: read theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("f.db").display());
        let first = resolve(None, &url).unwrap();
        assert_eq!(resolve(None, &url).unwrap(), first);
        assert!(dir.path().join("f.db.secret").exists());
        assert_eq!(
            resolve(Some("0123456789abcdef"), &url).unwrap(),
            b"0123456789abcdef"
        );
        assert!(matches!(
            resolve(Some("short"), &url),
            Err(SecretError::TooShort)
        ));
        assert!(matches!(
            resolve(None, "postgres://x@localhost/db"),
            Err(SecretError::Required)
        ));
    }
}
