//! Where and in which shape each debug adapter reads the debuggee's
//! environment from a launch configuration, and writing variables into it.
//!
//! | adapter (`type` or command) | field | shape |
//! |---|---|---|
//! | debugpy, python, node, pwa-node, lldb (CodeLLDB), go, java, php, rdbg, anything else | `env` | map |
//! | coreclr (netcoredbg) | `env` | map of strings only |
//! | lldb-vscode | `env` | list of `K=V` |
//! | lldb-dap | `env` | the shape already there, else list of `K=V` (read by every version) |
//! | cppdbg | `environment` | list of `{name, value}` |
//!
//! A user's variable of the same name is replaced; the others, `null`
//! values (which unset a variable) included, are kept.

use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvShape {
    /// `env: {"K": "V"}`; `strings_only` turns every value into a string.
    Map { strings_only: bool },
    /// `env: ["K=V"]`.
    KeyValueList,
    /// `environment: [{"name": "K", "value": "V"}]`.
    NameValueList,
}

/// The shape for a configuration of `debug_type` served by the adapter
/// `adapter_command` (either may be unknown).
pub fn shape_of(
    debug_type: Option<&str>,
    adapter_command: Option<&str>,
    args: &Map<String, Value>,
) -> EnvShape {
    let command = adapter_command
        .map(|c| c.rsplit('/').next().unwrap_or(c))
        .unwrap_or("");
    let debug_type = debug_type.unwrap_or("");
    let existing = args.get("env");
    if debug_type == "cppdbg" {
        EnvShape::NameValueList
    } else if debug_type == "coreclr" {
        EnvShape::Map { strings_only: true }
    } else if matches!(existing, Some(Value::Array(_)))
        || debug_type == "lldb-vscode"
        || command.starts_with("lldb-vscode")
    {
        EnvShape::KeyValueList
    } else if debug_type == "lldb-dap" || command.starts_with("lldb-dap") {
        match existing {
            Some(Value::Object(_)) => EnvShape::Map {
                strings_only: false,
            },
            _ => EnvShape::KeyValueList,
        }
    } else {
        EnvShape::Map {
            strings_only: false,
        }
    }
}

