//! Workload, nemesis, checker, statistics and simulator.
