//! Deserializing a config tree while collecting every problem, not only the
//! first: after each error the offending key or value is dropped from the
//! tree (so its default applies) and deserialization runs again.

use std::{collections::HashMap, path::Path};

use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_path_to_error::Segment;

use crate::{
    de::value::ValueDeserializer,
    error::{Origin, Problem},
};

/// More problems than this in one file are not worth listing.
const MAX_PROBLEMS: usize = 64;

/// Deserializes `tree`, returning the value (meaningful only when there are
/// no problems) and every problem found, each naming its key path in `file`.
pub(crate) fn deserialize_all<T: DeserializeOwned + Default>(
    mut tree: Value,
    file: Option<&Path>,
) -> (T, Vec<Problem>) {
    let mut problems = Vec::new();
    // Original indexes removed from each list, keyed by the list's key path,
    // so later problems in the same list still name the index the user wrote.
    let mut removed: HashMap<String, Vec<usize>> = HashMap::new();
    while problems.len() < MAX_PROBLEMS {
        let error = match serde_path_to_error::deserialize::<_, T>(ValueDeserializer(&tree)) {
            Ok(value) => return (value, problems),
            Err(error) => error,
        };
        let segments: Vec<Segment> = error.path().iter().cloned().collect();
        let inner = error.into_inner();
        // An unknown key is reported at the map that holds it.
        let shown = if inner.is_unknown_key() {
            render(&segments[..segments.len().saturating_sub(1)], &removed)
        } else {
            render(&segments, &removed)
        };
        let mut problem = Problem::new(
            Origin::Key {
                file: file.map(Path::to_owned),
                key: shown.clone(),
            },
            inner.message(&shown),
        );
        if let (true, Some(Segment::Map { key })) = (inner.is_unknown_key(), segments.last()) {
            problem.unknown_key = Some(key.clone());
        }
        problems.push(problem);
        if !remove(&mut tree, &segments, &mut removed) {
            break;
        }
    }
    (T::default(), problems)
}

/// `feature.fs.local[2]`, with list indexes as the user wrote them.
fn render(segments: &[Segment], removed: &HashMap<String, Vec<usize>>) -> String {
    let mut out = String::new();
    for segment in segments {
        match segment {
            Segment::Seq { index } => {
                let original =
                    original_index(*index, removed.get(&out).map(Vec::as_slice).unwrap_or(&[]));
                out.push_str(&format!("[{original}]"));
            }
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => out.push_str(".?"),
        }
    }
    out
}

fn original_index(index: usize, removed: &[usize]) -> usize {
    let mut original = index;
    for r in removed {
        if *r <= original {
            original += 1;
        }
    }
    original
}

/// Drops the value at `segments` from `tree`; false when nothing could be
/// dropped (the error is at the root or the path is unknown).
fn remove(
    tree: &mut Value,
    segments: &[Segment],
    removed: &mut HashMap<String, Vec<usize>>,
) -> bool {
    // A bad variant of a single-key enum map (`{"remote": ...}`) drops the whole map.
    let end = match segments.last() {
        Some(Segment::Enum { .. }) => segments.len() - 1,
        Some(_) => segments.len(),
        None => return false,
    };
    let Some((last, parents)) = segments[..end].split_last() else {
        return false;
    };
    let mut node = &mut *tree;
    for segment in parents {
        node = match (segment, node) {
            (Segment::Map { key } | Segment::Enum { variant: key }, Value::Object(map)) => {
                match map.get_mut(key) {
                    Some(child) => child,
                    None => return false,
                }
            }
            (Segment::Seq { index }, Value::Array(items)) => match items.get_mut(*index) {
                Some(child) => child,
                None => return false,
            },
            _ => return false,
        };
    }
    match (last, node) {
        (Segment::Map { key } | Segment::Enum { variant: key }, Value::Object(map)) => {
            map.remove(key).is_some()
        }
        (Segment::Seq { index }, Value::Array(items)) if *index < items.len() => {
            let list = render(parents, removed);
            let original =
                original_index(*index, removed.get(&list).map(Vec::as_slice).unwrap_or(&[]));
            let entry = removed.entry(list).or_default();
            entry.push(original);
            entry.sort_unstable();
            items.remove(*index);
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_survive_removals() {
        assert_eq!(original_index(1, &[1]), 2);
        assert_eq!(original_index(1, &[1, 2]), 3);
        assert_eq!(original_index(0, &[1, 2]), 0);
    }
}