/// The user's variables in `args` as (name, value) pairs, `None` for a
/// variable set to `null`; for reading, whatever the shape.
pub fn user_env(args: &Map<String, Value>, shape: EnvShape) -> Vec<(String, Option<String>)> {
    match (shape, args.get(field(shape))) {
        (EnvShape::Map { .. }, Some(Value::Object(map))) => map
            .iter()
            .map(|(k, v)| (k.clone(), value_text(v)))
            .collect(),
        (EnvShape::KeyValueList, Some(Value::Array(list))) => list
            .iter()
            .filter_map(Value::as_str)
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                None => (kv.to_owned(), None),
            })
            .collect(),
        (EnvShape::NameValueList, Some(Value::Array(list))) => list
            .iter()
            .filter_map(|item| {
                let name = item.get("name")?.as_str()?;
                Some((name.to_owned(), item.get("value").and_then(value_text)))
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Sets `vars` in `args` in `shape`, replacing variables of the same name.
pub fn set_env(args: &mut Map<String, Value>, shape: EnvShape, vars: &[(String, String)]) {
    let slot = args.entry(field(shape)).or_insert_with(|| match shape {
        EnvShape::Map { .. } => Value::Object(Map::new()),
        _ => Value::Array(Vec::new()),
    });
    match shape {
        EnvShape::Map { strings_only } => {
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            let Some(map) = slot.as_object_mut() else {
                return;
            };
            for (k, v) in vars {
                map.insert(k.clone(), Value::String(v.clone()));
            }
            if strings_only {
                // netcoredbg drops the whole map for one non-string value.
                map.retain(|_, v| !v.is_null());
                for v in map.values_mut() {
                    if !v.is_string() {
                        *v = Value::String(value_text(v).unwrap_or_default());
                    }
                }
            }
        }
        EnvShape::KeyValueList => {
            let mut list: Vec<Value> = match slot.take() {
                Value::Array(list) => list,
                _ => Vec::new(),
            };
            list.retain(|item| {
                let key = item.as_str().map(|kv| kv.split('=').next().unwrap_or(kv));
                !vars.iter().any(|(k, _)| Some(k.as_str()) == key)
            });
            list.extend(vars.iter().map(|(k, v)| Value::String(format!("{k}={v}"))));
            *slot = Value::Array(list);
        }
        EnvShape::NameValueList => {
            let mut list: Vec<Value> = match slot.take() {
                Value::Array(list) => list,
                _ => Vec::new(),
            };
            list.retain(|item| {
                let name = item.get("name").and_then(Value::as_str);
                !vars.iter().any(|(k, _)| Some(k.as_str()) == name)
            });
            list.extend(
                vars.iter()
                    .map(|(k, v)| serde_json::json!({"name": k, "value": v})),
            );
            *slot = Value::Array(list);
        }
    }
}

fn field(shape: EnvShape) -> &'static str {
    match shape {
        EnvShape::NameValueList => "environment",
        _ => "env",
    }
}

fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn shape_by_type_command_and_existing_field() {
        let empty = Map::new();
        type Row<'a> = (
            Option<&'a str>,
            Option<&'a str>,
            &'a Map<String, Value>,
            EnvShape,
        );
        let rows: &[Row] = &[
            (
                Some("debugpy"),
                None,
                &empty,
                EnvShape::Map {
                    strings_only: false,
                },
            ),
            (
                Some("lldb"),
                None,
                &empty,
                EnvShape::Map {
                    strings_only: false,
                },
            ),
            (
                None,
                Some("/usr/bin/lldb-vscode-14"),
                &empty,
                EnvShape::KeyValueList,
            ),
            (Some("lldb-dap"), None, &empty, EnvShape::KeyValueList),
            (
                None,
                None,
                &empty,
                EnvShape::Map {
                    strings_only: false,
                },
            ),
            (Some("cppdbg"), None, &empty, EnvShape::NameValueList),
            (
                Some("coreclr"),
                None,
                &empty,
                EnvShape::Map { strings_only: true },
            ),
        ];
        for (t, cmd, args, expected) in rows {
            assert_eq!(shape_of(*t, *cmd, args), *expected, "{t:?} {cmd:?}");
        }
        let map_env = obj(json!({"env": {"A": "1"}}));
        assert_eq!(
            shape_of(Some("lldb-dap"), None, &map_env),
            EnvShape::Map {
                strings_only: false
            }
        );
        let list_env = obj(json!({"env": ["A=1"]}));
        assert_eq!(
            shape_of(Some("go"), None, &list_env),
            EnvShape::KeyValueList
        );
    }

    #[test]
    fn map_keeps_user_values_and_nulls() {
        let mut args = obj(json!({"env": {"USER_VAR": "mine", "GONE": null, "REMOTE": "old"}}));
        let shape = EnvShape::Map {
            strings_only: false,
        };
        set_env(
            &mut args,
            shape,
            &[
                ("REMOTE".into(), "new".into()),
                ("LD_PRELOAD".into(), "/l.so".into()),
            ],
        );
        assert_eq!(
            args["env"],
            json!({"USER_VAR": "mine", "GONE": null, "REMOTE": "new", "LD_PRELOAD": "/l.so"})
        );
        let user = user_env(&args, shape);
        assert!(user.contains(&("USER_VAR".to_owned(), Some("mine".to_owned()))));
        assert!(user.contains(&("GONE".to_owned(), None)));
    }

    #[test]
    fn strings_only_map_has_no_other_values() {
        let mut args = obj(json!({"env": {"N": 3, "B": true, "GONE": null}}));
        set_env(
            &mut args,
            EnvShape::Map { strings_only: true },
            &[("A".into(), "1".into())],
        );
        assert_eq!(args["env"], json!({"N": "3", "B": "true", "A": "1"}));
    }

    #[test]
    fn lists_replace_same_names() {
        let mut args = obj(json!({"env": ["A=1", "B=2", "C"]}));
        set_env(
            &mut args,
            EnvShape::KeyValueList,
            &[("B".into(), "x=y".into())],
        );
        assert_eq!(args["env"], json!(["A=1", "C", "B=x=y"]));

        let mut args =
            obj(json!({"environment": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}));
        set_env(
            &mut args,
            EnvShape::NameValueList,
            &[("A".into(), "9".into())],
        );
        assert_eq!(
            args["environment"],
            json!([{"name": "B", "value": "2"}, {"name": "A", "value": "9"}])
        );
        assert_eq!(user_env(&args, EnvShape::NameValueList).len(), 2);
    }

    #[test]
    fn a_wrong_field_type_is_replaced_not_a_panic() {
        let mut args = obj(json!({"env": "nonsense"}));
        set_env(
            &mut args,
            EnvShape::Map {
                strings_only: false,
            },
            &[("A".into(), "1".into())],
        );
        assert_eq!(args["env"], json!({"A": "1"}));
        let mut args = obj(json!({"env": 5}));
        set_env(
            &mut args,
            EnvShape::KeyValueList,
            &[("A".into(), "1".into())],
        );
        assert_eq!(args["env"], json!(["A=1"]));
    }
}
