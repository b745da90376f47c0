//! Helpers shared by the IDE modules' unit tests: cursor markers, key
//! paths and the text a positioned node covers.

use mirrord_config::{split_key_path, KeySegment};

use super::json::tree::Node;

/// `marked` without its `|`, and the byte offset the `|` was at.
pub fn unmark(marked: &str) -> (String, usize) {
    let offset = marked.find('|').expect("a | marking the cursor");
    (marked.replace('|', ""), offset)
}

/// A path of keys only.
pub fn keys(path: &[&str]) -> Vec<KeySegment> {
    path.iter().map(|k| KeySegment::Key((*k).into())).collect()
}

/// The text of the node at key path `path` (which must be in the tree).
pub fn text_at<'a>(text: &'a str, root: &Node, path: &str) -> &'a str {
    let (node, depth) = root.find(&split_key_path(path));
    assert_eq!(depth, split_key_path(path).len(), "{path}");
    &text[node.start..node.end]
}

/// Text made of the characters config documents are written with, plus a
/// few multi-byte ones, for the never-panics properties.
pub fn config_like_text() -> impl proptest::strategy::Strategy<Value = String> {
    proptest::string::string_regex("[a-z_\\-\\[\\]{}:=,.\"'# \\n\\té€]{0,80}")
        .expect("a valid regex")
}

/// Every character boundary of `text`, the end included.
pub fn boundaries(text: &str) -> impl Iterator<Item = usize> + '_ {
    text.char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(text.len()))
}
