//! Container ids: they name a directory, so anything that could make a path is refused.

use super::ContainerError;

/// Names under the state root that belong to the engine, not to a container
/// (`network`: the bridge's address leases, see `engine::network::IPAM_DIR`).
pub const RESERVED: [&str; 1] = ["network"];

/// Accepts 1-64 characters from `[A-Za-z0-9_.-]`, not starting with '.'.
pub fn validate(id: &str) -> Result<(), ContainerError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        && !RESERVED.contains(&id);
    if ok {
        Ok(())
    } else {
        Err(ContainerError::BadId(id.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_like_ids_are_refused() {
        for bad in [
            "",
            "..",
            "a/b",
            "../x",
            ".hidden",
            "a b",
            "network",
            &"x".repeat(65),
        ] {
            assert!(validate(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["c1", "web_1.2-x", "A"] {
            validate(good).unwrap();
        }
    }
}
