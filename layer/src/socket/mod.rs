//! Sockets: outgoing connections and datagrams made from the target, and
//! name resolution.

/// `fd` is being closed (or replaced).
pub fn on_close(_fd: i32) {}

/// `new` is a duplicate of `old`.
pub fn on_dup(_old: i32, _new: i32) {}

pub(crate) fn fork_prepare() {}
pub(crate) fn fork_parent() {}
pub(crate) fn fork_child() {}
