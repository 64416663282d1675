//! The choices a test makes, and who makes them (DESIGN.md, "Choices:
//! random, adversarial, exhaustive").
//!
//! The test core asks at one place per kind of choice, handing over only
//! the options the rules allow (SPEC.md sections 3 and 4):
//!
//! - which state `seq-kv` runs a request against first: one of the
//!   client's window ([`SeqKv::window`](gcounter_core::service::SeqKv::window)),
//!   from the newest state that client has observed (or the oldest of the
//!   32 kept) to the newest;
//! - how long a message takes: nothing for client traffic (Maelstrom's
//!   rule, so the policy is not even asked), any finite delay for
//!   node<->node and node<->service traffic (under exponential latency
//!   every finite delay has positive probability, so every causal order of
//!   delivery is one Maelstrom can produce).
//!
//! A [`Policy`] answers. [`Maelstrom`] answers as Maelstrom does: the
//! service's own seeded draw, uniform over the window, and the `--latency`
//! sample; [`Adversarial`] makes the worst legal choice for each
//! [`Adversary`] named by `--adversary`. `explore` enumerates the same
//! options itself. [`crate::legality`] checks, from a run's trace alone,
//! that whatever the policy answered stayed inside the options.

use crate::services::SERVICE_NAMES;
use crate::workload::{is_client, Phase};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::RangeInclusive;
use std::time::Duration;

/// A worst legal choice, made on purpose, so that a race a node has opens
/// in one run instead of once in many.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Adversary {
    /// `seq-kv` serves every request from the stalest state the client's
    /// window allows.
    Stale,
    /// Node<->service messages take tens to hundreds of ms, heavy-tailed,
    /// and a node's change waits until that node has acknowledged an add
    /// (which its client is given next).
    SlowKv,
    /// Node<->node messages are delayed and overtaken; a few sent during
    /// the main phase arrive, oldest last, just before the final reads.
    Reorder,
    /// Each client's first operation is an add of more than 0, and every
    /// node but the first to reach for a service waits for one to be
    /// acknowledged, so that its first request meets a store another node
    /// has already changed.
    AddsFirst,
    /// A kill strikes just after one of its nodes acknowledged an add of
    /// more than 0.
    KillAfterAck,
}

impl Adversary {
    /// In the order `--runs` tries them.
    pub const ALL: [Adversary; 5] = [
        Adversary::Stale,
        Adversary::SlowKv,
        Adversary::Reorder,
        Adversary::AddsFirst,
        Adversary::KillAfterAck,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Adversary::Stale => "stale",
            Adversary::SlowKv => "slow-kv",
            Adversary::Reorder => "reorder",
            Adversary::AddsFirst => "adds-first",
            Adversary::KillAfterAck => "kill-after-ack",
        }
    }

    /// What it does and the Maelstrom rule it stays inside, for `--help`
    /// and the README.
    pub fn rule(self) -> &'static str {
        match self {
            Adversary::Stale => {
                "seq-kv runs every request first against the stalest state of the client's \
                 window (the newest state it has observed, or the oldest of the 32 kept), never \
                 newer; a change still lands on the newest state. Maelstrom draws that state at \
                 random in the same window, so each pick is one it makes with positive \
                 probability. Fairness: after 3 requests in a row from one client failed against \
                 a stale state, the next is served from the newest (an endless run of stalest \
                 picks has probability 0 under Maelstrom)"
            }
            Adversary::SlowKv => {
                "node<->service messages get an extra 20 ms to 1 s, heavy-tailed (median ~32 ms, \
                 p99 ~430 ms), so a read-modify-write stays open while the node's next requests \
                 arrive; and a write or cas a node sends is held until that node has acknowledged \
                 an add of more than 0, which its client is given as its next operation (800 ms \
                 at most; when the node is stuck, its clients all busy and nothing but held \
                 requests of its at the store, its oldest held change goes on after 100 ms). \
                 Maelstrom's latency applies to those links and, exponential, gives every finite \
                 delay positive probability; its generator draws add or read, and the delta, at \
                 random for every operation; client<->node traffic stays at zero latency, as in \
                 Maelstrom"
            }
            Adversary::Reorder => {
                "node<->node messages get an extra exponential delay (mean 30 ms), and 1 in 16 \
                 sent during the main phase is held until 1 ms before the final reads, the \
                 oldest delivered last. Every finite delay, so every causal order, has positive \
                 probability under Maelstrom's exponential latency; nothing is dropped but by a \
                 partition, on delivery, as Maelstrom does"
            }
            Adversary::AddsFirst => {
                "each client's first operation is an add of more than 0 (Maelstrom draws add or \
                 read, and the delta 0..=4, at random for every operation, so any order of them \
                 has positive probability); and the requests to a service of every node but the \
                 first to send one are held until an add of more than 0 has been acknowledged \
                 (1 s at most), then sent on in order (any finite delay of a node<->service \
                 message has positive probability under Maelstrom's exponential latency). With \
                 stale, a node's first read-modify-write then sees the store as it was before \
                 another node's acknowledged add"
            }
            Adversary::KillAfterAck => {
                "with --nemesis kill: a kill the nemesis draws waits (at most 2 s) until one of \
                 its nodes has just acknowledged an add of more than 0, and strikes then, before \
                 the node's next step. Maelstrom's nemesis strikes at a random time, so every instant, \
                 this one included, has positive probability"
            }
        }
    }
}

