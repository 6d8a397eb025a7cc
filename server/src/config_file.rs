//! The server config file (`--config ferry.toml`, TOML): `[auth]` (which tokens are trusted
//! and where identity is read from, [`crate::jwt::AuthConfig`]), `[collections.<name>]`
//! (permissions and JSON Schema, [`crate::permissions`]) and `undeclared`. server/README.md
//! has a worked example.

use crate::config::ServerConfig;
use crate::jwt::AuthConfig;
use crate::permissions::CollectionSection;
use crate::validation::{CollectionsConfig, Rules, RulesError, Undeclared};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub collections: HashMap<String, CollectionSection>,
    #[serde(default)]
    pub undeclared: Undeclared,
    /// `[data_versions]`: the oldest app data version pushes are accepted from.
    #[serde(default)]
    pub data_versions: crate::data_version::DataVersions,
}

/// A config file that cannot be used; the server does not start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path}: {source}")]
    Rules { path: PathBuf, source: RulesError },
}

impl FileConfig {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigFileError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// The rules its `[collections]` declare.
    pub fn rules(&self) -> Result<Rules, RulesError> {
        Rules::from_config(&CollectionsConfig {
            collections: self.collections.clone(),
            undeclared: self.undeclared,
        })
    }
}

/// Applies the file at `path` to `config`: its `[auth]` and its collections' rules (which
/// replace the sample app's default rules).
pub fn apply(config: &mut ServerConfig, path: &Path) -> Result<(), ConfigFileError> {
    let file = FileConfig::load(path)?;
    config.rules = file.rules().map_err(|source| ConfigFileError::Rules {
        path: path.to_owned(),
        source,
    })?;
    config.auth = file.auth;
    config.data_versions = file.data_versions;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_example_loads() {
        let readme = include_str!("../README.md");
        let start = readme
            .find("```toml\n")
            .expect("server/README.md has a TOML example")
            + "```toml\n".len();
        let end = start + readme[start..].find("```").unwrap();
        let file: FileConfig = toml::from_str(&readme[start..end]).unwrap();
        assert_eq!(file.undeclared, Undeclared::Deny);
        assert_eq!(file.auth.claims.roles, "realm_access.roles");
        assert!(!file.auth.accept_server_tokens);
        let rules = file.rules().unwrap();
        assert!(rules.access("notes").unwrap().owner_field.is_some());
        assert!(rules.access("scratch").is_none());
        crate::jwt::Authenticator::new(file.auth, b"unused-secret-0123").unwrap();
    }

    #[test]
    fn unknown_keys_are_refused() {
        let typo = toml::from_str::<FileConfig>("[auth]\naudiance = \"ferry\"\n");
        assert!(typo.unwrap_err().to_string().contains("audiance"));
    }
}
