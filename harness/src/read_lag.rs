//! Read lag: how far behind each successful read was, for any node.
//!
//! For a read, the increments acknowledged before it was sent are the
//! floor a fresh node would answer at least; its lag is how much of that
//! its value lacks (0 when the value reaches it), and its age is how long
//! before the read was sent the oldest of the missing increments was
//! acknowledged, taking the value to hold the oldest acknowledged adds
//! first (a counter that merged an add usually merged the older ones).
//!
//! Memory stays flat: acknowledged adds are kept in time order with the
//! running sum after each, and an add is let go of once every client's
//! latest read reached its running sum (no read since lags behind it,
//! unless a node went back in time). A read below what was let go of gets
//! the oldest age still known, a lower bound, and is counted as such.
//!
//! Under pn-counter a value cannot say which adds it holds (a decrement
//! and an increment cancel), so once a decrement is acknowledged nothing
//! is measured: the figures would be guesses.

use crate::hdr::{self, record};
use gcounter_core::Time;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::VecDeque;

/// See the module docs.
#[derive(Debug, Clone)]
pub struct ReadLag {
    /// The sum of acknowledged deltas so far.
    acked: u64,
    /// Acknowledged adds of more than 0 not yet let go of: when, and the
    /// running sum after each.
    acks: VecDeque<(Time, u64)>,
    /// The running sum after the last add let go of.
    pruned_to: u64,
    /// Each client's latest read value (`None` before its first).
    latest: Vec<Option<u64>>,
    lag: Histogram<u64>,
    age_ns: Histogram<u64>,
    lower_bounds: u64,
    /// A decrement was acknowledged: see the module docs.
    signed: bool,
}

impl ReadLag {
    pub fn new(clients: usize) -> Self {
        ReadLag {
            acked: 0,
            acks: VecDeque::new(),
            pruned_to: 0,
            latest: vec![None; clients],
            lag: hdr::new(),
            age_ns: hdr::new(),
            lower_bounds: 0,
            signed: false,
        }
    }

    /// The acknowledged sum now: what a read sent now should reach.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// An add of `delta` was acknowledged at `at`.
    pub fn add_ok(&mut self, delta: i64, at: Time) {
        if delta < 0 {
            self.signed = true;
            self.acks.clear();
        }
        let Ok(delta) = u64::try_from(delta) else {
            return;
        };
        if delta == 0 || self.signed {
            return;
        }
        self.acked = self.acked.saturating_add(delta);
        self.acks.push_back((at, self.acked));
    }

    /// Client `client`'s read, sent at `sent` when the acknowledged sum
    /// was `acked_at_send`, returned `value`.
    pub fn read_ok(&mut self, client: usize, sent: Time, acked_at_send: u64, value: i64) {
        if self.signed {
            return;
        }
        let value = u64::try_from(value).unwrap_or(0);
        let lag = acked_at_send.saturating_sub(value);
        record(&mut self.lag, lag);
        let age = if lag == 0 {
            Time::ZERO
        } else {
            // The oldest acknowledged add the value lacks: the first whose
            // running sum passes it.
            let i = self.acks.partition_point(|&(_, sum)| sum <= value);
            if value < self.pruned_to {
                // That add was let go of: the oldest still held is newer.
                self.lower_bounds += 1;
            }
            self.acks
                .get(i)
                .map_or(Time::ZERO, |&(at, _)| sent.saturating_sub(at))
        };
        record(
            &mut self.age_ns,
            u64::try_from(age.as_nanos()).unwrap_or(u64::MAX),
        );
        if let Some(slot) = self.latest.get_mut(client) {
            *slot = Some(value);
        }
        self.prune();
    }

    fn prune(&mut self) {
        let floor = self
            .latest
            .iter()
            .map(|v| v.unwrap_or(0))
            .min()
            .unwrap_or(0);
        while let Some(&(_, sum)) = self.acks.front().filter(|&&(_, sum)| sum <= floor) {
            self.acks.pop_front();
            self.pruned_to = sum;
        }
    }

