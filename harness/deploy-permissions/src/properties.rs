//! Reading resolved resource properties: what is set, what changed, what replaces.

use serde_json::Value;

use crate::ResourceSchema;

/// The value at `pointer` (below `Properties`), treating `null` as absent.
pub(crate) fn at<'v>(properties: &'v Value, pointer: &str) -> Option<&'v Value> {
    properties.pointer(pointer).filter(|v| !v.is_null())
}

/// Whether the template sets `pointer` to something a handler acts on: present, not null,
/// and not an empty string, list or object (CloudFormation sends nothing for those).
pub(crate) fn is_set(properties: &Value, pointer: &str) -> bool {
    match at(properties, pointer) {
        None => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(_) => true,
    }
}

/// Whether `pointer`'s value differs between the two property sets (absent and `null` are
/// the same).
pub(crate) fn differs(properties: &Value, previous: &Value, pointer: &str) -> bool {
    at(properties, pointer) != at(previous, pointer)
}

/// The top-level property names whose values differ (added, removed or changed), sorted.
pub fn changed_properties(properties: &Value, previous: &Value) -> Vec<String> {
    let mut names: Vec<String> = [properties, previous]
        .into_iter()
        .filter_map(Value::as_object)
        .flat_map(|o| o.keys())
        .filter(|name| {
            let pointer = format!("/{}", escape(name));
            differs(properties, previous, &pointer)
        })
        .cloned()
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The create-only properties whose values differ, as paths below `Properties`
/// (`FunctionName`, `Code/S3Bucket`): a change to any of them makes CloudFormation replace
/// the resource. A type without an update handler is replaced by any change, so then every
/// changed top-level property is listed.
pub fn replaced_by(schema: &ResourceSchema, properties: &Value, previous: &Value) -> Vec<String> {
    if schema
        .handler_permissions(crate::Operation::Update)
        .is_none()
    {
        return changed_properties(properties, previous);
    }
    schema
        .create_only_properties()
        .iter()
        .filter(|pointer| differs(properties, previous, pointer))
        .map(|pointer| pointer.trim_start_matches('/').to_owned())
        .collect()
}

fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use rstest::rstest;
    use serde_json::json;

    use super::*;

    #[rstest]
    #[case::absent(json!({}), false)]
    #[case::null(json!({"A": null}), false)]
    #[case::empty_string(json!({"A": ""}), false)]
    #[case::empty_list(json!({"A": []}), false)]
    #[case::empty_object(json!({"A": {}}), false)]
    #[case::string(json!({"A": "x"}), true)]
    #[case::false_is_a_value(json!({"A": false}), true)]
    #[case::zero_is_a_value(json!({"A": 0}), true)]
    #[case::list(json!({"A": [1]}), true)]
    fn is_set_ignores_what_cloudformation_would_not_send(
        #[case] properties: Value,
        #[case] expected: bool,
    ) {
        assert_eq!(is_set(&properties, "/A"), expected);
    }

    #[rstest]
    #[case::nothing(json!({"A": 1}), json!({"A": 1}), &[])]
    #[case::changed(json!({"A": 2, "B": 1}), json!({"A": 1, "B": 1}), &["A"])]
    #[case::added(json!({"A": 1, "B": 1}), json!({"A": 1}), &["B"])]
    #[case::removed(json!({"A": 1}), json!({"A": 1, "B": 1}), &["B"])]
    #[case::null_is_absent(json!({"A": null}), json!({}), &[])]
    #[case::nested_change_names_the_top(json!({"C": {"x": 1}}), json!({"C": {"x": 2}}), &["C"])]
    fn changed_properties_lists_added_removed_and_changed(
        #[case] properties: Value,
        #[case] previous: Value,
        #[case] expected: &[&str],
    ) {
        assert_eq!(changed_properties(&properties, &previous), expected);
    }

    fn function_schema(with_update: bool) -> ResourceSchema {
        let update = if with_update {
            r#", "update": {"permissions": ["lambda:UpdateFunctionConfiguration"]}"#
        } else {
            ""
        };
        ResourceSchema::parse(&format!(
            r#"{{"typeName": "AWS::Lambda::Function",
                "createOnlyProperties": ["/properties/FunctionName", "/properties/Code/S3Bucket"],
                "handlers": {{"create": {{"permissions": []}}{update}}}}}"#
        ))
        .unwrap()
    }

    #[rstest]
    #[case::timeout_is_in_place(json!({"FunctionName": "f", "Timeout": 3}), json!({"FunctionName": "f", "Timeout": 30}), true, &[])]
    #[case::name_replaces(json!({"FunctionName": "g"}), json!({"FunctionName": "f"}), true, &["FunctionName"])]
    #[case::adding_a_name_replaces(json!({"FunctionName": "g"}), json!({}), true, &["FunctionName"])]
    #[case::nested_create_only(json!({"Code": {"S3Bucket": "b2"}}), json!({"Code": {"S3Bucket": "b"}}), true, &["Code/S3Bucket"])]
    #[case::no_update_handler_replaces_on_any_change(json!({"Timeout": 3}), json!({"Timeout": 30}), false, &["Timeout"])]
    fn replaced_by_lists_changed_create_only_properties(
        #[case] properties: Value,
        #[case] previous: Value,
        #[case] with_update: bool,
        #[case] expected: &[&str],
    ) {
        assert_eq!(
            replaced_by(&function_schema(with_update), &properties, &previous),
            expected
        );
    }
}