impl fmt::Display for Adversary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The adversaries of one run, each once, in the order of
/// [`Adversary::ALL`] (empty: Maelstrom's random choices).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Adversaries(Vec<Adversary>);

impl Adversaries {
    /// Maelstrom's random choices, no adversary.
    pub fn none() -> Self {
        Adversaries(Vec::new())
    }

    /// These adversaries together.
    pub fn of(set: &[Adversary]) -> Self {
        let mut set = set.to_vec();
        set.sort();
        set.dedup();
        Adversaries(set)
    }

    pub fn one(a: Adversary) -> Self {
        Adversaries(vec![a])
    }

    /// A comma list such as `stale,slow-kv`, or `none`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut set = Vec::new();
        for name in s.split(',').map(str::trim) {
            if name == "none" {
                continue;
            }
            let a = Adversary::ALL
                .into_iter()
                .find(|a| a.name() == name)
                .ok_or_else(|| {
                    format!(
                        "unknown adversary `{name}` (valid: none, stale, slow-kv, reorder, \
                         adds-first, kill-after-ack)"
                    )
                })?;
            set.push(a);
        }
        set.sort();
        set.dedup();
        Ok(Adversaries(set))
    }

    pub fn has(&self, a: Adversary) -> bool {
        self.0.contains(&a)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = Adversary> + '_ {
        self.0.iter().copied()
    }
}

impl fmt::Display for Adversaries {
    /// As typed: `stale,slow-kv`, or `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        let names: Vec<&str> = self.0.iter().map(|a| a.name()).collect();
        f.write_str(&names.join(","))
    }
}

/// Which rule of latency a message falls under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// To or from a client: no latency, ever.
    Client,
    /// Between a node and a service (`seq-kv`, ...).
    Service,
    /// Between two nodes.
    Peer,
}

impl Link {
    pub fn of(src: &str, dest: &str) -> Link {
        if is_client(src) || is_client(dest) {
            Link::Client
        } else if SERVICE_NAMES.contains(&src) || SERVICE_NAMES.contains(&dest) {
            Link::Service
        } else {
            Link::Peer
        }
    }
}

/// How long a message takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delay {
    After(Duration),
    /// Held, and delivered just before the final reads (after the final
    /// heal, so no partition drops it): only for a message sent during the
    /// main phase, where the final reads are still to come.
    UntilFinalReads,
}

/// Answers the test's choices. Every method has Maelstrom's answer as its
/// default.
pub trait Policy: fmt::Debug + Send {
    /// The state of `window` that a `seq-kv` request from `client` runs
    /// against first; `None`: the service's own seeded draw, uniform over
    /// the window, as Maelstrom's.
    fn kv_state(&mut self, _client: &str, _window: RangeInclusive<u64>) -> Option<u64> {
        None
    }

    /// What came of a `seq-kv` request: whether it failed (a definite
    /// error) against a state older than the newest.
    fn kv_answered(&mut self, _client: &str, _failed_stale: bool) {}

    /// The delay of a node<->node or node<->service message sent in
    /// `phase`; `sampled` is the `--latency` draw, Maelstrom's answer.
    fn delay(&mut self, _link: Link, _phase: Phase, sampled: Duration) -> Delay {
        Delay::After(sampled)
    }

