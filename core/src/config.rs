//! Configuration: what the node is told before it starts, kept apart from
//! what it learns while running.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// How the counter is kept (see the `strategy` module).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StrategyKind {
    Gossip,
    PerNode,
    Cas,
    Naive,
    /// `gossip` that keeps one signed total per slot and merges by its
    /// maximum: right for a g-counter, wrong once a count may go down (a
    /// peer keeps the higher, older total of a slot, erasing the decrement
    /// after it). Kept, like `naive`, to be caught.
    GossipMax,
}

impl StrategyKind {
    pub const ALL: [StrategyKind; 5] = [
        StrategyKind::Gossip,
        StrategyKind::PerNode,
        StrategyKind::Cas,
        StrategyKind::Naive,
        StrategyKind::GossipMax,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StrategyKind::Gossip => "gossip",
            StrategyKind::PerNode => "per-node",
            StrategyKind::Cas => "cas",
            StrategyKind::Naive => "naive",
            StrategyKind::GossipMax => "gossip-max",
        }
    }

    /// Whether the strategy keeps the counter in a KV service.
    pub fn uses_kv(self) -> bool {
        !matches!(self, StrategyKind::Gossip | StrategyKind::GossipMax)
    }
}

/// Which of Maelstrom's KV services the KV strategies talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KvKind {
    SeqKv,
    LinKv,
}

impl KvKind {
    pub const ALL: [KvKind; 2] = [KvKind::SeqKv, KvKind::LinKv];

    /// The service's node id, which is also the variable's value.
    pub fn name(self) -> &'static str {
        match self {
            KvKind::SeqKv => "seq-kv",
            KvKind::LinKv => "lin-kv",
        }
    }
}

macro_rules! named_enum {
    ($ty:ident) => {
        impl FromStr for $ty {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, UnknownValue> {
                $ty::ALL
                    .into_iter()
                    .find(|k| k.name() == s)
                    .ok_or_else(|| UnknownValue {
                        given: s.to_string(),
                        valid: $ty::ALL.iter().map(|k| k.name()).collect(),
                    })
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}
named_enum!(StrategyKind);
named_enum!(KvKind);

/// A value that is not one of the names allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownValue {
    pub given: String,
    pub valid: Vec<&'static str>,
}

impl fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown value `{}` (valid: {})",
            self.given,
            self.valid.join(", ")
        )
    }
}

/// A configuration error naming the variable at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: UnknownValue,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.problem)
    }
}

impl std::error::Error for ConfigError {}

/// Everything a node needs to know before `init`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub strategy: StrategyKind,
    pub kv: KvKind,
    /// How often `gossip` spreads what changed: how long a change may be
    /// held before it is sent, traded against messages (a round sends at
    /// most one message to each peer). At Maelstrom's evaluation (3
    /// nodes, 100 ops/s) 300 ms keeps gossip under 0.5 messages per
    /// operation. Zero is eager: a round right after every add, and
    /// rounds every [`EAGER_RETRY`] for answers and repairs.
    pub gossip_interval: Duration,
    /// How long a KV call may go unanswered before the strategy is told.
    pub rpc_timeout: Duration,
    /// How long a client waits for a reply (Maelstrom's clients: 5 s).
    /// With the KV service silent, a request that has waited this long is
    /// refused (error 11): its client has given up on it, so the refusal
    /// bounds the node's work without changing what any client sees. A
    /// shorter bound would fail reads (the final reads among them) that a
    /// slow but live service would still have answered in time.
    pub patience: Duration,
    /// How old a KV strategy's view of the counter may be and still answer
    /// a read without asking the service: a read arriving within this time
    /// of the start of the last completed read round is answered from that
    /// round, and past half of it also starts a round in the background.
    /// Zero makes every read ask the service. A read after a quiet spell
    /// longer than this (the final reads) always asks.
    pub read_staleness: Duration,
    /// Distinguishes a restarted process from its previous lives (0 by
    /// default; the transports of the `gcounter` binary give every life a
    /// new one). Values written to mean "fresh" and gossip slots include it.
    pub incarnation: u64,
    /// The last state the node asked to be stored with
    /// [`Output::Persist`](crate::Output::Persist) in a previous life,
    /// given back by the transport at start. `None` for a node that never
    /// ran before, for one whose transport keeps nothing across restarts,
    /// and in the simulator, where nodes never restart.
    pub restored: Option<String>,
    /// Whether the transport stores what the node asks it to
    /// ([`Output::Persist`](crate::Output::Persist)). On by default; a
    /// transport that keeps nothing across restarts (the stdio transport
    /// without a state directory) turns it off, and the node then does
    /// not build states that nobody would store: for `gossip`, a JSON
    /// text of its counts on every add.
    pub persist: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            strategy: StrategyKind::Gossip,
            kv: KvKind::SeqKv,
            gossip_interval: Duration::from_millis(300),
            rpc_timeout: Duration::from_secs(1),
            patience: Duration::from_secs(5),
            read_staleness: Duration::from_secs(1),
            incarnation: 0,
            restored: None,
            persist: true,
        }
    }
}

