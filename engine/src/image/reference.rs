//! Image references: `NAME[:TAG]`, as `engine image build -t` and `engine run` take them.

use std::fmt;
use std::str::FromStr;

/// The tag an image reference gets when it names none.
pub const DEFAULT_TAG: &str = "latest";

/// Why a string is not an image reference.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("empty image reference")]
    Empty,
    #[error(
        "invalid image name {0:?}: use lowercase letters, digits and . _ - / \
         (starting with a letter or digit)"
    )]
    BadName(String),
    #[error("invalid image tag {0:?}: use up to 128 letters, digits and . _ -")]
    BadTag(String),
}

/// A parsed `NAME[:TAG]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    /// The repository name, e.g. `isolab/workload`.
    pub name: String,
    /// The tag, `latest` unless given.
    pub tag: String,
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let (name, tag) = s.split_once(':').unwrap_or((s, DEFAULT_TAG));
        if !valid_name(name) {
            return Err(ReferenceError::BadName(name.to_string()));
        }
        if !valid_tag(tag) {
            return Err(ReferenceError::BadTag(tag.to_string()));
        }
        Ok(Reference {
            name: name.to_string(),
            tag: tag.to_string(),
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.tag)
    }
}

fn valid_name(name: &str) -> bool {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c);
    name.len() <= 255
        && name.chars().all(allowed)
        && name.split('/').all(|part| {
            part.starts_with(|c: char| c.is_ascii_alphanumeric())
                && part.ends_with(|c: char| c.is_ascii_alphanumeric())
        })
}

fn valid_tag(tag: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
    (1..=128).contains(&tag.len()) && tag.chars().all(allowed) && !tag.starts_with(['.', '-'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_without_tag_gets_latest() {
        let r: Reference = "isolab/workload".parse().unwrap();
        assert_eq!(r.to_string(), "isolab/workload:latest");
    }

    #[test]
    fn name_with_domain_and_tag_parses() {
        let r: Reference = "example.org/app:v1.2".parse().unwrap();
        assert_eq!(
            (r.name.as_str(), r.tag.as_str()),
            ("example.org/app", "v1.2")
        );
    }

    #[test]
    fn bad_references_are_refused() {
        assert_eq!("".parse::<Reference>(), Err(ReferenceError::Empty));
        assert!(matches!(
            "Upper".parse::<Reference>(),
            Err(ReferenceError::BadName(_))
        ));
        assert!(matches!(
            "a//b".parse::<Reference>(),
            Err(ReferenceError::BadName(_))
        ));
        assert!(matches!(
            "app:".parse::<Reference>(),
            Err(ReferenceError::BadTag(_))
        ));
        assert!(matches!(
            "app:b@d".parse::<Reference>(),
            Err(ReferenceError::BadTag(_))
        ));
    }
}