    /// How long a kill the nemesis has drawn may wait for one of its nodes
    /// to acknowledge an add, to strike just after it; `None`: at once, as
    /// Maelstrom's nemesis strikes.
    fn kill_hold(&self) -> Option<Duration> {
        None
    }

    /// Whether every node but the first to reach for a service has its
    /// requests held until an add of more than 0 is acknowledged
    /// (`adds-first`; see `testcore::holds`); Maelstrom holds nothing.
    fn holds_first_requests(&self) -> bool {
        false
    }

    /// Whether a change a node sends is held until that node acknowledges
    /// an add of more than 0, its client given one next (`slow-kv`; see
    /// `testcore::holds`).
    fn holds_changes(&self) -> bool {
        false
    }
}

/// How long `kill-after-ack` holds a kill for an acknowledgement at most.
pub const KILL_HOLD: Duration = Duration::from_secs(2);

/// Maelstrom's random choices.
#[derive(Debug, Clone, Copy, Default)]
pub struct Maelstrom;

impl Policy for Maelstrom {}

/// After this many requests in a row from one client failed against a
/// stale state, `stale` serves the next from the newest: under Maelstrom
/// an endless run of stale picks has probability 0, so a correct node that
/// retries must not be starved forever.
pub const STALE_FAILURES_BEFORE_FRESH: u32 = 3;

/// How often `reorder` holds a main-phase node<->node message until the
/// final reads: 1 in this many.
const HOLD_ONE_IN: u32 = 16;

/// The worst legal choices for a set of adversaries; the choices no
/// adversary takes over stay Maelstrom's.
#[derive(Debug)]
pub struct Adversarial {
    set: Adversaries,
    /// The adversaries' own draws, apart from the test's generator, so the
    /// workload and the nemesis draw what they would without them.
    rng: fastrand::Rng,
    /// Per client, requests in a row that failed against a stale state.
    stale_failures: BTreeMap<String, u32>,
}

impl Adversarial {
    pub fn new(set: Adversaries, seed: u64) -> Self {
        Adversarial {
            set,
            // Any fixed mix of the seed will do; this one is the
            // golden-ratio constant, so seed 0 is not the generator's 0.
            rng: fastrand::Rng::with_seed(seed ^ 0x9E37_79B9_7F4A_7C15),
            stale_failures: BTreeMap::new(),
        }
    }

    /// Pareto with a 20 ms minimum and shape 1.5 (median ~32 ms, mean
    /// 60 ms, p99 ~430 ms), capped at 1 s so it stays well inside the
    /// client's 5 s and the nodes' own KV timeouts adapt to it.
    fn slow_kv(&mut self) -> Duration {
        let u = 1.0 - self.rng.f64(); // (0, 1]
        let ms = (20.0 * u.powf(-1.0 / 1.5)).min(1000.0);
        Duration::from_secs_f64(ms / 1000.0)
    }

    fn exponential(&mut self, mean_ms: f64) -> Duration {
        let u = 1.0 - self.rng.f64();
        Duration::from_secs_f64(-u.ln() * mean_ms / 1000.0)
    }
}

impl Policy for Adversarial {
    fn kill_hold(&self) -> Option<Duration> {
        self.set.has(Adversary::KillAfterAck).then_some(KILL_HOLD)
    }

    fn holds_first_requests(&self) -> bool {
        self.set.has(Adversary::AddsFirst)
    }

    fn holds_changes(&self) -> bool {
        self.set.has(Adversary::SlowKv)
    }

    fn kv_state(&mut self, client: &str, window: RangeInclusive<u64>) -> Option<u64> {
        if !self.set.has(Adversary::Stale) {
            return None;
        }
        let starved =
            self.stale_failures.get(client).copied().unwrap_or(0) >= STALE_FAILURES_BEFORE_FRESH;
        Some(if starved {
            *window.end()
        } else {
            *window.start()
        })
    }

    fn kv_answered(&mut self, client: &str, failed_stale: bool) {
        if failed_stale {
            *self.stale_failures.entry(client.to_string()).or_default() += 1;
        } else {
            self.stale_failures.remove(client);
        }
    }

