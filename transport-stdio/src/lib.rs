//! Runs a node over stdin/stdout.
