//! "Did you mean": the names closest to one that was not found.

use mirrord_config::edit_distance;

/// The names within a small edit distance of `wanted` (or sharing its
/// prefix), closest first, at most three.
pub fn close_names<'a>(wanted: &str, names: &[&'a str]) -> Vec<&'a str> {
    let limit = (wanted.chars().count() / 3).max(1);
    let mut scored: Vec<(usize, &str)> = names
        .iter()
        .map(|n| (edit_distance(wanted, n), *n))
        .filter(|(d, n)| *d <= limit || n.starts_with(wanted) || wanted.starts_with(*n))
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, n)| n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_names_come_first_and_far_ones_are_left_out() {
        let names = ["web", "web-canary", "db", "checkout"];
        assert_eq!(close_names("wbe", &names), ["web"]);
        assert_eq!(close_names("web-", &names), ["web", "web-canary"]);
        assert_eq!(close_names("chekout", &names), ["checkout"]);
        assert!(close_names("payments", &names).is_empty());
    }
}
