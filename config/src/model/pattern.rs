//! Regular expressions in the config: kept as written, checked when the
//! config is read (an invalid one is a problem naming its key), and shown
//! in the schema as strings with what they match.

/// `regex::Error`'s text spans several lines with a caret diagram; keep its
/// `error: ...` line.
pub(crate) fn one_line_regex_error(error: &regex::Error) -> String {
    let text = error.to_string();
    text.lines()
        .find_map(|line| line.trim().strip_prefix("error: "))
        .map(str::to_owned)
        .unwrap_or_else(|| text.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// A checked regex newtype: `$name`, compiled by `$regex` (`regex::Regex`
/// or `regex::bytes::Regex`) to check it, described in the schema by
/// `$description`.
macro_rules! checked_regex {
    ($(#[$doc:meta])* $name:ident, $regex:path, $description:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            /// Checks that `pattern` compiles.
            pub fn new(pattern: &str) -> Result<Self, String> {
                match <$regex>::new(pattern) {
                    Ok(_) => Ok($name(pattern.to_owned())),
                    Err(error) => Err(format!(
                        "invalid regex \"{pattern}\": {}",
                        $crate::model::pattern::one_line_regex_error(&error)
                    )),
                }
            }

            /// The pattern as written.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                $name::new(&s).map_err(serde::de::Error::custom)
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> String {
                stringify!($name).to_owned()
            }

            fn json_schema(_: &mut schemars::gen::SchemaGenerator) -> schemars::schema::Schema {
                schemars::schema::SchemaObject {
                    instance_type: Some(schemars::schema::InstanceType::String.into()),
                    metadata: Some(Box::new(schemars::schema::Metadata {
                        description: Some($description.to_owned()),
                        ..Default::default()
                    })),
                    ..Default::default()
                }
                .into()
            }
        }
    };
}

pub(crate) use checked_regex;
