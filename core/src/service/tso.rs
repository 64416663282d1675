//! `lin-tso`: a linearizable timestamp oracle.

use super::not_supported;
use crate::protocol::Payload;

#[derive(Debug, Clone, Default)]
pub struct LinTso {
    next: u64,
}

impl LinTso {
    /// `ts` -> `ts_ok` with a strictly increasing integer.
    pub fn handle(&mut self, request: &Payload) -> Payload {
        match request {
            Payload::Ts => {
                let ts = self.next;
                self.next += 1;
                Payload::TsOk { ts }
            }
            other => not_supported(other),
        }
    }
}
