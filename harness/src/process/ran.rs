//! What a test ran, decided once: the strategy and KV service the nodes
//! use and where each choice came from, and the environment they see.
//! The header, the summary, `results.json`, the page and the replay line
//! all read it from here, so none of them can name one configuration while
//! the nodes run another (a strategy set through `GCOUNTER_STRATEGY` used
//! to leave no trace, and its replay ran `gossip`).

use super::NodeCommand;
use crate::params::RunParams;
use gcounter_core::{Config, KvKind, StrategyKind};
use serde_json::{json, Value};

/// A choice and what made it: `--strategy`, an environment variable, or
/// the node's default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub value: String,
    pub from: &'static str,
}

/// The environment variables that change how a node behaves, as it will
/// see them: ours, inherited or set by the test.
const NODE_VARS: [&str; 5] = [
    Config::STRATEGY_VAR,
    Config::KV_VAR,
    Config::GOSSIP_INTERVAL_VAR,
    "GCOUNTER_STATE_DIR",
    "RUST_LOG",
];

/// What the nodes run.
#[derive(Debug, Clone)]
pub struct Ran {
    /// `None` for a node of somebody else's that was given no strategy.
    pub strategy: Option<Choice>,
    /// `None` for a node of somebody else's with no `GCOUNTER_KV`.
    pub kv: Option<Choice>,
    /// [`NODE_VARS`] as the nodes see them.
    pub env: Vec<(String, String)>,
}

impl Ran {
    /// What `command` will run with `flag` (`--strategy`) given; `ours`
    /// when the command is this binary. A strategy or KV name in the
    /// environment that our node would refuse is refused here, before
    /// any node starts.
    pub fn of(
        command: &NodeCommand,
        flag: Option<StrategyKind>,
        ours: bool,
    ) -> Result<Ran, String> {
        let env = node_env(&command.env, |k| std::env::var(k).ok());
        Ran::with_env(env, flag, ours)
    }

    fn with_env(
        env: Vec<(String, String)>,
        flag: Option<StrategyKind>,
        ours: bool,
    ) -> Result<Ran, String> {
        let var = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let strategy = match (flag, var(Config::STRATEGY_VAR)) {
            (Some(s), _) => Some(Choice {
                value: s.to_string(),
                from: "--strategy",
            }),
            (None, Some(v)) => {
                if ours {
                    v.parse::<StrategyKind>().map_err(|e| e.to_string())?;
                }
                Some(Choice {
                    value: v,
                    from: Config::STRATEGY_VAR,
                })
            }
            (None, None) => ours.then(|| Choice {
                value: Config::default().strategy.to_string(),
                from: "default",
            }),
        };
        let kv = match var(Config::KV_VAR) {
            Some(v) => {
                if ours {
                    v.parse::<KvKind>().map_err(|e| e.to_string())?;
                }
                Some(Choice {
                    value: v,
                    from: Config::KV_VAR,
                })
            }
            None => ours.then(|| Choice {
                value: Config::default().kv.name().to_string(),
                from: "default",
            }),
        };
        Ok(Ran { strategy, kv, env })
    }

    /// For `results.json`'s `settings`: `strategy` and `kv` as names (as
    /// `gcounter sim` records them), `strategy_from` and `kv_from` for
    /// what chose them; `null` where the node's own choice is unknown.
    pub fn json(&self) -> Value {
        let value = |c: &Option<Choice>| c.as_ref().map(|c| c.value.clone());
        let from = |c: &Option<Choice>| c.as_ref().map(|c| c.from);
        json!({
            "strategy": value(&self.strategy),
            "strategy_from": from(&self.strategy),
            "kv": value(&self.kv),
            "kv_from": from(&self.kv),
            "env": self.env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        })
    }

