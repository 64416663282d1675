//! What `per-node` keeps in a node's key: the node's increments and its
//! decrements, each of which only grows (the PN-Counter's two halves).
//!
//! A key that only grows is what makes `per-node`'s writes safe to resend
//! and to settle by reading: a cas of the key from `from` to `to` can never
//! land twice, because the key never holds `from` again, and a read that
//! finds the key at or past `to` (in both halves) proves the write landed.
//! A signed total would lose both: after `+2, -2` the key would hold its
//! old value again. A key with no decrements is written as a plain number,
//! what a g-counter's `per-node` writes; with some, as `[up, down]`.

use super::{checked_total, MAX_TOTAL};
use serde_json::Value;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tally {
    pub up: u64,
    pub down: u64,
}

impl Tally {
    /// One add's share: `delta` in the half it counts in.
    pub fn of(delta: i64) -> Tally {
        match delta < 0 {
            false => Tally {
                up: delta.unsigned_abs(),
                down: 0,
            },
            true => Tally {
                up: 0,
                down: delta.unsigned_abs(),
            },
        }
    }

    /// The total it stands for. Each half is within `MAX_TOTAL`, so the
    /// difference fits.
    pub fn value(self) -> i64 {
        self.up as i64 - self.down as i64
    }

    /// Half by half, if each stays within `MAX_TOTAL`.
    pub fn checked_add(self, other: Tally) -> Option<Tally> {
        Some(Tally {
            up: checked_total(self.up, other.up)?,
            down: checked_total(self.down, other.down)?,
        })
    }

    /// Half by half; `self` must cover `other`.
    pub fn saturating_sub(self, other: Tally) -> Tally {
        Tally {
            up: self.up.saturating_sub(other.up),
            down: self.down.saturating_sub(other.down),
        }
    }

    /// Whether `self` has everything of `other`, half by half.
    pub fn covers(self, other: Tally) -> bool {
        self.up >= other.up && self.down >= other.down
    }

    /// The larger of each half.
    pub fn max(self, other: Tally) -> Tally {
        Tally {
            up: self.up.max(other.up),
            down: self.down.max(other.down),
        }
    }

    /// Whether either half is above `limit`.
    pub fn exceeds(self, limit: u64) -> bool {
        self.up > limit || self.down > limit
    }

    /// A key's value as read: a number (a g-counter's key) or `[up, down]`.
    /// A half past `MAX_TOTAL` was not written by a counter that checks
    /// its sums.
    pub fn from_json(v: &Value) -> Option<Tally> {
        let half = |v: &Value| v.as_u64().filter(|&n| n <= MAX_TOTAL);
        match v {
            Value::Array(a) if a.len() == 2 => Some(Tally {
                up: half(&a[0])?,
                down: half(&a[1])?,
            }),
            v => Some(Tally {
                up: half(v)?,
                down: 0,
            }),
        }
    }
}

impl From<Tally> for Value {
    fn from(t: Tally) -> Value {
        match t.down {
            0 => t.up.into(),
            down => Value::from(vec![t.up, down]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_with_no_decrements_is_a_plain_number() {
        let t = Tally { up: 7, down: 0 };
        assert_eq!(Value::from(t), Value::from(7));
        assert_eq!(Tally::from_json(&Value::from(7)), Some(t));
        let t = Tally { up: 7, down: 9 };
        assert_eq!(Value::from(t).to_string(), "[7,9]");
        assert_eq!(Tally::from_json(&Value::from(t)), Some(t));
        assert_eq!(t.value(), -2);
        assert_eq!(Tally::from_json(&Value::from(-1)), None);
        assert_eq!(Tally::from_json(&Value::from(vec![1, 2, 3])), None);
    }
}
