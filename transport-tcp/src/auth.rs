//! Who may speak as a peer: the cluster's secret and the handshake that
//! proves a connection holds it.
//!
//! A node listens on one address for clients and peers alike, so without
//! a proof anyone who can reach the port could send `gossip` as `n1` and
//! set the counter. Every cluster has a secret (32 random bytes, hex, in a
//! file only its owner may read); whoever dials a node and wants to be
//! treated as a peer, or to send `partition` / `heal`, first runs this
//! exchange:
//!
//! ```text
//! dialer   -> {"src":"n0","dest":"n1","body":{"type":"peer_hello","nonce":ND}}
//! acceptor -> {"src":"n1","dest":"n0","body":{"type":"peer_hello_ok","nonce":NA,"mac":MA}}
//! dialer   -> {"src":"n0","dest":"n1","body":{"type":"peer_proof","mac":MD}}
//! acceptor -> {"src":"n1","dest":"n0","body":{"type":"peer_proof_ok"}}
//! ```
//!
//! `MA` is HMAC-SHA256(secret, "accept", n0, n1, ND, NA) and `MD` is
//! HMAC-SHA256(secret, "dial", n0, n1, NA, ND): each side answers a nonce the
//! other just chose, so a recorded exchange cannot be replayed, and the
//! secret itself never crosses the wire (peers may be on other hosts, with
//! `--peers-file`). Both MACs name both ends, the dialer and the node it
//! meant to reach, and each side checks them against the peer it knows it
//! is talking to: a process without the secret that took a down peer's
//! port (n2's, say) and relays n0's handshake to n1 gets nowhere, because
//! n0 sees an answer for "n1" where it dialed n2, and n1 a proof meant for
//! n2. So the dialer's check of `MA` means what it should: the process that
//! answered on n2's port holds the secret and is n2. From then on the
//! connection speaks only as `n0`, and only in frames sealed with keys
//! derived from the secret and both nonces (the `secure` module): nothing
//! after `peer_proof_ok` crosses the wire in the clear.

use crate::control;
use crate::lines::{read_line, ReadLine, MAX_LINE};
use crate::secure::Keys;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use smol::io::{AsyncBufRead, AsyncWrite, AsyncWriteExt};
use std::fmt;
use std::io;
use std::path::Path;

/// Opens the exchange (sent by the dialer).
pub const PEER_HELLO: &str = "peer_hello";
/// Closes it (sent by the dialer, answering the acceptor's nonce).
pub const PEER_PROOF: &str = "peer_proof";

/// The file in a cluster's directory that holds its secret.
pub const SECRET_FILE: &str = "cluster.secret";

/// A cluster's shared secret.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never in a log or a panic message.
        f.write_str("Secret(..)")
    }
}