    /// The prefix of a replay line that gives the nodes the same
    /// environment: the KV choice and log level (the strategy goes in
    /// `--strategy`; a state directory is not replayed, since a node takes
    /// up whatever it stored there).
    pub fn replay_env(&self) -> String {
        let kv_flag = self.kv.as_ref().is_some_and(|c| c.from == "--kv");
        self.env
            .iter()
            .filter(|(k, _)| (k == Config::KV_VAR && !kv_flag) || k == "RUST_LOG")
            .map(|(k, v)| format!("{k}={} ", shell_word(v)))
            .collect()
    }

    /// The strategy as `--strategy` would give it, when one was chosen.
    pub fn strategy_flag(&self) -> Option<String> {
        self.strategy
            .as_ref()
            .filter(|c| c.from != "default")
            .map(|c| format!("--strategy {}", shell_word(&c.value)))
    }
}

/// [`NODE_VARS`] from the environment (`get`), with `set` on top.
fn node_env(
    set: &[(String, String)],
    get: impl Fn(&str) -> Option<String>,
) -> Vec<(String, String)> {
    NODE_VARS
        .iter()
        .filter_map(|&k| {
            set.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .or_else(|| get(k))
                .map(|v| (k.to_string(), v))
        })
        .collect()
}

/// `s` quoted for a POSIX shell when it needs it.
pub fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// One line naming everything a run was given: the strategy and KV
/// service (with where each came from), the nodes, the workload, the
/// faults, the latency and the seed.
pub fn describe(settings: &Value) -> String {
    let choice = |key: &str| match settings[key].as_str() {
        Some(value) => match settings[format!("{key}_from")].as_str() {
            Some(from) => format!("{value} ({from})"),
            None => value.to_string(),
        },
        None => "the node's own".to_string(),
    };
    let w = &settings["workload_config"];
    let num = |v: &Value| v.as_f64().map_or("?".to_string(), |v| format!("{v}"));
    let nemesis = match &settings["nemesis"] {
        Value::Object(n) => format!(
            "{} every ~{} s",
            n.get("faults")
                .and_then(Value::as_array)
                .map(|f| f
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(","))
                .unwrap_or_default(),
            n.get("interval").map_or("?".to_string(), num)
        ),
        _ => "none".to_string(),
    };
    let latency = match &settings["latency"] {
        Value::Object(l) => format!(
            "{} ms {}",
            l.get("mean_ms").map_or("?".to_string(), num),
            l.get("dist").and_then(Value::as_str).unwrap_or("")
        ),
        Value::String(s) => s.clone(),
        _ => "none".to_string(),
    };
    // Recorded by the transports that take --adversary (stdio, the
    // simulator); none: Maelstrom's random choices.
    let adversary = match settings["adversary"].as_array() {
        Some(a) if a.is_empty() => "; adversary none".to_string(),
        Some(a) => {
            let names: Vec<&str> = a.iter().filter_map(Value::as_str).collect();
            format!("; adversary {}", names.join(","))
        }
        None => String::new(),
    };
    let bin = settings["bin"]
        .as_array()
        .map(|b| {
            let words: Vec<String> = b.iter().filter_map(Value::as_str).map(shell_word).collect();
            format!(" of {}", words.join(" "))
        })
        .unwrap_or_default();
    format!(
        "strategy {}, kv {}; {} node(s){bin} over {}, {} client(s); rate {}/s, time limit {} s, \
         recovery {} s; nemesis {nemesis}; latency {latency}{adversary}; seed {}",
        choice("strategy"),
        choice("kv"),
        settings["node_count"],
        settings["transport"].as_str().unwrap_or("stdio"),
        settings["concurrency"],
        num(&w["rate"]),
        num(&w["time_limit"]),
        num(&w["recovery"]),
        settings["seed"],
    )
}

