//! End-to-end tests: they run the `gcounter` binary that cargo built for
//! this test target (`CARGO_BIN_EXE_gcounter`), as a user would.

mod bad_input;
mod common;
mod etcd;
mod etcd_tls;
mod explain_nodes;
mod explore;
mod faults;
mod gallery;
mod peer_links;
mod read_lag;
mod readme;
mod recorded;
mod restart;
mod runner;
mod runner_reliability;
mod seed_samples;
mod sim;
mod state_damage;
mod tcp;
mod tcp_runner;
mod why;
