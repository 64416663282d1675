//! What a new life of a node process takes from its earlier ones, once
//! `init` says which node it is (see "Surviving a restart" in the crate
//! docs).

use crate::Error;
use gcounter_core::protocol::parse_incoming;
use gcounter_core::{Node, Payload};
use gcounter_state::{lock_state, next_incarnation, read_state, StateFile, LOCK_WAIT};
use std::path::Path;

/// What the owner does when `init` names the node.
#[derive(Debug, Clone, Copy)]
pub(crate) enum AtInit<'a> {
    /// Nothing: the node runs as configured and nothing is stored.
    Nothing,
    /// A fresh incarnation; with a state directory, the state stored
    /// there, and a [`StateFile`] for what the node stores next.
    NewLife(Option<&'a Path>),
}

/// The node id of `line` if it is an `init` a node that has none takes: a
/// request (`msg_id`, no `in_reply_to`) whose `node_ids` hold its
/// `node_id`. Any other init is refused by the node without touching the
/// state directory.
pub(crate) fn init_id(line: &[u8]) -> Option<String> {
    let msg = parse_incoming(line).ok()?;
    if msg.body.msg_id.is_none() || msg.body.in_reply_to.is_some() {
        return None;
    }
    match msg.body.payload {
        Payload::Init { node_id, node_ids } if node_ids.contains(&node_id) => Some(node_id),
        _ => None,
    }
}

/// Configures `node`, which `init` is about to name `id`, for a new life:
/// a fresh incarnation and what `state_dir` holds of its last life.
/// Returns where its states are to be stored, if anywhere.
pub(crate) fn new_life(
    node: &mut Node,
    state_dir: Option<&Path>,
    id: &str,
) -> Result<Option<StateFile>, Error> {
    // The state is this process's before anything in it is read or
    // written: a second process on it is refused before it takes an
    // incarnation or reads a state the first is about to replace.
    let lock = match state_dir {
        Some(dir) => Some(lock_state(dir, id, LOCK_WAIT).map_err(Error::State)?),
        None => None,
    };
    let incarnation = next_incarnation(state_dir, id).map_err(Error::State)?;
    let strategy = node.config_mut().map(|c| c.strategy);
    let restored = match (state_dir, strategy) {
        (Some(dir), Some(strategy)) => read_state(dir, id, |text| {
            gcounter_core::strategy::check_stored(strategy, text, id)
        })
        .map_err(Error::State)?,
        _ => None,
    };
    log::info!(
        "{id}: incarnation {incarnation}, state in {} ({})",
        state_dir.map_or("(nowhere)".into(), |d| d.display().to_string()),
        if restored.is_some() {
            "restored"
        } else {
            "none stored"
        },
    );
    if let Some(config) = node.config_mut() {
        config.incarnation = incarnation;
        config.restored = restored;
        // Without a state directory nothing is stored: spare the node
        // building states.
        config.persist = state_dir.is_some();
    }
    Ok(state_dir
        .zip(lock)
        .map(|(dir, lock)| StateFile::new(Some(dir), id).holding(lock)))
}
