//! JSON as an editor needs it: tokens with ranges ([`lex`]), a tree that
//! keeps the range of every key and value ([`tree`]), and the context of a
//! cursor in a half-written document ([`context`]).

pub mod context;
pub mod lex;
pub mod tree;
