//! cfn-lint's copy of the CloudFormation resource provider schemas: the index and the schemas.

use std::{
    collections::HashMap,
    fmt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use serde::Deserialize;

use crate::Error;

/// The provider index whose type → file map this crate reads. The schemas are the same
/// resource types in every commercial region; us-east-1 is the one every type exists in.
const INDEX_REGION: &str = "us-east-1";

/// A CloudFormation resource handler operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// The create handler (a new resource, or the new half of a replacement).
    Create,
    /// The update handler (an in-place change).
    Update,
    /// The delete handler (a removed resource, or the old half of a replacement).
    Delete,
}

impl Operation {
    /// The schema's name of the handler: `create`, `update` or `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The parts of one provider schema this crate uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceSchema {
    type_name: String,
    create: Option<Vec<String>>,
    update: Option<Vec<String>>,
    delete: Option<Vec<String>>,
    create_only: Vec<String>,
    primary_identifier: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSchema {
    type_name: String,
    #[serde(default)]
    handlers: RawHandlers,
    #[serde(default)]
    create_only_properties: Vec<String>,
    #[serde(default)]
    primary_identifier: Vec<String>,
}

#[derive(Deserialize, Default)]
struct RawHandlers {
    create: Option<RawHandler>,
    update: Option<RawHandler>,
    delete: Option<RawHandler>,
}

#[derive(Deserialize)]
struct RawHandler {
    #[serde(default)]
    permissions: Vec<String>,
}

/// `/properties/A/B` → `/A/B`, the pointer below a resource's `Properties`.
fn below_properties(pointer: &str) -> String {
    pointer
        .strip_prefix("/properties")
        .unwrap_or(pointer)
        .to_owned()
}

impl ResourceSchema {
    /// Parses one provider schema (a `resources/<id>.json` file's text).
    pub fn parse(text: &str) -> Result<Self, Error> {
        Self::parse_at(Path::new("<inline>"), text)
    }

    fn parse_at(path: &Path, text: &str) -> Result<Self, Error> {
        let raw: RawSchema = serde_json::from_str(text).map_err(|source| Error::Parse {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self {
            type_name: raw.type_name,
            create: raw.handlers.create.map(|h| h.permissions),
            update: raw.handlers.update.map(|h| h.permissions),
            delete: raw.handlers.delete.map(|h| h.permissions),
            create_only: raw
                .create_only_properties
                .iter()
                .map(|p| below_properties(p))
                .collect(),
            primary_identifier: raw
                .primary_identifier
                .iter()
                .map(|p| below_properties(p))
                .collect(),
        })
    }

    /// The resource type, e.g. `AWS::Lambda::Function`.
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// The handler's whole permission list (the superset), or `None` if the schema has no
    /// such handler.
    pub fn handler_permissions(&self, operation: Operation) -> Option<&[String]> {
        match operation {
            Operation::Create => self.create.as_deref(),
            Operation::Update => self.update.as_deref(),
            Operation::Delete => self.delete.as_deref(),
        }
    }

    /// The properties whose change replaces the resource, as JSON pointers below
    /// `Properties` (`/FunctionName`).
    pub fn create_only_properties(&self) -> &[String] {
        &self.create_only
    }

    /// The properties that identify a resource, as JSON pointers below `Properties`.
    pub fn primary_identifier(&self) -> &[String] {
        &self.primary_identifier
    }
}

/// cfn-lint's schemas directory: the index, read at open, and each schema read on first use.
#[derive(Debug)]
pub struct Schemas {
    dir: PathBuf,
    index: HashMap<String, String>,
    loaded: Mutex<HashMap<String, Arc<ResourceSchema>>>,
}

impl Schemas {
    /// Opens cfn-lint's `data/schemas` directory (see [`crate::schemas_dir_in`]).
    pub fn open(dir: &Path) -> Result<Self, Error> {
        let path = dir.join("providers").join(format!("{INDEX_REGION}.json"));
        let text = read(&path)?;
        let index = serde_json::from_str(&text).map_err(|source| Error::Parse {
            path: path.clone(),
            source,
        })?;
        Ok(Self {
            dir: dir.to_owned(),
            index,
            loaded: Mutex::new(HashMap::new()),
        })
    }

    /// The directory this was opened on.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every resource type the index names, sorted.
    pub fn resource_types(&self) -> Vec<&str> {
        let mut types: Vec<&str> = self.index.keys().map(String::as_str).collect();
        types.sort_unstable();
        types
    }

    /// The schema of `resource_type`; an unknown type is an error.
    pub fn get(&self, resource_type: &str) -> Result<Arc<ResourceSchema>, Error> {
        if let Some(schema) = self.cache().get(resource_type) {
            return Ok(Arc::clone(schema));
        }
        let id = self
            .index
            .get(resource_type)
            .ok_or_else(|| Error::UnknownType {
                resource_type: resource_type.to_owned(),
                dir: self.dir.clone(),
            })?;
        let path = self.dir.join("resources").join(format!("{id}.json"));
        let schema = Arc::new(ResourceSchema::parse_at(&path, &read(&path)?)?);
        if schema.type_name != resource_type {
            return Err(Error::UnknownType {
                resource_type: resource_type.to_owned(),
                dir: self.dir.clone(),
            });
        }
        self.cache()
            .insert(resource_type.to_owned(), Arc::clone(&schema));
        Ok(schema)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<ResourceSchema>>> {
        // A panic while holding the lock cannot leave the map half-written (insert is one
        // call), so a poisoned lock still holds a consistent cache.
        self.loaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_keeps_handlers_and_strips_the_properties_prefix() {
        let schema = ResourceSchema::parse(
            r#"{"typeName": "AWS::X::Y",
                "createOnlyProperties": ["/properties/Name", "/properties/A/B"],
                "primaryIdentifier": ["/properties/Name"],
                "handlers": {"create": {"permissions": ["x:Create"]}, "delete": {}}}"#,
        )
        .unwrap();
        assert_eq!(schema.type_name(), "AWS::X::Y");
        assert_eq!(
            schema.handler_permissions(Operation::Create),
            Some(&["x:Create".to_owned()][..])
        );
        assert_eq!(schema.handler_permissions(Operation::Update), None);
        assert_eq!(schema.handler_permissions(Operation::Delete), Some(&[][..]));
        assert_eq!(schema.create_only_properties(), ["/Name", "/A/B"]);
        assert_eq!(schema.primary_identifier(), ["/Name"]);
    }

    #[test]
    fn parse_refuses_a_file_without_a_type_name() {
        assert!(matches!(
            ResourceSchema::parse(r#"{"handlers": {}}"#),
            Err(Error::Parse { .. })
        ));
    }

    #[test]
    fn open_names_the_missing_index() {
        let error = Schemas::open(Path::new("/nonexistent/schemas")).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("/nonexistent/schemas/providers/us-east-1.json"),
            "{error}"
        );
    }
}
