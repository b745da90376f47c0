//! Deserialization plumbing: the tree deserializer, its structured error and
//! the shorthand shapes the file format accepts.

pub(crate) mod error;
pub(crate) mod shapes;
pub(crate) mod value;
