//! Command-line pieces shared by the TCP subcommands.

use clap::ValueEnum;
use gcounter_core::{KvKind, StrategyKind};
use gcounter_transport_tcp::Limits;
use std::time::Duration;

/// Which KV service: Maelstrom's `seq-kv` or `lin-kv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Consistency {
    /// seq-kv: sequentially consistent (stale reads, failed cas on stale states)
    Seq,
    /// lin-kv: linearizable
    Lin,
}

impl From<Consistency> for KvKind {
    fn from(c: Consistency) -> KvKind {
        match c {
            Consistency::Seq => KvKind::SeqKv,
            Consistency::Lin => KvKind::LinKv,
        }
    }
}

/// Where the KV strategies keep the counter: `--kv`, named as in
/// `gcounter test`, `sim` and `explore`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum KvBackendArg {
    /// `gcounter kv` modelling Maelstrom's seq-kv, one process
    #[default]
    #[value(name = "seq-kv")]
    SeqKv,
    /// `gcounter kv` modelling Maelstrom's lin-kv
    #[value(name = "lin-kv")]
    LinKv,
    /// etcd v3: three local members started from the `etcd` binary on PATH, or the running etcd at --etcd-endpoints
    Etcd,
}

impl KvBackendArg {
    /// The Maelstrom service the nodes are told to use; with etcd,
    /// `--consistency` decides (serializable reads unless `lin`).
    pub fn service(self, consistency: Option<Consistency>) -> Result<KvKind, String> {
        match (self, consistency) {
            (KvBackendArg::SeqKv, None | Some(Consistency::Seq)) => Ok(KvKind::SeqKv),
            (KvBackendArg::LinKv, None | Some(Consistency::Lin)) => Ok(KvKind::LinKv),
            (KvBackendArg::Etcd, c) => Ok(c.map_or(KvKind::SeqKv, KvKind::from)),
            (kv, Some(c)) => Err(format!(
                "--consistency {} contradicts --kv {}: give one of them",
                c.to_possible_value()
                    .map_or("?".into(), |v| v.get_name().to_string()),
                kv.to_possible_value()
                    .map_or("?".into(), |v| v.get_name().to_string()),
            )),
        }
    }
}

/// The etcd a cluster uses, from `--kv`, `--etcd-endpoints`, the
/// credential flags and `--insecure`.
pub fn etcd_backend(
    kv: KvBackendArg,
    endpoints: Option<Vec<String>>,
    creds: gcounter_transport_tcp::EtcdCreds,
    insecure: bool,
) -> Result<Option<gcounter_transport_tcp::EtcdBackend>, String> {
    use gcounter_transport_tcp::EtcdBackend;
    if kv != KvBackendArg::Etcd && (!creds.is_empty() || insecure) {
        return Err("--cacert, --cert, --key, --user and --insecure need --kv etcd".into());
    }
    match (kv, endpoints) {
        (KvBackendArg::SeqKv | KvBackendArg::LinKv, None) => Ok(None),
        (KvBackendArg::SeqKv | KvBackendArg::LinKv, Some(_)) => {
            Err("--etcd-endpoints needs --kv etcd".into())
        }
        (KvBackendArg::Etcd, Some(_)) if insecure => Err(
            "--insecure is for the etcd the cluster starts: a running etcd's scheme \
             (http:// or https://) is in --etcd-endpoints"
                .into(),
        ),
        (KvBackendArg::Etcd, Some(endpoints)) => {
            Ok(Some(EtcdBackend::External { endpoints, creds }))
        }
        (KvBackendArg::Etcd, None) if !creds.is_empty() => Err(
            "--cacert, --cert, --key and --user are for a running etcd (--etcd-endpoints); \
             the etcd the cluster starts makes its own"
                .into(),
        ),
        (KvBackendArg::Etcd, None) => {
            gcounter_transport_tcp::etcd::cluster::find_etcd()?;
            Ok(Some(EtcdBackend::Local {
                members: 3,
                secure: !insecure,
            }))
        }
    }
}

/// Parses one of `--etcd-endpoints`, as `etcdctl --endpoints` takes it:
/// `https://HOST:PORT`, `http://HOST:PORT`, or [`addr`].
pub fn etcd_endpoint(s: &str) -> Result<String, String> {
    match (s.strip_prefix("https://"), s.strip_prefix("http://")) {
        (Some(rest), _) => Ok(format!("https://{}", addr(rest.trim_end_matches('/'))?)),
        (_, Some(rest)) => addr(rest.trim_end_matches('/')),
        _ => addr(s),
    }
}

/// Parses a strategy name, listing the valid ones on error.
pub fn strategy(s: &str) -> Result<StrategyKind, String> {
    s.parse()
        .map_err(|e: gcounter_core::config::UnknownValue| e.to_string())
}

/// Parses `HOST:PORT`; a bare port means loopback (`127.0.0.1:PORT`).
pub fn addr(s: &str) -> Result<String, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(format!("127.0.0.1:{port}"));
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(s.to_owned()),
        _ => Err(format!(
            "`{s}` is not HOST:PORT or PORT (such as 127.0.0.1:7401)"
        )),
    }
}

/// Parses a node's `--kv`: `gcounter kv`'s address as [`addr`], or etcd's
/// as `etcd://HOST:PORT[,HOST:PORT...][/PREFIX]`.
pub fn kv_addr(s: &str) -> Result<String, String> {
    match gcounter_transport_tcp::EtcdTarget::parse(s)? {
        Some(_) => Ok(s.to_owned()),
        None => addr(s),
    }
}

/// Parses `ID=ADDR` (`ADDR` as [`addr`]).
pub fn peer(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((id, a)) if !id.is_empty() => Ok((id.into(), addr(a)?)),
        _ => Err(format!("`{s}` is not ID=ADDR (such as n1=127.0.0.1:7402)")),
    }
}

/// The limits every listening socket enforces.
#[derive(Debug, Clone, clap::Args)]
pub struct LimitArgs {
    /// Close a connection that delivers no complete line for this long (0: never)
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub idle_timeout: f64,
    /// The most connections held at once; one more closes the one quiet the longest
    #[arg(long, value_name = "N", default_value_t = 512)]
    pub max_connections: usize,
}

impl LimitArgs {
    pub fn limits(&self) -> Result<Limits, String> {
        let idle = Duration::try_from_secs_f64(self.idle_timeout)
            .map_err(|_| format!("--idle-timeout {} is not a duration", self.idle_timeout))?;
        if self.max_connections == 0 {
            return Err("--max-connections must be at least 1".into());
        }
        Ok(Limits {
            idle_timeout: (!idle.is_zero()).then_some(idle),
            max_connections: self.max_connections,
            ..Limits::default()
        })
    }
}

/// A one-line error for a person, and exit status 2 (bad usage) or 1.
pub fn fail(code: u8, what: impl std::fmt::Display) -> std::process::ExitCode {
    eprintln!("gcounter: {what}");
    std::process::ExitCode::from(code)
}
