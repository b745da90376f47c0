//! The target's environment, read from `/proc/N/environ`.

use std::io;

/// Reads and parses the environment of process `pid`.
pub fn read_env(pid: u32) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let raw = std::fs::read(format!("/proc/{pid}/environ"))?;
    Ok(parse_environ(&raw))
}

/// Splits NUL-separated `K=V` entries; entries without `=` or with an empty
/// key are skipped (they cannot be set with `setenv`).
pub fn parse_environ(raw: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    raw.split(|&b| b == 0)
        .filter_map(|entry| {
            let eq = entry.iter().position(|&b| b == b'=')?;
            (eq > 0).then(|| (entry[..eq].to_vec(), entry[eq + 1..].to_vec()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &[u8], expected: &[(&[u8], &[u8])]) {
        let got = parse_environ(raw);
        let expected: Vec<_> = expected
            .iter()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn parses_environ() {
        check(b"", &[]);
        check(
            b"A=1\0B=\0C=x=y\0",
            &[(b"A", b"1"), (b"B", b""), (b"C", b"x=y")],
        );
        check(b"NOEQ\0=v\0D=\xff\0\0", &[(b"D", b"\xff")]);
    }

    #[test]
    fn reads_own_environ() {
        let env = read_env(std::process::id()).unwrap();
        assert!(env
            .iter()
            .any(|(k, _)| k == b"PATH" || k == b"HOME" || !k.is_empty()));
    }
}