    /// How many acknowledged adds are held.
    pub fn held(&self) -> usize {
        self.acks.len()
    }

    /// The quantiles; `None` without a successful read.
    pub fn stats(&self) -> Option<ReadLagStats> {
        if self.lag.is_empty() || self.signed {
            return None;
        }
        let q = |h: &Histogram<u64>, scale: f64| LagQuantiles {
            p50: h.value_at_quantile(0.5) as f64 / scale,
            p99: h.value_at_quantile(0.99) as f64 / scale,
            max: h.max() as f64 / scale,
        };
        Some(ReadLagStats {
            reads: self.lag.len(),
            increments: q(&self.lag, 1.0),
            age_ms: q(&self.age_ns, 1e6),
            lower_bounds: self.lower_bounds,
        })
    }
}

/// p50, p99 and max.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LagQuantiles {
    #[serde(rename = "0.5")]
    pub p50: f64,
    #[serde(rename = "0.99")]
    pub p99: f64,
    #[serde(rename = "1")]
    pub max: f64,
}

/// Read lag over a run's successful reads.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ReadLagStats {
    pub reads: u64,
    /// Acknowledged increments a read's value lacked.
    pub increments: LagQuantiles,
    /// How long before the read was sent the oldest increment it lacked
    /// was acknowledged (0 for a read that lacked none), in ms.
    pub age_ms: LagQuantiles,
    /// Reads whose age is a lower bound: their value was below what every
    /// client had already read.
    pub lower_bounds: u64,
}

impl ReadLagStats {
    /// One line for a person.
    pub fn line(&self) -> String {
        format!(
            "p50 {} / p99 {} / max {} increment(s) behind; the oldest missing acknowledged \
             p50 {:.1} / p99 {:.1} / max {:.1} ms before the read",
            self.increments.p50,
            self.increments.p99,
            self.increments.max,
            self.age_ms.p50,
            self.age_ms.p99,
            self.age_ms.max
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ms(v: u64) -> Time {
        Duration::from_millis(v)
    }

    #[test]
    fn a_read_lags_by_what_it_lacks_since_the_oldest_missing_ack() {
        let mut l = ReadLag::new(2);
        l.add_ok(2, ms(10));
        l.add_ok(3, ms(20));
        l.add_ok(0, ms(25));
        l.add_ok(4, ms(30));
        let sent = l.acked();
        assert_eq!(sent, 9);
        // It has the first add only: 7 behind, the add of 3 acknowledged
        // 80 ms before the read was sent.
        l.read_ok(0, ms(100), sent, 2);
        let s = l.stats().unwrap();
        assert_eq!(s.increments.max, 7.0);
        // Within the histogram's 0.1 %.
        assert!((s.age_ms.max - 80.0).abs() < 0.1, "{}", s.age_ms.max);
        // A read at the sum, or past it, lags by nothing.
        l.read_ok(1, ms(100), sent, 9);
        l.read_ok(1, ms(100), sent, 11);
        let s = l.stats().unwrap();
        assert_eq!((s.reads, s.increments.p50, s.age_ms.p50), (3, 0.0, 0.0));
    }

    #[test]
    fn adds_every_client_has_read_past_are_let_go_of() {
        let mut l = ReadLag::new(2);
        for i in 0..1000 {
            l.add_ok(1, ms(i));
            let sent = l.acked();
            l.read_ok((i % 2) as usize, ms(i), sent, sent as i64);
        }
        assert!(l.held() <= 2, "{}", l.held());
        assert_eq!(l.stats().unwrap().lower_bounds, 0);
        // A node gone back in time: the age is the oldest still known.
        l.read_ok(0, ms(2000), l.acked(), 3);
        let s = l.stats().unwrap();
        assert_eq!(s.lower_bounds, 1);
        assert_eq!(s.increments.max, 997.0);
    }
}
