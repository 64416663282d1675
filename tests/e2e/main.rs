//! End-to-end tests: they run the `gcounter` binary that cargo built for
//! this test target (`CARGO_BIN_EXE_gcounter`), as a user would.

mod bad_input;
mod common;
mod etcd;
mod explore;
mod faults;
mod gallery;
mod recorded;
mod restart;
mod runner;
mod seed_samples;
mod sim;
mod tcp;
mod tcp_runner;
mod why;
