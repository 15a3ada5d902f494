//! `[fleet]`: several front ends on one database (issue 17).

use serde::{Deserialize, Serialize};

/// `[fleet]`: whether this front end is one of several serving the same
/// `base_url` on one database, and how they elect the one that runs the
/// background jobs.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Fleet {
    /// Several front ends share this database: nonces are checked through
    /// the database (any front end accepts a nonce another handed out,
    /// once), account rows are read per request instead of from this
    /// process's cache, and the background jobs run only on the holder of
    /// the jobs lease. Default false (one front end: nonces in memory,
    /// account rows cached, jobs always here).
    #[serde(default)]
    pub enabled: bool,
    /// How long the jobs lease lasts, seconds (renewed every third of it);
    /// a dead holder's jobs move to another front end within this time.
    /// 3 to 600. Default 15.
    #[serde(default = "default_lease_secs")]
    pub lease_secs: u32,
    /// This front end's name in the lease row (unique in the fleet, stable
    /// across restarts so a restarted holder takes its lease back at
    /// once). Default: `<hostname>/<listen_addr>`.
    pub instance_name: Option<String>,
}

impl Default for Fleet {
    fn default() -> Self {
        Self {
            enabled: false,
            lease_secs: default_lease_secs(),
            instance_name: None,
        }
    }
}

fn default_lease_secs() -> u32 {
    15
}
