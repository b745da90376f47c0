//! `mirrord pick`: choose a target in a terminal. The DAP proxy runs it
//! through the client's `runInTerminal` when the client has no picker of
//! its own, and reads the choice from `--out`.

use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::target::{self, TargetInfo};

/// What `--out` receives.
#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum Choice {
    Target(String),
    Cancelled,
}

pub fn run(out: Option<&Path>) -> anyhow::Result<()> {
    let targets = target::list_local();
    let choice = ask(
        &targets,
        &mut std::io::stdin().lock(),
        &mut std::io::stdout(),
    )?;
    match out {
        Some(path) => write_atomically(path, &serde_json::to_vec(&choice)?)?,
        None => match &choice {
            Choice::Target(t) => println!("{t}"),
            Choice::Cancelled => anyhow::bail!("no target picked"),
        },
    }
    Ok(())
}

/// Shows the numbered list and reads a number until one is valid; `q` or
/// the end of input cancels.
fn ask(
    targets: &[TargetInfo],
    input: &mut impl BufRead,
    output: &mut impl Write,
) -> anyhow::Result<Choice> {
    writeln!(output, "mirrord: pick the target of this debug session")?;
    for (i, t) in targets.iter().enumerate() {
        writeln!(output, "  {}) {}  {}", i + 1, t.path, t.description)?;
    }
    loop {
        write!(output, "number (q cancels): ")?;
        output.flush()?;
        let mut line = String::new();
        if input.read_line(&mut line)? == 0 || line.trim() == "q" {
            return Ok(Choice::Cancelled);
        }
        match line.trim().parse::<usize>() {
            Ok(n) if (1..=targets.len()).contains(&n) => {
                return Ok(Choice::Target(targets[n - 1].path.clone()))
            }
            _ => writeln!(output, "not a number from 1 to {}", targets.len())?,
        }
    }
}

fn write_atomically(path: &Path, content: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_until_a_valid_number() {
        let targets = vec![
            TargetInfo {
                path: "targetless".into(),
                description: "none".into(),
            },
            TargetInfo {
                path: "pid/5".into(),
                description: "x".into(),
            },
        ];
        let mut shown = Vec::new();
        let choice = ask(&targets, &mut &b"7\nzz\n2\n"[..], &mut shown).unwrap();
        assert_eq!(choice, Choice::Target("pid/5".into()));
        let shown = String::from_utf8(shown).unwrap();
        assert!(shown.contains("  2) pid/5  x"), "{shown}");
        assert_eq!(shown.matches("not a number").count(), 2, "{shown}");
        assert_eq!(
            ask(&targets, &mut &b"q\n"[..], &mut Vec::new()).unwrap(),
            Choice::Cancelled
        );
        assert_eq!(
            ask(&targets, &mut &b""[..], &mut Vec::new()).unwrap(),
            Choice::Cancelled
        );
    }
}