/// The settings as rows for the page: each choice with where it came
/// from, and the line that replays the run.
pub fn settings_rows(settings: &Value) -> Vec<(String, String)> {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "none".to_string(),
        Value::Array(a) if a.iter().all(Value::is_string) => a
            .iter()
            .filter_map(Value::as_str)
            .map(shell_word)
            .collect::<Vec<_>>()
            .join(" "),
        v => v.to_string(),
    };
    let mut rows = vec![("ran".to_string(), describe(settings))];
    for key in ["strategy", "kv"] {
        let from = settings[format!("{key}_from")]
            .as_str()
            .map_or(String::new(), |f| format!(" ({f})"));
        if let Some(v) = settings[key].as_str() {
            rows.push((key.to_string(), format!("{v}{from}")));
        }
    }
    for key in [
        "bin",
        "env",
        "transport",
        "node_count",
        "concurrency",
        "seed",
        "replay",
        "warnings",
    ] {
        match settings.get(key) {
            Some(Value::Array(a)) if a.is_empty() => {}
            Some(v) => rows.push((key.replace('_', " "), text(v))),
            None => {}
        }
    }
    rows
}

/// Why a run with these parameters tests little, if it does: said before
/// it starts and kept in `results.json`.
pub fn warnings(p: &RunParams) -> Vec<String> {
    let mut w = Vec::new();
    if p.rate == 0.0 {
        w.push("--rate 0: no client sends anything but its final read".to_string());
    }
    if p.time_limit == 0.0 {
        w.push("--time-limit 0: no operations before the final reads".to_string());
    } else if p.nemesis.is_some() && p.time_limit < p.nemesis_interval {
        w.push(format!(
            "--time-limit {} is shorter than --nemesis-interval {}: the nemesis may never act",
            p.time_limit, p.nemesis_interval
        ));
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_strategy_from_the_environment_is_recorded_and_replayed_as_a_flag() {
        let ran = Ran::with_env(env(&[("GCOUNTER_STRATEGY", "naive")]), None, true).unwrap();
        let s = ran.strategy.as_ref().unwrap();
        assert_eq!((s.value.as_str(), s.from), ("naive", "GCOUNTER_STRATEGY"));
        assert_eq!(ran.strategy_flag().as_deref(), Some("--strategy naive"));
        assert_eq!(ran.kv.as_ref().unwrap().value, "seq-kv");
    }

    #[test]
    fn the_flag_wins_and_the_kv_is_replayed_through_the_environment() {
        let ran = Ran::with_env(
            env(&[("GCOUNTER_STRATEGY", "naive"), ("GCOUNTER_KV", "lin-kv")]),
            Some(StrategyKind::Cas),
            true,
        )
        .unwrap();
        assert_eq!(ran.strategy_flag().as_deref(), Some("--strategy cas"));
        assert_eq!(ran.replay_env(), "GCOUNTER_KV=lin-kv ");
        assert_eq!(ran.kv.as_ref().unwrap().from, "GCOUNTER_KV");
    }

    #[test]
    fn a_default_strategy_is_ours_only_and_a_bad_name_is_refused_for_ours() {
        let theirs = Ran::with_env(vec![], None, false).unwrap();
        assert!(theirs.strategy.is_none() && theirs.kv.is_none());
        let ours = Ran::with_env(vec![], None, true).unwrap();
        assert_eq!(ours.strategy.unwrap().from, "default");
        assert!(Ran::with_env(env(&[("GCOUNTER_STRATEGY", "nope")]), None, true).is_err());
        assert!(Ran::with_env(env(&[("GCOUNTER_STRATEGY", "nope")]), None, false).is_ok());
    }

    #[test]
    fn the_set_environment_is_laid_over_the_inherited_one() {
        let got = node_env(&env(&[("GCOUNTER_STRATEGY", "cas")]), |k| {
            (k == "GCOUNTER_STRATEGY" || k == "RUST_LOG").then(|| "x".to_string())
        });
        assert_eq!(got, env(&[("GCOUNTER_STRATEGY", "cas"), ("RUST_LOG", "x")]));
    }

    #[test]
    fn words_are_quoted_only_when_a_shell_needs_it() {
        assert_eq!(shell_word("node.py"), "node.py");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }
}
