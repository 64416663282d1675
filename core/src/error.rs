//! Maelstrom's error codes (SPEC.md section 1, "Errors").

use serde::{Deserialize, Serialize};
use std::fmt;

/// An error code as carried in an `error` body.
///
/// A newtype rather than a closed enum: peers and services may send codes we
/// do not know, and codes 1000 and above are free for applications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ErrorCode(pub u32);

impl ErrorCode {
    pub const TIMEOUT: Self = Self(0);
    pub const NODE_NOT_FOUND: Self = Self(1);
    pub const NOT_SUPPORTED: Self = Self(10);
    pub const TEMPORARILY_UNAVAILABLE: Self = Self(11);
    pub const MALFORMED_REQUEST: Self = Self(12);
    pub const CRASH: Self = Self(13);
    pub const ABORT: Self = Self(14);
    pub const KEY_DOES_NOT_EXIST: Self = Self(20);
    pub const KEY_ALREADY_EXISTS: Self = Self(21);
    pub const PRECONDITION_FAILED: Self = Self(22);
    pub const TXN_CONFLICT: Self = Self(30);

    /// Whether the code promises that the operation did not and will not
    /// happen. Unknown codes below 1000 are treated as indefinite, because a
    /// wrong "definite" is the dangerous mistake.
    pub fn is_definite(self) -> bool {
        matches!(self.0, 1 | 10 | 11 | 12 | 14 | 20 | 21 | 22 | 30)
    }

    /// The name Maelstrom gives the code, if it is one of its own.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "timeout",
            1 => "node-not-found",
            10 => "not-supported",
            11 => "temporarily-unavailable",
            12 => "malformed-request",
            13 => "crash",
            14 => "abort",
            20 => "key-does-not-exist",
            21 => "key-already-exists",
            22 => "precondition-failed",
            30 => "txn-conflict",
            _ => return None,
        })
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{} ({name})", self.0),
            None => write!(f, "{}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definiteness_matches_the_spec_table() {
        let indefinite = [0, 13, 1000, 4242];
        let definite = [1, 10, 11, 12, 14, 20, 21, 22, 30];
        for c in indefinite {
            assert!(!ErrorCode(c).is_definite(), "{c}");
        }
        for c in definite {
            assert!(ErrorCode(c).is_definite(), "{c}");
        }
    }
}
