//! etcd v3 behind the KV strategies: a real replicated database in place
//! of `gcounter kv`'s model.
//!
//! - [`client`]: a small HTTP/1.1 JSON client of etcd's gateway, with
//!   fail-over between endpoints and a timeout on every call.
//! - [`kv`](self::kv): Maelstrom's `read` / `write` / `cas` as Range / Put /
//!   Txn, answered to the node's core as the KV service would.
//! - [`cluster`]: local etcd members as child processes, for
//!   `gcounter cluster --kv etcd` and the tests.
//!
//! A node is pointed at etcd with `--kv etcd://HOST:PORT[,HOST:PORT...][/PREFIX]`
//! ([`EtcdTarget`]). Every key goes under the prefix, so clusters can share
//! an etcd.

mod base64;
pub mod client;
pub mod cluster;
pub(crate) mod kv;

pub use client::{CallError, EtcdClient};
pub use cluster::{EtcdCluster, MISSING_ETCD};
pub use kv::CALL_TIMEOUT;

/// The scheme that points a node's `--kv` at etcd.
pub const SCHEME: &str = "etcd://";
/// The prefix keys go under when the address names none.
pub const DEFAULT_PREFIX: &str = "gcounter/";

/// Where a node finds etcd: its members' client addresses, and the prefix
/// of every key it writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdTarget {
    pub endpoints: Vec<String>,
    pub prefix: String,
}

impl EtcdTarget {
    pub fn new(endpoints: Vec<String>, prefix: impl Into<String>) -> EtcdTarget {
        EtcdTarget {
            endpoints,
            prefix: prefix.into(),
        }
    }

    /// `Ok(None)` for an address that is not `etcd://...` (a `gcounter kv`).
    pub fn parse(s: &str) -> Result<Option<EtcdTarget>, String> {
        let Some(rest) = s.strip_prefix(SCHEME) else {
            return Ok(None);
        };
        let (hosts, prefix) = match rest.split_once('/') {
            Some((hosts, prefix)) => (hosts, prefix.to_owned()),
            None => (rest, DEFAULT_PREFIX.to_owned()),
        };
        let endpoints: Vec<String> = hosts.split(',').map(str::to_owned).collect();
        for e in &endpoints {
            match e.rsplit_once(':') {
                Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {}
                _ => {
                    return Err(format!(
                        "`{e}` in `{s}` is not HOST:PORT (such as etcd://127.0.0.1:2379)"
                    ))
                }
            }
        }
        Ok(Some(EtcdTarget { endpoints, prefix }))
    }

    /// The `--kv` that names this target.
    pub fn url(&self) -> String {
        format!("{SCHEME}{}/{}", self.endpoints.join(","), self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets() {
        assert_eq!(EtcdTarget::parse("127.0.0.1:7400"), Ok(None));
        let t = EtcdTarget::parse("etcd://a:1,b:2").unwrap().unwrap();
        assert_eq!(t.endpoints, ["a:1", "b:2"]);
        assert_eq!(t.prefix, DEFAULT_PREFIX);
        let t = EtcdTarget::parse("etcd://a:1/x/y/").unwrap().unwrap();
        assert_eq!(t.prefix, "x/y/");
        assert_eq!(EtcdTarget::parse(&t.url()), Ok(Some(t)));
        assert!(EtcdTarget::parse("etcd://a").is_err());
        assert!(EtcdTarget::parse("etcd://").is_err());
    }
}
