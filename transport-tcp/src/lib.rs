//! Runs nodes, the KV service and clients over TCP.
