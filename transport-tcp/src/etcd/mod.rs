//! etcd v3 behind the KV strategies: a real replicated database in place
//! of `gcounter kv`'s model.
//!
//! - [`client`]: a small HTTP/1.1 JSON client of etcd's gateway, with
//!   fail-over between endpoints and a timeout on every call.
//! - `kv`: Maelstrom's `read` / `write` / `cas` as Range / Put /
//!   Txn, answered to the node's core as the KV service would.
//! - [`cluster`]: local etcd members as child processes, for
//!   `gcounter cluster --kv etcd` and the tests, with TLS and
//!   authentication unless told otherwise.
//! - [`creds`]: etcdctl's `--cacert`, `--cert`, `--key`, `--user`.
//! - [`pki`]: the certificates a local etcd cluster is started with.
//!
//! A node is pointed at etcd with `--kv etcd://HOST:PORT[,HOST:PORT...][/PREFIX]`
//! (`etcds://` for TLS) ([`EtcdTarget`]). Every key goes under the prefix,
//! so clusters can share an etcd.

pub(crate) mod base64;
pub mod client;
pub mod cluster;
pub mod creds;
pub(crate) mod kv;
pub mod pki;

pub use client::{CallError, EtcdClient};
pub use cluster::{EtcdCluster, MISSING_ETCD};
pub use creds::{EtcdCreds, Security, PASSWORD_ENV};
pub use kv::CALL_TIMEOUT;

/// etcd's JSON carries keys and values as base64 (for tests and tools
/// that call etcd themselves).
pub fn base64_encode(bytes: &[u8]) -> String {
    base64::encode(bytes)
}

/// The scheme that points a node's `--kv` at etcd.
pub const SCHEME: &str = "etcd://";
/// The same, with TLS.
pub const TLS_SCHEME: &str = "etcds://";

/// Parses `--etcd-endpoints` given as `etcdctl --endpoints` takes them:
/// `HOST:PORT`, `http://HOST:PORT` or `https://HOST:PORT`, all with the
/// same scheme. Returns whether they are TLS, and the `HOST:PORT`s.
pub fn parse_endpoints(endpoints: &[String]) -> Result<(bool, Vec<String>), String> {
    let mut tls = None;
    let mut out = Vec::new();
    for e in endpoints {
        let (is_tls, hostport) = match (e.strip_prefix("https://"), e.strip_prefix("http://")) {
            (Some(rest), _) => (true, rest),
            (_, Some(rest)) => (false, rest),
            _ => (false, e.as_str()),
        };
        let hostport = hostport.trim_end_matches('/');
        match hostport.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {}
            _ => return Err(format!("`{e}` is not [https://]HOST:PORT")),
        }
        if tls.is_some_and(|t| t != is_tls) {
            return Err("the etcd endpoints mix https:// and plain http".into());
        }
        tls = Some(is_tls);
        out.push(hostport.to_owned());
    }
    Ok((tls.unwrap_or(false), out))
}
/// The prefix keys go under when the address names none.
pub const DEFAULT_PREFIX: &str = "gcounter/";

/// Where a node finds etcd: its members' client addresses, and the prefix
/// of every key it writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdTarget {
    pub endpoints: Vec<String>,
    pub prefix: String,
    /// The endpoints speak TLS (`etcds://`).
    pub tls: bool,
}

impl EtcdTarget {
    pub fn new(endpoints: Vec<String>, prefix: impl Into<String>) -> EtcdTarget {
        EtcdTarget {
            endpoints,
            prefix: prefix.into(),
            tls: false,
        }
    }

    /// The same target, over TLS or not.
    pub fn with_tls(mut self, tls: bool) -> EtcdTarget {
        self.tls = tls;
        self
    }

    /// `Ok(None)` for an address that is not `etcd://...` or `etcds://...`
    /// (a `gcounter kv`).
    pub fn parse(s: &str) -> Result<Option<EtcdTarget>, String> {
        let (tls, rest) = match (s.strip_prefix(SCHEME), s.strip_prefix(TLS_SCHEME)) {
            (Some(rest), _) => (false, rest),
            (_, Some(rest)) => (true, rest),
            _ => return Ok(None),
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
        Ok(Some(EtcdTarget {
            endpoints,
            prefix,
            tls,
        }))
    }

    /// The `--kv` that names this target.
    pub fn url(&self) -> String {
        let scheme = if self.tls { TLS_SCHEME } else { SCHEME };
        format!("{scheme}{}/{}", self.endpoints.join(","), self.prefix)
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
        let t = EtcdTarget::parse("etcds://a:1/p/").unwrap().unwrap();
        assert!(t.tls);
        assert_eq!(EtcdTarget::parse(&t.url()), Ok(Some(t)));
    }

    #[test]
    fn parses_endpoints_as_etcdctl_does() {
        let e = |s: &[&str]| parse_endpoints(&s.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            e(&["a:1", "http://b:2"]),
            Ok((false, vec!["a:1".into(), "b:2".into()]))
        );
        assert_eq!(e(&["https://a:1/"]), Ok((true, vec!["a:1".into()])));
        assert!(e(&["https://a:1", "b:2"]).is_err());
        assert!(e(&["https://a"]).is_err());
    }
}
