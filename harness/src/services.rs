//! Maelstrom's services, hosted: the core's models
//! ([`gcounter_core::service`]) with the message ids and bookkeeping a
//! network needs. The simulator and the process runner both host them.

use gcounter_core::service::{Served, Service};
use gcounter_core::{Body, Envelope, Payload};
use serde::Serialize;
use std::ops::RangeInclusive;

/// The services every test offers, by the ids nodes send to: all of
/// Maelstrom's.
pub const SERVICE_NAMES: [&str; 4] = Service::NAMES;

/// What a service did during a test.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ServiceCounts {
    /// Requests answered.
    pub requests: u64,
    /// `seq-kv` only: reads answered with something other than the newest
    /// state's value (a stale read, as sequential consistency allows).
    pub stale_reads: u64,
}

/// One service and its reply ids.
#[derive(Debug, Clone)]
pub struct ServiceHost {
    name: &'static str,
    service: Service,
    next_msg_id: u64,
    counts: ServiceCounts,
}

impl ServiceHost {
    /// The service with id `name`, seeded (only `seq-kv` uses the seed).
    pub fn new(name: &str, seed: u64) -> Option<Self> {
        let name = SERVICE_NAMES.into_iter().find(|n| *n == name)?;
        Some(ServiceHost {
            name,
            service: Service::by_name(name, seed)?,
            next_msg_id: 0,
            counts: ServiceCounts::default(),
        })
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn counts(&self) -> ServiceCounts {
        self.counts
    }

    /// The reply to `msg`, or `None` if it is not a request (no `msg_id`).
    pub fn handle(&mut self, msg: &Envelope) -> Option<Envelope> {
        self.serve(msg).map(|(reply, _)| reply)
    }

    /// [`handle`](ServiceHost::handle), saying which state of a KV store
    /// served it.
    pub fn serve(&mut self, msg: &Envelope) -> Option<(Envelope, Option<Served>)> {
        self.serve_from(msg, None)
    }

    /// The states a request from `client` may run against first, for a
    /// store that chooses (`seq-kv`): its choice point's legal options.
    pub fn window(&self, client: &str) -> Option<RangeInclusive<u64>> {
        match &self.service {
            Service::SeqKv(kv) => Some(kv.window(client)),
            _ => None,
        }
    }

    /// [`serve`](ServiceHost::serve), run first against state `chosen` of
    /// the client's [`window`](ServiceHost::window) when a policy chose
    /// one; `None`: the service's own seeded draw.
    pub fn serve_from(
        &mut self,
        msg: &Envelope,
        chosen: Option<u64>,
    ) -> Option<(Envelope, Option<Served>)> {
        let (reply, served) = match (&mut self.service, chosen) {
            (Service::SeqKv(kv), Some(chosen)) => {
                let request_id = msg.body.msg_id?;
                let (payload, served) = kv.serve_from(&msg.src, &msg.body.payload, chosen);
                let reply = Envelope {
                    src: msg.dest.clone(),
                    dest: msg.src.clone(),
                    body: Body {
                        msg_id: Some(self.next_msg_id),
                        in_reply_to: Some(request_id),
                        payload,
                    },
                };
                (reply, Some(served))
            }
            _ => self.service.answer_served(msg, self.next_msg_id)?,
        };
        self.next_msg_id += 1;
        self.counts.requests += 1;
        if let (Service::SeqKv(kv), Payload::Read { key: Some(key) }) =
            (&self.service, &msg.body.payload)
        {
            // Reads change nothing, so the newest state is the same before
            // and after this one.
            let newest = kv.latest_value(key);
            let stale = match &reply.body.payload {
                Payload::ReadOk { value } => newest != Some(value),
                Payload::Error { .. } => newest.is_some(),
                _ => false,
            };
            if stale {
                self.counts.stale_reads += 1;
                log::trace!(
                    "{}: stale read of {key} by {}: {:?}",
                    self.name,
                    msg.src,
                    reply.body.payload
                );
            }
        }
        Some((reply, served))
    }
}

/// Every service of [`SERVICE_NAMES`], seeded from one seed each.
#[derive(Debug, Clone)]
pub struct Services {
    hosts: Vec<ServiceHost>,
}

impl Services {
    pub fn new(rng: &mut fastrand::Rng) -> Self {
        let hosts = SERVICE_NAMES
            .iter()
            .filter_map(|name| ServiceHost::new(name, rng.u64(..)))
            .collect();
        Services { hosts }
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut ServiceHost> {
        self.hosts.iter_mut().find(|h| h.name == name)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.hosts.iter().any(|h| h.name == name)
    }

    /// Counts per service, by name.
    pub fn counts(&self) -> Vec<(&'static str, ServiceCounts)> {
        self.hosts.iter().map(|h| (h.name, h.counts)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(src: &str, msg_id: u64, payload: Payload) -> Envelope {
        Envelope {
            src: src.into(),
            dest: "seq-kv".into(),
            body: Body {
                msg_id: Some(msg_id),
                in_reply_to: None,
                payload,
            },
        }
    }

    #[test]
    fn hosted_seq_kv_counts_its_stale_reads() {
        let mut stale = 0;
        for seed in 0..20 {
            let mut kv = ServiceHost::new("seq-kv", seed).unwrap();
            for v in 0..10 {
                let w = Payload::Write {
                    key: "k".into(),
                    value: v.into(),
                };
                let reply = kv.handle(&request("n0", v as u64, w)).unwrap();
                assert_eq!(reply.body.in_reply_to, Some(v as u64));
                assert_eq!(reply.dest, "n0");
            }
            kv.handle(&request(
                "n1",
                0,
                Payload::Read {
                    key: Some("k".into()),
                },
            ));
            stale += kv.counts().stale_reads;
            assert_eq!(kv.counts().requests, 11);
        }
        assert!(stale > 0);
        assert!(ServiceHost::new("lww-kv", 0).is_some());
        assert!(ServiceHost::new("kv", 0).is_none());
    }
}
