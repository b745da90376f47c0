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
