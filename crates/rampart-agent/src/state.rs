//! The agent's state directory: identity, key, certificates, policies, spool, status.
//!
//! Every file is written to a temporary name, synced and renamed, so a crash never leaves a
//! half-written key or certificate; the private key is created with mode 0600.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::AgentError;

/// Who this agent is and where its server is.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AgentIdentityFile {
    /// Agent id.
    pub agent_id: String,
    /// API base URL (enrolment, CA).
    pub api_url: String,
    /// Agent-port base URL (mTLS).
    pub agent_url: String,
    /// Heartbeat interval the server asked for.
    pub heartbeat_secs: u64,
}

/// Paths inside the state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// A state directory (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> StateDir {
        StateDir { root: root.into() }
    }

    /// Its path.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn key(&self) -> PathBuf {
        self.root.join("agent-key.pem")
    }

    pub(crate) fn cert(&self) -> PathBuf {
        self.root.join("agent-cert.pem")
    }

    pub(crate) fn root_ca(&self) -> PathBuf {
        self.root.join("root-ca.pem")
    }

    pub(crate) fn identity(&self) -> PathBuf {
        self.root.join("agent.json")
    }

    pub(crate) fn policies(&self) -> PathBuf {
        self.root.join("policies")
    }

    pub(crate) fn spool(&self) -> PathBuf {
        self.root.join("spool")
    }

    pub(crate) fn status(&self) -> PathBuf {
        self.root.join("status.json")
    }

    pub(crate) fn schedule(&self) -> PathBuf {
        self.root.join("schedule.json")
    }

    /// Command durations of earlier scans ([`rampart_engine::costs`]).
    pub(crate) fn command_costs(&self) -> PathBuf {
        self.root.join("command-costs.json")
    }

    /// The enrolled identity, if any.
    pub fn load_identity(&self) -> Result<AgentIdentityFile, AgentError> {
        let path = self.identity();
        match fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| AgentError::corrupt(&path, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(AgentError::NotEnrolled(self.root.display().to_string()))
            }
            Err(e) => Err(AgentError::io(&path, e)),
        }
    }

    pub(crate) fn read_string(&self, path: &Path) -> Result<String, AgentError> {
        fs::read_to_string(path).map_err(|e| AgentError::io(path, e))
    }
}

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename, fsync of the directory).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), AgentError> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| AgentError::io(dir, e))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| AgentError::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| AgentError::io(&tmp, e))?;
    f.sync_all().map_err(|e| AgentError::io(&tmp, e))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| AgentError::io(path, e))?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
