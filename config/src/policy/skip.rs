//! Which programs mirrord leaves alone (`skip_processes`).

/// The compiled skip list: executable basenames.
#[derive(Debug, Clone, Default)]
pub struct SkipPolicy {
    names: Vec<Vec<u8>>,
}

impl SkipPolicy {
    /// Builds the policy from `skip_processes`; entries written as paths
    /// (`/usr/bin/bash`) are reduced to their basename.
    pub fn new(names: &[String]) -> SkipPolicy {
        SkipPolicy {
            names: names
                .iter()
                .map(|name| basename(name.trim().as_bytes()).to_vec())
                .filter(|name| !name.is_empty())
                .collect(),
        }
    }

    /// Whether the program `executable` (a name or path, e.g. `argv[0]` or
    /// the target of `/proc/self/exe`) is skipped. Does not allocate.
    pub fn skips(&self, executable: &[u8]) -> bool {
        let name = basename(executable);
        self.names.iter().any(|skip| skip == name)
    }
}

fn basename(path: &[u8]) -> &[u8] {
    let path = path.strip_suffix(b"/").unwrap_or(path);
    match path.iter().rposition(|b| *b == b'/') {
        Some(slash) => &path[slash + 1..],
        None => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_rows() {
        let policy = SkipPolicy::new(&["bash".into(), "/usr/bin/node".into(), " ".into()]);
        let rows: &[(&[u8], bool)] = &[
            (b"bash", true),
            (b"/bin/bash", true),
            (b"node", true),
            (b"/opt/node/bin/node", true),
            (b"bash5", false),
            (b"/bin/bash/x", false),
            (b"", false),
            (b"python3", false),
        ];
        for (exe, expected) in rows {
            assert_eq!(
                policy.skips(exe),
                *expected,
                "{}",
                String::from_utf8_lossy(exe)
            );
        }
    }
}
