//! Encrypted, authenticated lines between our nodes (issue 23, item 3).
//!
//! The handshake of the `auth` module already proves that both ends hold
//! the cluster secret and gives both a fresh nonce from each side. Right
//! after `peer_proof_ok`, each side derives two keys, one per direction:
//!
//! ```text
//! key(direction) = HKDF-SHA256(ikm = secret,
//!                              salt = dialer nonce || acceptor nonce,
//!                              info = "gcounter link v1" || direction || dialer || acceptor)
//! ```
//!
//! and from then on every line is one frame, a 4-byte big-endian length and
//! the line sealed with ChaCha20-Poly1305 under that direction's key, with
//! a counter (0, 1, 2, ...) as the nonce and no associated data. So an
//! observer of the link sees frame lengths and timing, and nothing of the
//! counts, keys or message types; a frame changed, dropped, replayed, or
//! moved to the other direction or another connection fails to open (the
//! counters no longer agree, or the key is another one), and the
//! connection is closed.
//!
//! Why this rather than Noise (`NNpsk0`, `snow`) or TLS: both would be a
//! second handshake after the one we have, or a replacement of it (and of
//! the relay protections it was built for). This composes standard pieces
//! only, each used as specified: HKDF (RFC 5869) to expand a secret and
//! two fresh nonces into keys, and an AEAD (RFC 8439) with unique nonces
//! per key (a new key per connection and direction, a counter per frame).
//! There is no forward secrecy: whoever later learns the cluster secret
//! and recorded a link can read it (Noise's `XXpsk3` would add that, at
//! the price of a new handshake and a new crate). The implementations are
//! `ring`'s, already in the tree for rustls (BoringSSL's, much reviewed):
//! no new crate.

use crate::lines::ReadLine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
use ring::hkdf::{Salt, HKDF_SHA256};
use smol::io::{AsyncBufRead, AsyncBufReadExt};
use std::io;

/// Poly1305's tag, appended to each sealed line.
const TAG: usize = 16;
/// The frame's length prefix.
const LEN: usize = 4;

/// Which way a key seals: keys are per direction, so a frame sent by one
/// side cannot be reflected back to it.
#[derive(Debug, Clone, Copy)]
enum Direction {
    FromDialer,
    FromAcceptor,
}

/// The keys one side of a link holds: one to seal what it sends, one to
/// open what it receives.
pub(crate) struct Keys {
    pub(crate) sealer: Sealer,
    pub(crate) opener: Opener,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never in a log or a panic message.
        f.write_str("Keys(..)")
    }
}

impl Keys {
    /// The dialer's keys, after a handshake where it sent `dialer_nonce`
    /// and the acceptor answered `acceptor_nonce`.
    pub(crate) fn dialer(
        secret: &[u8],
        ends: (&str, &str),
        dialer_nonce: &str,
        acceptor_nonce: &str,
    ) -> Keys {
        let key = |d| derive(secret, ends, dialer_nonce, acceptor_nonce, d);
        Keys {
            sealer: Sealer::new(key(Direction::FromDialer)),
            opener: Opener::new(key(Direction::FromAcceptor)),
        }
    }

    /// The acceptor's keys, after the same handshake.
    pub(crate) fn acceptor(
        secret: &[u8],
        ends: (&str, &str),
        dialer_nonce: &str,
        acceptor_nonce: &str,
    ) -> Keys {
        let key = |d| derive(secret, ends, dialer_nonce, acceptor_nonce, d);
        Keys {
            sealer: Sealer::new(key(Direction::FromAcceptor)),
            opener: Opener::new(key(Direction::FromDialer)),
        }
    }
}