/// `n` random bytes from the system's generator.
fn random(n: usize) -> io::Result<Vec<u8>> {
    let mut bytes = vec![0u8; n];
    let mut filled = 0;
    while filled < n {
        filled +=
            rustix::rand::getrandom(&mut bytes[filled..], rustix::rand::GetRandomFlags::empty())
                .map_err(io::Error::from)?;
    }
    Ok(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// A fresh nonce, hex.
pub(crate) fn nonce() -> io::Result<String> {
    Ok(hex(&random(16)?))
}

impl Secret {
    /// The key material, for the link keys (see the `secure` module).
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// 32 fresh random bytes.
    pub fn generate() -> io::Result<Secret> {
        Ok(Secret(random(32)?))
    }

    /// Writes the secret to `path`, readable and writable by its owner
    /// only (0600). An older file there is replaced, never reused: its
    /// permissions could be wider.
    pub fn write(&self, path: &Path) -> io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        writeln!(file, "{}", hex(&self.0))
    }

    /// Reads a secret written by [`write`](Secret::write) (or by hand: any
    /// hex string of at least 16 bytes). A file others may read is
    /// refused, as ssh refuses such a key: the secret would not be one.
    pub fn read(path: &Path) -> Result<Secret, String> {
        let shown = path.display();
        let text = read_private(path, "the cluster secret")?;
        match unhex(text.trim()) {
            Some(bytes) if bytes.len() >= 16 => Ok(Secret(bytes)),
            _ => Err(format!(
                "{shown}: not a cluster secret (at least 32 hex digits on one line)"
            )),
        }
    }

    /// The MAC of one side's message: `role`, both ends (the dialer and
    /// the node it meant to reach) and the two nonces in the order that
    /// side saw them.
    fn mac(&self, role: &str, ends: Ends<'_>, first: &str, second: &str) -> Hmac<Sha256> {
        // Any key length is fine for HMAC: this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key");
        // Lengths first, so that no two different inputs run together.
        for part in [role, ends.dialer, ends.acceptor, first, second] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac
    }

    /// What the acceptor sends: it holds the secret, for this exchange.
    pub(crate) fn accept_mac(&self, ends: Ends<'_>, dialer_nonce: &str, nonce: &str) -> String {
        hex(&self
            .mac("accept", ends, dialer_nonce, nonce)
            .finalize()
            .into_bytes())
    }

    /// What the dialer sends: it holds the secret, for this exchange.
    pub(crate) fn dial_mac(&self, ends: Ends<'_>, acceptor_nonce: &str, nonce: &str) -> String {
        hex(&self
            .mac("dial", ends, acceptor_nonce, nonce)
            .finalize()
            .into_bytes())
    }

    /// Checks a MAC in constant time.
    fn verify(&self, expected: Hmac<Sha256>, got: &str) -> bool {
        unhex(got).is_some_and(|got| expected.verify_slice(&got).is_ok())
    }

    pub(crate) fn verify_accept(
        &self,
        ends: Ends<'_>,
        dialer_nonce: &str,
        nonce: &str,
        got: &str,
    ) -> bool {
        self.verify(self.mac("accept", ends, dialer_nonce, nonce), got)
    }

    pub(crate) fn verify_dial(
        &self,
        ends: Ends<'_>,
        acceptor_nonce: &str,
        nonce: &str,
        got: &str,
    ) -> bool {
        self.verify(self.mac("dial", ends, acceptor_nonce, nonce), got)
    }
}

/// The text of a file only its owner may read. A file others may read is
/// refused, as ssh refuses such a key: what it holds would not be secret.
fn read_private(path: &Path, what: &str) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("{shown}: {e}"))?;
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "{shown}: permissions {:o} let others read {what}; chmod 600 it",
            mode & 0o777
        ));
    }
    std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))
}

/// What a client presents first (`--client-token-file`).
pub const CLIENT_TOKEN: &str = "client_token";

/// The token a node requires from clients (`gcounter node
/// --client-token-file`). Client connections stay plain: the token keeps
/// out whoever can reach the port without it (other users of the host,
/// other hosts), not whoever can watch the wire.
#[derive(Clone)]
pub struct ClientToken(String);

impl fmt::Debug for ClientToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientToken(..)")
    }
}

impl ClientToken {
    /// Reads a token: the file's first line, owner-only like the secret.
    pub fn read(path: &Path) -> Result<ClientToken, String> {
        let text = read_private(path, "the client token")?;
        let token = text.lines().next().unwrap_or_default().trim();
        if token.is_empty() {
            return Err(format!("{}: no token on its first line", path.display()));
        }
        Ok(ClientToken(token.to_owned()))
    }

    /// The token as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `given` is the token, in time that does not depend on where
    /// they differ: both are MACed and the MACs compared in constant time
    /// (which also hides the token's length).
    pub(crate) fn matches(&self, given: &str) -> bool {
        let mac = |text: &str| {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"gcounter client token")
                .expect("HMAC takes any key");
            mac.update(text.as_bytes());
            mac
        };
        mac(given)
            .verify_slice(&mac(&self.0).finalize().into_bytes())
            .is_ok()
    }
}

/// The two ends of a handshake, as each side knows them: the dialer by the
/// id it claims, the acceptor by its own id (acceptor side) or by the peer
/// the dialer meant to reach (dialer side). Where the two sides disagree,
/// the MACs do not match.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ends<'a> {
    pub dialer: &'a str,
    pub acceptor: &'a str,
}

/// Whether a nonce the other side sent has the shape ours have.
pub(crate) fn is_nonce(s: &str) -> bool {
    s.len() == 32 && unhex(s).is_some()
}

