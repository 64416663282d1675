//! What starting local child processes takes, for a cluster's KV service
//! and nodes ([`crate::cluster`]) and for etcd members
//! ([`crate::etcd::cluster`]): free loopback ports, and the end of a
//! child's log for an error message. Its own module because both need it:
//! kept in `cluster`, it made `etcd::cluster` import `cluster` back while
//! `cluster` imports `etcd::cluster` to start etcd.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::net::IpAddr;
use std::path::Path;

/// `count` distinct ports that were free a moment ago.
pub(crate) fn free_ports(host: IpAddr, count: usize) -> io::Result<Vec<u16>> {
    // Held together so the system hands out distinct ports, then released
    // for the members to bind.
    let listeners = (0..count)
        .map(|_| std::net::TcpListener::bind((host, 0)))
        .collect::<io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

/// The last few lines of a log, for error messages.
pub(crate) fn log_tail(path: &Path) -> String {
    const TAIL: u64 = 2000;
    let mut text = String::new();
    if let Ok(mut file) = File::open(path) {
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = file.seek(SeekFrom::Start(len.saturating_sub(TAIL)));
        let mut bytes = Vec::new();
        let _ = file.read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    text
}
