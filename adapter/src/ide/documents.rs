//! Which documents the service understands, by file name, and the text of
//! every open one.

use std::collections::HashMap;
use std::sync::Mutex;

use mirrord_config::Format;
use tower_lsp::lsp_types::Url;

/// What kind of document a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    /// A mirrord config: `mirrord.json`, `.mirrord/*.json`, `*.mirrord.json`
    /// (and the same names ending in `.toml`, `.yaml` or `.yml`).
    Config(Format),
    /// VS Code's `.vscode/launch.json`: the `mirrord` object of each
    /// configuration is a config (or `{"configFile", "target"}`).
    Launch,
}

/// The kind of the document at `uri`, `None` for documents the service
/// leaves alone.
pub fn kind_of(uri: &Url) -> Option<DocKind> {
    let path = uri.path();
    let mut parts = path.rsplit('/');
    let name = parts.next()?;
    let parent = parts.next().unwrap_or("");
    if parent == ".vscode" && name == "launch.json" {
        return Some(DocKind::Launch);
    }
    let (stem, extension) = name.rsplit_once('.')?;
    let format = match extension.to_ascii_lowercase().as_str() {
        "json" => Format::Json,
        "toml" => Format::Toml,
        "yaml" | "yml" => Format::Yaml,
        _ => return None,
    };
    let is_config = stem == "mirrord" || stem.ends_with(".mirrord") || parent == ".mirrord";
    is_config.then_some(DocKind::Config(format))
}

/// The open documents' texts. A std mutex: it is never held across an
/// `.await`, only for a clone or an insert.
#[derive(Default)]
pub struct Documents {
    open: Mutex<HashMap<Url, String>>,
}

impl Documents {
    pub fn set(&self, uri: Url, text: String) {
        if let Ok(mut open) = self.open.lock() {
            open.insert(uri, text);
        }
    }

    pub fn get(&self, uri: &Url) -> Option<String> {
        self.open.lock().ok()?.get(uri).cloned()
    }

    pub fn close(&self, uri: &Url) {
        if let Ok(mut open) = self.open.lock() {
            open.remove(uri);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_and_launch_files_by_name() {
        let kind = |path: &str| kind_of(&Url::parse(&format!("file://{path}")).unwrap());
        assert_eq!(kind("/w/mirrord.json"), Some(DocKind::Config(Format::Json)));
        assert_eq!(
            kind("/w/.mirrord/staging.yaml"),
            Some(DocKind::Config(Format::Yaml))
        );
        assert_eq!(
            kind("/w/api.mirrord.toml"),
            Some(DocKind::Config(Format::Toml))
        );
        assert_eq!(kind("/w/.vscode/launch.json"), Some(DocKind::Launch));
        assert_eq!(kind("/w/package.json"), None);
        assert_eq!(kind("/w/.mirrord/notes.txt"), None);
        assert_eq!(kind("/w/launch.json"), None);
    }
}
