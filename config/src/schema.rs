//! The JSON schema of the config file, and the schema pieces for the
//! shorthand shapes (`true | {...}`, `"read" | {...}`, `"A;B" | [...]`).

use schemars::{
    gen::SchemaGenerator,
    schema::{InstanceType, Schema, SchemaObject, SubschemaValidation},
    JsonSchema,
};

use crate::model::MirrordConfig;

/// The JSON schema of the config file format, pretty-printed, without a
/// trailing newline (`println!` adds one).
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(MirrordConfig);
    serde_json::to_string_pretty(&schema).unwrap_or_default()
}

/// The JSON schema as a tree, for tools that read it (the IDE service's
/// completion and hover).
pub fn schema_value() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(MirrordConfig)).unwrap_or_default()
}

fn any_of(options: Vec<Schema>) -> Schema {
    SchemaObject {
        subschemas: Some(Box::new(SubschemaValidation {
            any_of: Some(options),
            ..Default::default()
        })),
        ..Default::default()
    }
    .into()
}

fn of_type(instance: InstanceType) -> Schema {
    SchemaObject {
        instance_type: Some(instance.into()),
        ..Default::default()
    }
    .into()
}

/// `true | false | T`.
pub(crate) fn bool_or<T: JsonSchema>(gen: &mut SchemaGenerator) -> Schema {
    any_of(vec![
        of_type(InstanceType::Boolean),
        gen.subschema_for::<T>(),
    ])
}

/// `S | T`, where `S` is the short (string) form.
pub(crate) fn string_or<T: JsonSchema, S: JsonSchema>(gen: &mut SchemaGenerator) -> Schema {
    any_of(vec![gen.subschema_for::<S>(), gen.subschema_for::<T>()])
}

/// `"A;B" | ["A", "B"]`.
pub(crate) fn string_or_list(gen: &mut SchemaGenerator) -> Schema {
    any_of(vec![
        of_type(InstanceType::String),
        gen.subschema_for::<Vec<String>>(),
    ])
}