/// With `gossip_interval` zero, how often `gossip` still runs a round of
/// its own: to send the answers it owes and to repair lost messages (see
/// the strategy's doc). The default interval, so eager never sends more
/// than the default would besides the rounds its adds start.
pub const EAGER_RETRY: Duration = Duration::from_millis(300);

impl Config {
    pub const STRATEGY_VAR: &'static str = "GCOUNTER_STRATEGY";
    pub const KV_VAR: &'static str = "GCOUNTER_KV";
    pub const GOSSIP_INTERVAL_VAR: &'static str = "GCOUNTER_GOSSIP_INTERVAL";

    /// A `gossip_interval` as given on a command line or in
    /// `GCOUNTER_GOSSIP_INTERVAL`: whole milliseconds, 0 for eager.
    pub fn parse_gossip_interval(text: &str) -> Result<Duration, UnknownValue> {
        text.trim()
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| UnknownValue {
                given: text.to_string(),
                valid: vec!["whole milliseconds, 0 for eager"],
            })
    }

    /// Reads `GCOUNTER_STRATEGY`, `GCOUNTER_KV` and
    /// `GCOUNTER_GOSSIP_INTERVAL` through `var`, so the
    /// core never touches the process environment itself.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut cfg = Config::default();
        if let Some(v) = var(Self::STRATEGY_VAR) {
            cfg.strategy = v.parse().map_err(|problem| ConfigError {
                variable: Self::STRATEGY_VAR,
                problem,
            })?;
        }
        if let Some(v) = var(Self::KV_VAR) {
            cfg.kv = v.parse().map_err(|problem| ConfigError {
                variable: Self::KV_VAR,
                problem,
            })?;
        }
        if let Some(v) = var(Self::GOSSIP_INTERVAL_VAR) {
            cfg.gossip_interval =
                Self::parse_gossip_interval(&v).map_err(|problem| ConfigError {
                    variable: Self::GOSSIP_INTERVAL_VAR,
                    problem,
                })?;
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_variables() {
        assert_eq!(Config::from_vars(|_| None), Ok(Config::default()));
    }

    #[test]
    fn an_unknown_strategy_names_the_valid_ones() {
        let err =
            Config::from_vars(|k| (k == "GCOUNTER_STRATEGY").then(|| "paxos".into())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "GCOUNTER_STRATEGY: unknown value `paxos` (valid: gossip, per-node, cas, naive, gossip-max)"
        );
    }

    #[test]
    fn gossip_interval_is_read_in_milliseconds() {
        let var = |v: &'static str| {
            move |k: &str| (k == "GCOUNTER_GOSSIP_INTERVAL").then(|| v.to_string())
        };
        let cfg = Config::from_vars(var("0")).unwrap();
        assert_eq!(cfg.gossip_interval, Duration::ZERO);
        let cfg = Config::from_vars(var("1000")).unwrap();
        assert_eq!(cfg.gossip_interval, Duration::from_secs(1));
        let err = Config::from_vars(var("1s")).unwrap_err();
        assert_eq!(err.variable, "GCOUNTER_GOSSIP_INTERVAL");
    }

    #[test]
    fn kv_is_read() {
        let cfg = Config::from_vars(|k| (k == "GCOUNTER_KV").then(|| "lin-kv".into())).unwrap();
        assert_eq!(cfg.kv, KvKind::LinKv);
    }
}
