//! STAND-IN for engine-cgnet's network module (same API as agreed): `none` and `host`
//! need no host objects; `bridge` is refused until the real module is merged.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The annotation choosing the mode.
pub const NETWORK_ANNOTATION: &str = "org.isolab.network";

/// How a container is networked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// Own namespace, loopback only.
    None,
    /// The host's namespace.
    Host,
    /// A veth pair to a host bridge.
    Bridge,
}

/// What the network setup needs.
#[derive(Debug, Clone)]
pub struct NetworkRequest {
    /// The container's id.
    pub container_id: String,
    /// A process in the container's network namespace.
    pub netns_pid: i32,
    /// The container's state dir.
    pub state_dir: PathBuf,
}

/// What was set up, kept in the container's state for teardown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkHandle {
    /// The mode set up.
    pub mode: NetworkMode,
}

/// Network setup failures.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The mode is not available in this build.
    #[error("network mode {0:?} is not available in this build")]
    Unsupported(NetworkMode),
}

/// Sets up `mode` for the container.
pub fn setup(mode: NetworkMode, _request: &NetworkRequest) -> Result<NetworkHandle, NetworkError> {
    match mode {
        NetworkMode::Bridge => Err(NetworkError::Unsupported(mode)),
        _ => Ok(NetworkHandle { mode }),
    }
}

impl NetworkHandle {
    /// Undoes the setup.
    pub fn teardown(self) -> Result<(), NetworkError> {
        Ok(())
    }
}
