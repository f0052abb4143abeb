//! Errors of the scenario crate.

use std::path::PathBuf;

/// Everything that can go wrong while loading scenarios or writing their reports.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// A scenario file breaks the format: YAML syntax, an unknown key, a wrong type or a rule.
    #[error("{}:{line}: {message}", file.display())]
    Invalid {
        /// The scenario file at fault.
        file: PathBuf,
        /// 1-based line of the offending key or value (1 when the file is empty).
        line: u64,
        /// Dotted path of the offending key, e.g. `invoke.payload_file` (`.` for the document).
        key: String,
        /// What is wrong and how to fix it, lowercase.
        message: String,
    },
    /// Two scenario files use the same `name`; names identify scenarios in reports and JUnit.
    #[error(
        "{}:{line}: duplicate scenario name `{name}` in key `name`, already used by {}:{first_line}; rename one of them",
        file.display(),
        first_file.display()
    )]
    DuplicateName {
        /// The scenario name used twice.
        name: String,
        /// The file loaded second.
        file: PathBuf,
        /// Line of `name` in `file`.
        line: u64,
        /// The file that used the name first.
        first_file: PathBuf,
        /// Line of `name` in `first_file`.
        first_line: u64,
    },
    /// A scenario file or directory could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The path that could not be read.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The given paths hold no scenario file at all, which is almost always a typo.
    #[error("no scenario files (*.yaml, *.yml) found in {}", paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    NoScenarios {
        /// The paths that were searched.
        paths: Vec<PathBuf>,
    },
    /// Several files failed to load; each is reported so all can be fixed in one go.
    #[error("{} scenario files failed to load:\n{}", errors.len(), errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Several {
        /// One error per failing file, in path order.
        errors: Vec<ScenarioError>,
    },
    /// A report file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file or directory that could not be written.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A report could not be serialised to JSON.
    #[error("cannot serialise the report for scenario `{scenario}` to json: {source}")]
    Json {
        /// The scenario whose report failed.
        scenario: String,
        /// The serde_json error.
        source: serde_json::Error,
    },
}

impl ScenarioError {
    /// Builds an [`ScenarioError::Invalid`] for `key` at `line` of `file`.
    pub(crate) fn invalid(
        file: impl Into<PathBuf>,
        line: u64,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::Invalid {
            file: file.into(),
            line,
            key: key.into(),
            message: message.into(),
        }
    }
}