/// `ends` is (the dialer's id, the acceptor's id), as the handshake bound
/// them (`auth::Ends`); `secret` the cluster secret's bytes. Plain values,
/// so that this module needs nothing of `auth`, which hands them over.
fn derive(
    secret: &[u8],
    (dialer, acceptor): (&str, &str),
    dialer_nonce: &str,
    acceptor_nonce: &str,
    direction: Direction,
) -> LessSafeKey {
    let salt = [dialer_nonce.as_bytes(), acceptor_nonce.as_bytes()].concat();
    let direction: &[u8] = match direction {
        Direction::FromDialer => b"from dialer",
        Direction::FromAcceptor => b"from acceptor",
    };
    // Lengths first, so that no two different inputs run together.
    let mut info = Vec::new();
    for part in [
        b"gcounter link v1".as_slice(),
        direction,
        dialer.as_bytes(),
        acceptor.as_bytes(),
    ] {
        info.extend_from_slice(&(part.len() as u64).to_be_bytes());
        info.extend_from_slice(part);
    }
    let prk = Salt::new(HKDF_SHA256, &salt).extract(secret);
    let info = [info.as_slice()];
    let okm = prk
        .expand(&info, &CHACHA20_POLY1305)
        // Only fails for an output longer than 255 hashes; 32 bytes is not.
        .expect("HKDF-SHA256 gives 32 bytes");
    LessSafeKey::new(UnboundKey::from(okm))
}

/// The nonce of frame `n`: unique per key, since a key lives for one
/// connection and direction and `n` only grows.
fn nonce(n: u64) -> Nonce {
    let mut bytes = [0u8; 12];
    bytes[4..].copy_from_slice(&n.to_be_bytes());
    Nonce::assume_unique_for_key(bytes)
}

/// Seals what one side sends.
pub(crate) struct Sealer {
    // Boxed: ring's key schedule is ~500 bytes, moved through queues.
    key: Box<LessSafeKey>,
    next: u64,
}

impl Sealer {
    fn new(key: LessSafeKey) -> Sealer {
        Sealer {
            key: Box::new(key),
            next: 0,
        }
    }

    /// `line` (with or without its newline) as one frame.
    pub(crate) fn seal(&mut self, line: &[u8]) -> Vec<u8> {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let mut sealed = line.to_vec();
        // 2^64 frames on one connection will not happen; a wrapped counter
        // would reuse a nonce, so stop rather than wrap.
        let n = self.next;
        self.next = n.checked_add(1).expect("2^64 frames on one link");
        self.key
            .seal_in_place_append_tag(nonce(n), Aad::empty(), &mut sealed)
            .expect("a line under 4 GiB seals");
        let mut frame = Vec::with_capacity(LEN + sealed.len());
        frame.extend_from_slice(&(sealed.len() as u32).to_be_bytes());
        frame.extend_from_slice(&sealed);
        frame
    }
}

/// Opens what the other side sent.
pub(crate) struct Opener {
    key: Box<LessSafeKey>,
    next: u64,
}

impl Opener {
    fn new(key: LessSafeKey) -> Opener {
        Opener {
            key: Box::new(key),
            next: 0,
        }
    }

    /// Reads the next frame and leaves its line (without a newline) in
    /// `buf`. A frame longer than a `max`-byte line is `TooLong`; one that
    /// does not open is an `InvalidData` error: the connection is not ours.
    ///
    /// Cancellation-safe like [`read_line`](crate::lines::read_line):
    /// every byte consumed is in `buf` until the frame is complete, so a
    /// dropped call resumes with the same `buf`.
    pub(crate) async fn read<R: AsyncBufRead + Unpin>(
        &mut self,
        reader: &mut R,
        buf: &mut Vec<u8>,
        max: usize,
    ) -> io::Result<ReadLine> {
        loop {
            let want = match buf.get(..LEN) {
                Some(len) => {
                    let len = u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
                    if len < TAG || len - TAG > max {
                        return Ok(ReadLine::TooLong);
                    }
                    LEN + len
                }
                None => LEN,
            };
            if buf.len() == want && want > LEN {
                return self.open(buf).map(|()| ReadLine::Line);
            }
            let available = match reader.fill_buf().await {
                Ok(available) => available,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                return Ok(if buf.is_empty() {
                    ReadLine::Eof
                } else {
                    ReadLine::Truncated
                });
            }
            let take = available.len().min(want - buf.len());
            buf.extend_from_slice(&available[..take]);
            reader.consume(take);
        }
    }