    fn delay(&mut self, link: Link, phase: Phase, sampled: Duration) -> Delay {
        match link {
            Link::Client => Delay::After(Duration::ZERO),
            Link::Service if self.set.has(Adversary::SlowKv) => {
                Delay::After(sampled + self.slow_kv())
            }
            Link::Peer if self.set.has(Adversary::Reorder) => {
                if phase == Phase::Main && self.rng.u32(..HOLD_ONE_IN) == 0 {
                    Delay::UntilFinalReads
                } else {
                    Delay::After(sampled + self.exponential(30.0))
                }
            }
            Link::Service | Link::Peer => Delay::After(sampled),
        }
    }
}

/// The policy for `--adversary`: Maelstrom's without one.
pub fn policy(set: &Adversaries, seed: u64) -> Box<dyn Policy> {
    if set.is_empty() {
        Box::new(Maelstrom)
    } else {
        Box::new(Adversarial::new(set.clone(), seed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_in_one_order_and_none_is_empty() {
        let a = Adversaries::parse("reorder, stale,stale").unwrap();
        assert_eq!(a.to_string(), "stale,reorder");
        assert!(Adversaries::parse("none").unwrap().is_empty());
        assert_eq!(Adversaries::none().to_string(), "none");
        let err = Adversaries::parse("evil").unwrap_err();
        assert!(
            err.contains("valid: none, stale, slow-kv, reorder"),
            "{err}"
        );
    }

    #[test]
    fn links_are_told_apart() {
        assert_eq!(Link::of("c1", "n0"), Link::Client);
        assert_eq!(Link::of("n0", "c0"), Link::Client);
        assert_eq!(Link::of("n0", "seq-kv"), Link::Service);
        assert_eq!(Link::of("lin-kv", "n2"), Link::Service);
        assert_eq!(Link::of("n0", "n1"), Link::Peer);
    }

    #[test]
    fn stale_picks_the_window_start_until_a_client_is_starved() {
        let mut p = Adversarial::new(Adversaries::one(Adversary::Stale), 1);
        assert_eq!(p.kv_state("n0", 3..=9), Some(3));
        for _ in 0..STALE_FAILURES_BEFORE_FRESH {
            assert_eq!(p.kv_state("n0", 3..=9), Some(3));
            p.kv_answered("n0", true);
        }
        // Starved: the newest, once; another client is not affected.
        assert_eq!(p.kv_state("n1", 3..=9), Some(3));
        assert_eq!(p.kv_state("n0", 3..=9), Some(9));
        p.kv_answered("n0", false);
        assert_eq!(p.kv_state("n0", 5..=9), Some(5));
    }

    #[test]
    fn without_stale_the_service_draws() {
        let mut p = Adversarial::new(Adversaries::one(Adversary::SlowKv), 1);
        assert_eq!(p.kv_state("n0", 3..=9), None);
        assert_eq!(Maelstrom.kv_state("n0", 3..=9), None);
    }

    #[test]
    fn delays_touch_only_their_links() {
        let seed = 7;
        eprintln!("seed {seed}");
        let ms = Duration::from_millis;
        let mut slow = Adversarial::new(Adversaries::one(Adversary::SlowKv), seed);
        let mut held = 0;
        let mut reorder = Adversarial::new(Adversaries::one(Adversary::Reorder), seed);
        for _ in 0..2000 {
            let Delay::After(d) = slow.delay(Link::Service, Phase::Main, ms(5)) else {
                panic!("slow-kv never holds");
            };
            assert!(d >= ms(25) && d <= ms(1005), "{d:?}");
            assert_eq!(
                slow.delay(Link::Peer, Phase::Main, ms(5)),
                Delay::After(ms(5))
            );
            assert_eq!(
                slow.delay(Link::Client, Phase::Main, ms(5)),
                Delay::After(Duration::ZERO)
            );
            match reorder.delay(Link::Peer, Phase::Main, ms(5)) {
                Delay::UntilFinalReads => held += 1,
                Delay::After(d) => assert!(d >= ms(5)),
            }
            assert!(matches!(
                reorder.delay(Link::Peer, Phase::Recovery, ms(5)),
                Delay::After(_)
            ));
        }
        // About 1 in 16 of 2000.
        assert!((60..=200).contains(&held), "{held}");
    }
}
