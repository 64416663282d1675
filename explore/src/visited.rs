//! The states a search has explored: per state its 128-bit fingerprint
//! and one word of its own (a sleep mask, or where its counts are kept).
//!
//! An entry is 24 bytes (the fingerprint as two words, so that the entry
//! is aligned to 8 and not to 16, and the word). The entries are spread
//! over 256 tables by the fingerprint's top byte, and each table grows on
//! its own: a single table doubled at once, and held its old and new
//! copies together, which was the search's peak (3.27 GB for `cas` at 3
//! nodes, 47.6 million states, where the table itself was 2.2 GB). Now at
//! most one 256th of the set is copied at a time.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

const SHARDS: usize = 256;

/// A fingerprint as a key: the table hashes it by its low word as it is
/// (it is a digest already); the top byte chose the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key(u64, u64);

impl Hash for Key {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u64(self.1);
    }
}

/// Takes the word it is given as the hash.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type Table = HashMap<Key, u64, BuildHasherDefault<Prehashed>>;

/// Fingerprints of explored states, each with a word.
pub struct Visited {
    tables: Vec<Table>,
    len: usize,
}

impl std::fmt::Debug for Visited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Visited").field("len", &self.len).finish()
    }
}

impl Default for Visited {
    fn default() -> Self {
        Visited {
            tables: (0..SHARDS).map(|_| Table::default()).collect(),
            len: 0,
        }
    }
}

fn split(fingerprint: u128) -> (usize, Key) {
    let high = (fingerprint >> 64) as u64;
    ((high >> 56) as usize, Key(high, fingerprint as u64))
}

impl Visited {
    pub fn get(&self, fingerprint: u128) -> Option<u64> {
        let (table, key) = split(fingerprint);
        self.tables[table].get(&key).copied()
    }

    /// Sets the state's word; gives the one it had, if it was there.
    pub fn insert(&mut self, fingerprint: u128, word: u64) -> Option<u64> {
        let (table, key) = split(fingerprint);
        let old = self.tables[table].insert(key, word);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// The number of states.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_that_share_a_table_or_a_low_word_stay_apart() {
        let mut v = Visited::default();
        let a = 7u128 << 120 | 5;
        let b = 7u128 << 120 | 1 << 64 | 5; // same table, same low word
        let c = 9u128 << 120 | 5; // another table, same low word
        assert_eq!(v.insert(a, 1), None);
        assert_eq!(v.insert(b, 2), None);
        assert_eq!(v.insert(c, 3), None);
        assert_eq!((v.get(a), v.get(b), v.get(c)), (Some(1), Some(2), Some(3)));
        assert_eq!(v.insert(a, 4), Some(1));
        assert_eq!(v.len(), 3);
        assert_eq!(v.get(6), None);
    }
}