    fn open(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        let n = self.next;
        let opened = self
            .key
            .open_in_place(nonce(n), Aad::empty(), &mut buf[LEN..])
            .map(|line| line.len());
        match opened {
            Ok(len) => {
                self.next = n + 1;
                buf.drain(..LEN);
                buf.truncate(len);
                Ok(())
            }
            Err(_) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "frame {n} does not open with this link's key (tampered with, or not ours)"
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smol::io::BufReader;

    fn pair(secret: &[u8]) -> (Keys, Keys) {
        let ends = ("n0", "n1");
        let (d, a) = ("a".repeat(32), "b".repeat(32));
        (
            Keys::dialer(secret, ends, &d, &a),
            Keys::acceptor(secret, ends, &d, &a),
        )
    }

    fn read_all(opener: &mut Opener, bytes: &[u8], chunk: usize) -> Vec<io::Result<Vec<u8>>> {
        let mut reader = BufReader::with_capacity(chunk, bytes);
        let mut out = Vec::new();
        smol::block_on(async {
            loop {
                let mut buf = Vec::new();
                match opener.read(&mut reader, &mut buf, 1024).await {
                    Ok(ReadLine::Line) => out.push(Ok(buf)),
                    Ok(_) => break,
                    Err(e) => {
                        out.push(Err(e));
                        break;
                    }
                }
            }
        });
        out
    }

    #[test]
    fn lines_sealed_by_one_side_open_on_the_other_and_nowhere_else() {
        let secret = [1u8; 32];
        let (mut dialer, mut acceptor) = pair(&secret);
        let mut wire = dialer.sealer.seal(b"{\"body\":{\"type\":\"gossip\"}}\n");
        wire.extend(dialer.sealer.seal(b"second"));
        assert!(!wire.windows(6).any(|w| w == b"gossip"));
        for chunk in [1, 3, 64] {
            let (_, mut fresh) = pair(&secret);
            let got: Vec<_> = read_all(&mut fresh.opener, &wire, chunk)
                .into_iter()
                .map(Result::unwrap)
                .collect();
            assert_eq!(
                got,
                vec![
                    b"{\"body\":{\"type\":\"gossip\"}}".to_vec(),
                    b"second".to_vec()
                ]
            );
        }
        // Reflected to its sender: the other direction's key.
        assert!(read_all(&mut dialer.opener, &wire, 64)[0].is_err());
        // Another cluster's secret.
        let (_, mut stranger) = pair(&[2u8; 32]);
        assert!(read_all(&mut stranger.opener, &wire, 64)[0].is_err());
        // The second frame replayed first: the counter disagrees.
        let first_len = 4 + u32::from_be_bytes(wire[..4].try_into().unwrap()) as usize;
        assert!(read_all(&mut acceptor.opener, &wire[first_len..], 64)[0].is_err());
        // One bit flipped.
        let mut flipped = wire.clone();
        flipped[10] ^= 1;
        let (_, mut fresh) = pair(&secret);
        assert!(read_all(&mut fresh.opener, &flipped, 64)[0].is_err());
    }

    #[test]
    fn a_frame_longer_than_the_line_limit_is_refused_unread() {
        let (_, mut acceptor) = pair(&[2u8; 32]);
        let mut reader = BufReader::new(&[0xff, 0xff, 0xff, 0xff, 1, 2][..]);
        let mut buf = Vec::new();
        let got = smol::block_on(acceptor.opener.read(&mut reader, &mut buf, 1024)).unwrap();
        assert_eq!(got, ReadLine::TooLong);
    }
}
