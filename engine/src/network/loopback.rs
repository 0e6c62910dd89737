//! The loopback device of a new network namespace starts down; every mode but `host`
//! brings it up so `127.0.0.1` works inside the container.

use super::netlink::Netlink;
use super::NetworkError;

/// Sets `lo` up in the namespace `nl` is bound to.
pub(crate) fn bring_up(nl: &mut Netlink) -> Result<(), NetworkError> {
    // `lo` is always index 1 in a network namespace.
    nl.set_up(1, "setting lo up")
}
