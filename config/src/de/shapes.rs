//! Deserializers for the config's shorthand shapes: `true | {...}`,
//! `"read" | {...}` and `"A;B" | ["A", "B"]`.
//!
//! They are hand-written visitors rather than `#[serde(untagged)]` enums, so
//! an error inside the long form keeps its key path and message instead of
//! becoming "data did not match any variant".

use std::{fmt, marker::PhantomData};

use serde::de::{
    self, value::MapAccessDeserializer, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor,
};

/// A section that can be written as a boolean: `true` = defaults, `false` = off.
pub(crate) trait FromBool {
    fn from_bool(enabled: bool) -> Self;
}

/// A section that can be written as one string, e.g. `"fs": "read"`.
pub(crate) trait FromShortString: Sized {
    /// What the short string means, for "expected ..." messages.
    const EXPECTING: &'static str;
    fn from_short<E: de::Error>(s: &str) -> Result<Self, E>;
}

/// `true | false | {...}`.
pub(crate) fn bool_or_map<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + FromBool + Default,
{
    struct V<T>(PhantomData<T>);

    impl<'de, T: Deserialize<'de> + FromBool + Default> Visitor<'de> for V<T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("true, false or a map of keys")
        }

        fn visit_bool<E: de::Error>(self, v: bool) -> Result<T, E> {
            Ok(T::from_bool(v))
        }

        fn visit_unit<E: de::Error>(self) -> Result<T, E> {
            Ok(T::default())
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::deserialize(MapAccessDeserializer::new(map))
        }
    }

    deserializer.deserialize_any(V(PhantomData))
}

/// `"short" | {...}`.
pub(crate) fn string_or_map<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + FromShortString + Default,
{
    struct V<T>(PhantomData<T>);

    impl<'de, T: Deserialize<'de> + FromShortString + Default> Visitor<'de> for V<T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{} or a map of keys", T::EXPECTING)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            T::from_short(v)
        }

        fn visit_unit<E: de::Error>(self) -> Result<T, E> {
            Ok(T::default())
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::deserialize(MapAccessDeserializer::new(map))
        }
    }

    deserializer.deserialize_any(V(PhantomData))
}

/// `"A;B*" | ["A", "B*"]` into a list; empty entries of the string form are dropped.
pub(crate) fn string_or_list<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    struct V;

    impl<'de> Visitor<'de> for V {
        type Value = Vec<String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string (entries separated by \";\") or a list of strings")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<String>, E> {
            Ok(split_list(v))
        }

        fn visit_unit<E: de::Error>(self) -> Result<Vec<String>, E> {
            Ok(Vec::new())
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
            while let Some(item) = seq.next_element::<String>()? {
                out.push(item);
            }
            Ok(out)
        }
    }

    deserializer.deserialize_any(V)
}

/// Like [`string_or_list`], for an optional list where absence means "not set".
pub(crate) fn opt_string_or_list<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<String>>, D::Error> {
    string_or_list(deserializer).map(Some)
}

/// Splits `"A; B;;C"` into `["A", "B", "C"]`.
pub(crate) fn split_list(s: &str) -> Vec<String> {
    s.split(';')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(str::to_owned)
        .collect()
}
