//! Where the harness finds the checkout it was built from: the workspace root
//! (found by searching upward, so no code depends on how crates are nested),
//! and the files it reads there.

use std::path::{Path, PathBuf};

/// The workspace root: the nearest directory at or above this crate whose
/// `Cargo.toml` declares `[workspace]`.
pub fn root() -> PathBuf {
    find_root(Path::new(env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

fn find_root(start: &Path) -> Option<PathBuf> {
    start.ancestors().find_map(|dir| {
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).ok()?;
        manifest
            .lines()
            .any(|line| line.trim() == "[workspace]")
            .then(|| dir.to_path_buf())
    })
}

/// The CloudFormation templates.
pub fn templates_dir() -> PathBuf {
    root().join("cloudformation")
}

/// The scenario suite.
pub fn scenarios_dir() -> PathBuf {
    root().join("scenarios")
}

/// Cargo's target directory: `$CARGO_TARGET_DIR`, else `target` in the workspace.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// The default work directory: `<target>/harness`.
pub fn default_work_dir() -> PathBuf {
    target_dir().join("harness")
}

/// Where `harness run` writes scenario reports unless told otherwise.
pub fn reports_dir(work_dir: &Path) -> PathBuf {
    work_dir.join("reports")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_the_directory_that_declares_the_workspace() {
        let dir = tempfile::tempdir().expect("tempdir");
        let crate_dir = dir.path().join("a").join("b");
        std::fs::create_dir_all(&crate_dir).expect("dirs");
        std::fs::write(crate_dir.join("Cargo.toml"), "[package]\nname = \"b\"\n").expect("write");
        std::fs::write(dir.path().join("Cargo.toml"), "[workspace]\nmembers = []\n")
            .expect("write");

        assert_eq!(find_root(&crate_dir).as_deref(), Some(dir.path()));
    }

    #[test]
    fn this_checkout_has_its_templates_and_scenarios_at_the_root() {
        assert!(templates_dir().join("calleecloudformation.yaml").is_file());
        assert!(scenarios_dir().join("README.md").is_file());
    }
}
