//! Reading and validating a configuration, and the paths it implies.

use std::path::{Path, PathBuf};

use super::{Config, DEFAULT_PROFILE, KeyConfig};
use crate::error::Error;

impl Config {
    /// Reads and validates the configuration file at `path`.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text).map_err(|e| match e {
            Error::ConfigSyntax { source, .. } => Error::ConfigSyntax {
                path: path.to_owned(),
                source,
            },
            other => other,
        })
    }

    /// Parses and validates configuration text.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        let config: Self = toml::from_str(text).map_err(|e| Error::ConfigSyntax {
            path: PathBuf::new(),
            source: Box::new(e),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |field, problem: &str| {
            Err(Error::ConfigValue {
                field,
                problem: problem.to_owned(),
            })
        };
        if self.allowed_uids.is_empty() {
            return bad("allowed_uids", "must name at least one uid");
        }
        if let Some(tcp) = &self.tcp
            && let Err((field, problem)) = tcp.check()
        {
            return bad(field, &problem);
        }
        if self.socket_mode > 0o777 {
            return bad("socket_mode", "must be a permission mode (at most 0o777)");
        }
        if self.policy.max_validity_days == 0 || self.policy.max_validity_days > 398 {
            return bad("policy.max_validity_days", "must be between 1 and 398");
        }
        if self.ca.validity_days == 0 || self.ca.validity_days > self.policy.max_validity_days {
            return bad(
                "ca.validity_days",
                "must be between 1 and [policy] max_validity_days",
            );
        }
        if self.audit.recent_issuances == 0 {
            return bad("audit.recent_issuances", "must be at least 1");
        }
        if self.policy.caa_max_age_secs == 0 {
            return bad("policy.caa_max_age_secs", "must be positive");
        }
        if self.policy.statement_max_age_secs == 0 {
            return bad("policy.statement_max_age_secs", "must be positive");
        }
        if !self.perspectives.is_empty() && self.validator_public_key_file.is_none() {
            return bad(
                "perspectives",
                "needs validator_public_key_file (perspectives corroborate the validator's statements)",
            );
        }
        let mut names = std::collections::BTreeSet::new();
        for p in &self.perspectives {
            if p.name.trim().is_empty() || p.rir.trim().is_empty() {
                return bad("perspectives", "every entry needs a name and an rir");
            }
            if !names.insert(p.name.as_str()) {
                return bad("perspectives", "names must be unique");
            }
        }
        if self.insecure_issue_without_statements && self.validator_public_key_file.is_some() {
            return bad(
                "insecure_issue_without_statements",
                "may not be set with validator_public_key_file",
            );
        }
        if self.ca.crl_validity_hours == 0 || self.ca.crl_validity_hours > 24 * 10 {
            return bad("ca.crl_validity_hours", "must be between 1 and 240");
        }
        for (name, p) in &self.profiles {
            let max_hours = u64::from(self.policy.max_validity_days) * 24;
            if p.validity_hours
                .is_some_and(|h| h == 0 || u64::from(h) > max_hours)
            {
                return bad(
                    "profiles.*.validity_hours",
                    &format!(
                        "profile {name}: must be between 1 and [policy] max_validity_days × 24"
                    ),
                );
            }
            if p.max_sans == 0 || p.max_sans > crate::policy::MAX_IDENTIFIERS {
                return bad(
                    "profiles.*.max_sans",
                    &format!("profile {name}: must be between 1 and 100"),
                );
            }
        }
        if self.policy.default_profile != DEFAULT_PROFILE
            && !self.profiles.contains_key(&self.policy.default_profile)
        {
            return bad(
                "policy.default_profile",
                "names no [profiles.<name>] section",
            );
        }
        match &self.signer.key {
            None if self.ca.key_file.is_none() => {
                return bad("ca.key_file", "required unless [signer.key] is set");
            }
            Some(KeyConfig::Pkcs11(p)) => {
                if p.token_label.is_none() && p.slot.is_none() {
                    return bad(
                        "signer.key.token_label",
                        "one of token_label and slot is required",
                    );
                }
                if p.key_label.is_none() && p.key_id.is_none() {
                    return bad(
                        "signer.key.key_label",
                        "one of key_label and key_id is required",
                    );
                }
                if p.key_id
                    .as_deref()
                    .is_some_and(|id| hex::decode(id).is_err())
                {
                    return bad("signer.key.key_id", "must be hex");
                }
            }
            _ => {}
        }
        if self.ca.ca_validity_years == 0 || self.ca.ca_validity_years > 100 {
            return bad("ca.ca_validity_years", "must be between 1 and 100");
        }
        if self.ca.common_name.is_empty() || self.ca.common_name.chars().count() > 64 {
            return bad("ca.common_name", "must have 1 to 64 characters");
        }
        if self.ca.organization.is_empty() || self.ca.organization.chars().count() > 64 {
            return bad("ca.organization", "must have 1 to 64 characters");
        }
        for (field, url) in [
            ("ca.crl_url", &self.ca.crl_url),
            ("ca.ocsp_url", &self.ca.ocsp_url),
            ("ca.ca_issuers_url", &self.ca.ca_issuers_url),
        ] {
            if let Some(url) = url
                && !(url.is_ascii() && (url.starts_with("http://") || url.starts_with("https://")))
            {
                return bad(field, "must be an ASCII http:// or https:// URL");
            }
        }
        if let Some(sc) = &self.server_certificate
            && sc.names.is_empty()
        {
            return bad("server_certificate.names", "must name at least one name");
        }
        if self.mtc.enabled {
            match &self.mtc.origin {
                None => return bad("mtc.origin", "required when [mtc] enabled = true"),
                Some(o)
                    if o.is_empty()
                        || o.contains('+')
                        || o.chars().any(|c| c.is_whitespace() || c.is_control()) =>
                {
                    return bad(
                        "mtc.origin",
                        "must be non-empty, without spaces, control characters or '+'",
                    );
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

impl Config {
    /// The directory holding the signer's state (audit log, CRL number,
    /// blocklist) unless configured otherwise: the directory of `[ca]
    /// key_file`, or of `[ca] cert_file` when there is no key file.
    pub fn state_dir(&self) -> PathBuf {
        let anchor = self.ca.key_file.as_ref().unwrap_or(&self.ca.cert_file);
        anchor
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_owned)
    }

    /// The audit log's path.
    pub fn audit_path(&self) -> PathBuf {
        self.audit
            .path
            .clone()
            .unwrap_or_else(|| self.state_dir().join("audit.log"))
    }

    /// The blocklist file's path.
    pub fn blocked_keys_path(&self) -> PathBuf {
        self.policy
            .blocked_keys_file
            .clone()
            .unwrap_or_else(|| self.state_dir().join("blocked-keys.txt"))
    }

    /// The transparency log's entries file.
    pub fn mtc_log_path(&self) -> PathBuf {
        self.mtc
            .log_path
            .clone()
            .unwrap_or_else(|| self.state_dir().join("mtc.log"))
    }

    /// The transparency log's key file.
    pub fn mtc_key_path(&self) -> PathBuf {
        self.mtc
            .key_file
            .clone()
            .unwrap_or_else(|| self.state_dir().join("mtc-log.key"))
    }

    /// Files that must not be readable by anyone but the signer: the key
    /// file or the PIN file, the log key when the log is on, and the TLS
    /// key of `[tcp]`.
    pub fn secret_files(&self) -> Vec<PathBuf> {
        let mut files = match self.key_config() {
            Some(KeyConfig::File { key_file }) => vec![key_file],
            Some(KeyConfig::Pkcs11(p)) => vec![p.pin_file],
            None => Vec::new(),
        };
        if self.mtc.enabled {
            files.push(self.mtc_key_path());
        }
        if let Some(tcp) = &self.tcp {
            files.push(tcp.key_file.clone());
        }
        files
    }

    /// The key backend, with `[ca] key_file` as the default.
    pub fn key_config(&self) -> Option<KeyConfig> {
        match &self.signer.key {
            Some(k) => Some(k.clone()),
            None => self
                .ca
                .key_file
                .clone()
                .map(|key_file| KeyConfig::File { key_file }),
        }
    }
}
