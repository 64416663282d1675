//! Models of Maelstrom's services (SPEC.md section 4) as pure, seeded state
//! machines: the strategies' unit tests, the simulator, the process runner
//! and the TCP KV server all answer KV calls with these.

mod kv;
mod lww_kv;
mod seq_kv;
mod tso;

pub use kv::{apply, KvState, LinKv, Served};
pub use lww_kv::{LwwKv, LWW_REPLICAS};
pub use seq_kv::{SeqKv, SEQ_KV_WINDOW};
pub use tso::LinTso;

use crate::error::ErrorCode;
use crate::protocol::{Body, Envelope, Payload};

/// One of the services a node can call, by the id Maelstrom gives it.
#[derive(Debug, Clone)]
pub enum Service {
    SeqKv(SeqKv),
    LinKv(LinKv),
    LwwKv(LwwKv),
    LinTso(LinTso),
}

impl Service {
    /// Every service name Maelstrom gives its services.
    pub const NAMES: [&'static str; 4] = ["seq-kv", "lin-kv", "lww-kv", "lin-tso"];

    /// The service named `name` (one of [`Service::NAMES`]), seeded.
    pub fn by_name(name: &str, seed: u64) -> Option<Service> {
        Some(match name {
            "seq-kv" => Service::SeqKv(SeqKv::new(seed)),
            "lin-kv" => Service::LinKv(LinKv::default()),
            "lww-kv" => Service::LwwKv(LwwKv::new(seed)),
            "lin-tso" => Service::LinTso(LinTso::default()),
            _ => return None,
        })
    }

    /// The answer to one request body from `client`.
    pub fn handle(&mut self, client: &str, request: &Payload) -> Payload {
        self.serve(client, request).0
    }

    /// [`handle`](Service::handle), saying which state served it (the
    /// `seq-kv` and `lin-kv` stores; the others keep no numbered states).
    pub fn serve(&mut self, client: &str, request: &Payload) -> (Payload, Option<Served>) {
        match self {
            Service::SeqKv(s) => {
                let (reply, served) = s.serve(client, request);
                (reply, Some(served))
            }
            Service::LinKv(s) => {
                let (reply, served) = s.serve(request);
                (reply, Some(served))
            }
            Service::LwwKv(s) => (s.handle(request), None),
            Service::LinTso(s) => (s.handle(request), None),
        }
    }

    /// The reply envelope to `msg` (sent by `msg.src` to `service_id`), or
    /// `None` for a message that is not a request (it has no `msg_id`).
    pub fn answer(&mut self, msg: &Envelope, msg_id: u64) -> Option<Envelope> {
        self.answer_served(msg, msg_id).map(|(reply, _)| reply)
    }

    /// [`answer`](Service::answer), saying which state served it.
    pub fn answer_served(
        &mut self,
        msg: &Envelope,
        msg_id: u64,
    ) -> Option<(Envelope, Option<Served>)> {
        let request_id = msg.body.msg_id?;
        let (payload, served) = self.serve(&msg.src, &msg.body.payload);
        let reply = Envelope {
            src: msg.dest.clone(),
            dest: msg.src.clone(),
            body: Body {
                msg_id: Some(msg_id),
                in_reply_to: Some(request_id),
                payload,
            },
        };
        Some((reply, served))
    }
}

fn not_supported(request: &Payload) -> Payload {
    let ty = request.type_name();
    Payload::error(
        ErrorCode::NOT_SUPPORTED,
        format!("this service does not handle `{ty}`"),
    )
}
