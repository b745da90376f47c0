//! Remote files and directories: placeholders, the fd table, and the hooks.

use crate::error::HookError;

/// `fd` is being closed (or replaced): drop it from the tables, flushing
/// pipelined writes and closing the remote handle when it was the last copy.
pub fn on_close(_fd: i32) -> Result<(), HookError> {
    Ok(())
}

/// `new` is a duplicate of `old`.
pub fn on_dup(_old: i32, _new: i32) {}

pub(crate) fn fork_prepare() {}
pub(crate) fn fork_parent() {}
pub(crate) fn fork_child() {}
