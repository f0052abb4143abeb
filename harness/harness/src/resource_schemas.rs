//! The CloudFormation resource provider schemas, which say which IAM
//! permissions each resource handler needs (`handlers.<op>.permissions`) and
//! which property changes replace a resource (`createOnlyProperties`).
//!
//! AWS publishes them per region; cfn-lint's PyPI package ships them as data,
//! maintained with every release. The harness installs that package's files
//! alone (`pip install --no-deps --target`, nothing imported or run) into its
//! cache directory, pinned to the version CI lints with, and reads them with
//! the `deploy-permissions` crate.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use deploy_permissions::Schemas;

use crate::{
    emulator::venv::{
        build_in_place, cache_dir, find_python, is_complete, pip_install_alone, run_streaming,
    },
    error::HarnessError,
    progress::Step,
};

/// The package and version the schemas come from (the pin in `.ci/requirements.txt`).
pub const PACKAGE: &str = "cfn-lint==1.58.0";

/// The directory the package is installed into.
fn target_dir() -> PathBuf {
    cache_dir().join(format!("schemas-{}", PACKAGE.replace("==", "-")))
}

/// Returns the schemas, installing them on first use (a few seconds).
pub fn ensure(quiet: bool) -> Result<Arc<Schemas>, HarnessError> {
    let target = target_dir();
    if !is_complete(&target) {
        install(&target, quiet)?;
    }
    open(&target)
}

fn open(target: &Path) -> Result<Arc<Schemas>, HarnessError> {
    let dir = deploy_permissions::schemas_dir_in(target);
    Schemas::open(&dir)
        .map(Arc::new)
        .map_err(|e| HarnessError::File {
            path: dir,
            reason: format!("cannot read the CloudFormation resource schemas: {e}"),
        })
}

fn install(target: &Path, quiet: bool) -> Result<(), HarnessError> {
    let step = Step::start(
        format!(
            "installing the CloudFormation resource schemas ({PACKAGE}) into {}",
            target.display()
        ),
        quiet,
    );
    let (python, _) = find_python()?;
    let result = build_in_place(target, |partial| {
        run_streaming(
            pip_install_alone(&python)
                .args(["--quiet", "--target"])
                .arg(partial)
                .arg(PACKAGE),
            &step,
        )
    });
    match result {
        Ok(()) => {
            step.done();
            Ok(())
        }
        Err(reason) => {
            step.failed();
            Err(HarnessError::Venv {
                path: target.to_path_buf(),
                reason: format!("installing {PACKAGE} failed: {reason}"),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schemas_come_from_the_cfn_lint_ci_lints_with() {
        let requirements =
            std::fs::read_to_string(crate::workspace::root().join(".ci/requirements.txt"))
                .expect("the CI requirements");
        assert!(
            requirements.lines().any(|line| line.trim() == PACKAGE),
            "{PACKAGE} is not pinned in .ci/requirements.txt:\n{requirements}"
        );
    }
}
