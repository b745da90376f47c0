//! Property tests: parsers run inside the user's process (the layer), so no
//! input may panic them; valid targets print and parse back.

use proptest::prelude::*;

use crate::*;

proptest! {
    #[test]
    fn parsers_never_panic(s in "\\PC{0,40}") {
        let _ = s.parse::<Target>();
        let _ = s.parse::<AddressFilter>();
        let _ = HostPattern::new(&s);
        let _ = PathPattern::new(&s);
        let _ = from_json(&s);
    }

    #[test]
    fn filter_like_strings_never_panic(s in "(tcp://|udp://|x://)?\\[?[0-9a-f:./]{0,20}\\]?(:[0-9]{0,7})?") {
        let _ = s.parse::<AddressFilter>();
    }

    #[test]
    fn valid_targets_print_and_parse_back(
        kind in prop::sample::select(vec!["pod", "deployment", "statefulset", "daemonset", "job", "cronjob", "rollout"]),
        name in "[a-z0-9]([a-z0-9.-]{0,20}[a-z0-9])?",
        container in proptest::option::of("[a-z0-9]{1,10}"),
    ) {
        let text = match &container {
            Some(c) => format!("{kind}/{name}/container/{c}"),
            None => format!("{kind}/{name}"),
        };
        let target: Target = text.parse().unwrap();
        prop_assert_eq!(target.to_string(), text);
    }

    #[test]
    fn any_path_bytes_route(path in proptest::collection::vec(any::<u8>(), 0..64), write: bool) {
        let config = from_json(r#"{"feature": {"fs": {"mode": "write", "read_only": ["^/a"], "not_found": ["x$"]}}}"#).unwrap();
        let policy = policy::FsPolicy::new(&config.feature.fs).unwrap();
        let _ = policy.route(&path, write);
    }
}