/// The dialer's half of the exchange, as `me` on a fresh connection to
/// `them` (the peer it meant to reach; `None` for an operator who dialed an
/// address and takes whichever node answers). Returns the id of the node
/// that proved it holds the secret, and this side's keys for the link that
/// follows (every line after the handshake is sealed: see the `secure`
/// module). The caller bounds it in time.
pub(crate) async fn prove<R, W>(
    reader: &mut R,
    writer: &mut W,
    secret: &Secret,
    me: &str,
    them: Option<&str>,
) -> io::Result<(String, Keys)>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let denied = |why: String| io::Error::new(io::ErrorKind::PermissionDenied, why);
    let mine = nonce()?;
    let hello = control::line(
        me,
        them.unwrap_or("node"),
        &[("type", PEER_HELLO.into()), ("nonce", mine.clone().into())],
    );
    writer.write_all(&hello).await?;
    writer.flush().await?;
    let (answered, body) = read_reply(reader).await?;
    let acceptor = them.unwrap_or(&answered);
    if answered != acceptor {
        return Err(denied(format!(
            "{answered} answered where we dialed {acceptor} (a relay, or the wrong address)"
        )));
    }
    let ends = Ends {
        dialer: me,
        acceptor,
    };
    let theirs = body["nonce"].as_str().unwrap_or_default().to_owned();
    let ok = body["type"] == "peer_hello_ok"
        && is_nonce(&theirs)
        && secret.verify_accept(
            ends,
            &mine,
            &theirs,
            body["mac"].as_str().unwrap_or_default(),
        );
    if !ok {
        return Err(denied(format!(
            "{acceptor} did not prove it holds the cluster secret: {body}"
        )));
    }
    let proof = control::line(
        me,
        acceptor,
        &[
            ("type", PEER_PROOF.into()),
            ("mac", secret.dial_mac(ends, &theirs, &mine).into()),
        ],
    );
    writer.write_all(&proof).await?;
    writer.flush().await?;
    let (_, body) = read_reply(reader).await?;
    if body["type"] != "peer_proof_ok" {
        return Err(denied(format!("{acceptor} refused our proof: {body}")));
    }
    let keys = Keys::dialer(secret.bytes(), (ends.dialer, ends.acceptor), &mine, &theirs);
    Ok((acceptor.to_owned(), keys))
}

/// The sender and the body of the next line.
async fn read_reply<R: AsyncBufRead + Unpin>(reader: &mut R) -> io::Result<(String, Value)> {
    let mut buf = Vec::new();
    match read_line(reader, &mut buf, MAX_LINE).await? {
        ReadLine::Line => {}
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "closed during the handshake",
            ))
        }
    }
    let mut msg: Value =
        serde_json::from_slice(&buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let src = msg["src"].as_str().unwrap_or_default().to_owned();
    Ok((
        src,
        msg.get_mut("body").map(Value::take).unwrap_or_default(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ends<'a>(dialer: &'a str, acceptor: &'a str) -> Ends<'a> {
        Ends { dialer, acceptor }
    }

    #[test]
    fn macs_bind_the_secret_the_role_both_ends_and_both_nonces() {
        let s = Secret::generate().unwrap();
        let other = Secret::generate().unwrap();
        let (a, b) = (nonce().unwrap(), nonce().unwrap());
        let mac = s.dial_mac(ends("n0", "n2"), &a, &b);
        assert!(s.verify_dial(ends("n0", "n2"), &a, &b, &mac));
        assert!(!other.verify_dial(ends("n0", "n2"), &a, &b, &mac));
        assert!(!s.verify_dial(ends("n1", "n2"), &a, &b, &mac));
        // A proof meant for n2, relayed to n1 (issue 24, item 1).
        assert!(!s.verify_dial(ends("n0", "n1"), &a, &b, &mac));
        assert!(!s.verify_dial(ends("n0", "n2"), &b, &a, &mac));
        // A dialer's proof is no acceptor's answer (no reflection).
        assert!(!s.verify_accept(ends("n0", "n2"), &a, &b, &mac));
        assert!(!s.verify_dial(ends("n0", "n2"), &a, &b, "zz"));
        // n1's answer, relayed to a dialer that meant to reach n2.
        let answer = s.accept_mac(ends("n0", "n1"), &a, &b);
        assert!(s.verify_accept(ends("n0", "n1"), &a, &b, &answer));
        assert!(!s.verify_accept(ends("n0", "n2"), &a, &b, &answer));
    }

    #[test]
    fn a_client_token_matches_only_itself() {
        let token = ClientToken("s3cret-token".into());
        assert!(token.matches("s3cret-token"));
        assert!(!token.matches("s3cret-toke"));
        assert!(!token.matches("s3cret-token "));
        assert!(!token.matches(""));
    }

    #[test]
    fn a_secret_file_is_owner_only_and_others_readable_ones_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!("gcounter-secret-{}", std::process::id()));
        let s = Secret::generate().unwrap();
        s.write(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        let read = Secret::read(&path).map(|r| r.0);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let wide = Secret::read(&path);
        let _ = std::fs::remove_file(&path);
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(read.unwrap(), s.0);
        assert!(wide.unwrap_err().contains("chmod 600"));
    }
}
