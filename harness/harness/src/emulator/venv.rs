//! The cached Python virtual environment that holds LocalStack and the
//! project's executor plugin.
//!
//! The venv lives outside the checkout (a cache directory), keyed by the
//! Python version and the constraints file, so clean clones reuse it. It is
//! built in a temporary directory and renamed into place only when complete,
//! under a file lock, so an interrupted or concurrent build never leaves a
//! half-made venv behind. The plugin is reinstalled whenever its sources change.

use std::{
    fs::File,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use sha2::{Digest, Sha256};

use crate::{error::HarnessError, progress::Step};

/// The constraints file, embedded so the key never drifts from what is installed.
pub const CONSTRAINTS: &str = include_str!("../../localstack-constraints.txt");

/// The executor plugin's source directory.
pub fn plugin_dir() -> PathBuf {
    crate::workspace::root()
        .join("harness")
        .join("localstack-plugin")
}

/// Where the harness caches venvs: `$HARNESS_CACHE_DIR`, else the user cache dir.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("HARNESS_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| dirs::cache_dir().map(|d| d.join("servicenow-alert-harness")))
        .unwrap_or_else(|| std::env::temp_dir().join("servicenow-alert-harness"))
}

/// A ready venv.
#[derive(Debug, Clone)]
pub struct Venv {
    /// The venv's root directory.
    pub root: PathBuf,
}

impl Venv {
    /// The venv's Python interpreter.
    pub fn python(&self) -> PathBuf {
        self.root.join("bin").join("python")
    }
}

/// Finds the interpreter to build venvs with: `$HARNESS_PYTHON`, else `python3`.
/// Returns its `sys.version` (major.minor) too.
pub fn find_python() -> Result<(PathBuf, String), HarnessError> {
    let python = std::env::var_os("HARNESS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"));
    let tried = python.display().to_string();
    let output = Command::new(&python)
        .args([
            "-c",
            "import sys, venv; print('%d.%d' % sys.version_info[:2])",
        ])
        .output()
        .map_err(|_| HarnessError::PythonMissing {
            tried: tried.clone(),
        })?;
    if !output.status.success() {
        return Err(HarnessError::PythonMissing { tried });
    }
    let version = String::from_utf8_lossy(&output.stdout).trim().to_string();
    Ok((python, version))
}

fn hash_hex(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hex::encode(hasher.finalize())[..12].to_string()
}

/// Hashes every file of the plugin package (paths and contents), skipping build output.
fn plugin_hash(dir: &Path) -> Result<String, HarnessError> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(|e| HarnessError::File {
            path: d.clone(),
            reason: format!("cannot read the executor plugin sources: {e}"),
        })? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with('.')
                || name == "__pycache__"
                || name == "build"
                || name.ends_with(".egg-info")
            {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut parts = Vec::new();
    for f in &files {
        let rel = f
            .strip_prefix(dir)
            .unwrap_or(f)
            .to_string_lossy()
            .into_owned();
        parts.push(rel.into_bytes());
        parts.push(std::fs::read(f)?);
    }
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    Ok(hash_hex(&refs))
}

/// `python -m pip install` of a package alone (`--no-deps`): the rest of
/// the command line is the caller's.
pub(crate) fn pip_install_alone(python: &Path) -> Command {
    let mut command = Command::new(python);
    command.args([
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-deps",
    ]);
    command
}

/// Runs a command, streaming its output lines into the step's detail, and
/// returns the last lines on failure.
pub(crate) fn run_streaming(cmd: &mut Command, step: &Step) -> Result<(), String> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    let stderr = child.stderr.take();
    let err_thread = std::thread::spawn(move || {
        let mut lines = Vec::new();
        if let Some(stderr) = stderr {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.push(line);
            }
        }
        lines
    });
    let mut tail: Vec<String> = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            step.detail(&line);
            tail.push(line);
            if tail.len() > 20 {
                tail.remove(0);
            }
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    let err_lines = err_thread.join().unwrap_or_default();
    if status.success() {
        Ok(())
    } else {
        tail.extend(err_lines.into_iter().rev().take(20).rev());
        Err(format!("{status}\n{}", tail.join("\n")))
    }
}

/// Returns the LocalStack venv, creating it (about two minutes) on first use and
/// (re)installing the executor plugin when its sources changed.
pub fn ensure(quiet: bool) -> Result<Venv, HarnessError> {
    let (python, py_version) = find_python()?;
    let key = hash_hex(&[CONSTRAINTS.as_bytes(), py_version.as_bytes()]);
    let cache = cache_dir();
    std::fs::create_dir_all(&cache).map_err(|e| HarnessError::Venv {
        path: cache.clone(),
        reason: format!("cannot create the cache directory: {e}"),
    })?;
    let root = cache.join(format!("localstack-4.8.1-py{py_version}-{key}"));
    let lock_path = cache.join(format!("localstack-{key}.lock"));
    let lock_file = File::create(&lock_path)?;
    // Serialises venv creation and plugin installs between concurrent harness runs.
    let _lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive).map_err(
        |(_, e)| HarnessError::Venv {
            path: lock_path.clone(),
            reason: format!("cannot lock: {e}"),
        },
    )?;
    let venv = Venv { root: root.clone() };
    if !is_complete(&root) {
        create(&python, &root, quiet)?;
    }
    install_plugin(&venv, quiet)?;
    Ok(venv)
}

fn create(python: &Path, root: &Path, quiet: bool) -> Result<(), HarnessError> {
    let step = Step::start(
        format!(
            "creating the LocalStack venv in {} (first run only, about 2 minutes)",
            root.display()
        ),
        quiet,
    );
    // venvs hold absolute paths, so the rename must happen before first use
    // and keep the same final path; `python -m venv` writes that path only
    // into scripts we never call (we always run `bin/python -m ...`).
    let result = build_in_place(root, |tmp| {
        run_streaming(Command::new(python).args(["-m", "venv"]).arg(tmp), &step)?;
        let constraints = tmp.join("constraints.txt");
        std::fs::write(&constraints, CONSTRAINTS).map_err(|e| e.to_string())?;
        run_streaming(
            Command::new(tmp.join("bin").join("python"))
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "--progress-bar",
                    "off",
                    "-c",
                ])
                .arg(&constraints)
                .args(["localstack-core[runtime]", "setuptools", "wheel"]),
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
                path: root.to_path_buf(),
                reason,
            })
        }
    }
}

/// The marker of a directory [`build_in_place`] finished.
const COMPLETE: &str = ".complete";

/// Whether [`build_in_place`] finished `dir`.
pub(crate) fn is_complete(dir: &Path) -> bool {
    dir.join(COMPLETE).exists()
}

/// Builds the directory `target` with `fill`, which writes into a partial
/// directory beside it. The partial directory is marked complete and renamed
/// into place only when `fill` succeeded, and removed otherwise, so an
/// interrupted or concurrent build never leaves half the files at `target`.
/// A copy another run finished first is as good as this one.
pub(crate) fn build_in_place(
    target: &Path,
    fill: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), String> {
    let partial = target.with_extension(format!("partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    let result = fill(&partial).and_then(|()| {
        std::fs::write(partial.join(COMPLETE), "").map_err(|e| e.to_string())?;
        match std::fs::rename(&partial, target) {
            Ok(()) => Ok(()),
            Err(_) if is_complete(target) => Ok(()),
            Err(e) => Err(format!("cannot move {} into place: {e}", partial.display())),
        }
    });
    let _ = std::fs::remove_dir_all(&partial);
    result
}

fn install_plugin(venv: &Venv, quiet: bool) -> Result<(), HarnessError> {
    let dir = plugin_dir();
    let hash = plugin_hash(&dir)?;
    let stamp = venv.root.join(format!(".plugin-{hash}"));
    if stamp.exists() {
        return Ok(());
    }
    let step = Step::start("installing the native Lambda executor plugin", quiet);
    // Build from a copy so pip's build artefacts never land in the checkout.
    let build_dir = venv.root.join("plugin-src");
    let _ = std::fs::remove_dir_all(&build_dir);
    copy_tree(&dir, &build_dir)?;
    let result = run_streaming(
        pip_install_alone(&venv.python())
            .args(["--no-build-isolation", "--force-reinstall"])
            .arg(&build_dir),
        &step,
    );
    match result {
        Ok(()) => {
            for entry in std::fs::read_dir(&venv.root)?.flatten() {
                if entry.file_name().to_string_lossy().starts_with(".plugin-") {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
            std::fs::write(&stamp, &hash)?;
            if let Some(user_cache) = dirs::cache_dir() {
                forget_plugin_indexes(&user_cache.join("plux"));
            }
            step.done();
            Ok(())
        }
        Err(reason) => {
            step.failed();
            Err(HarnessError::Venv {
                path: venv.root.clone(),
                reason: format!("installing the executor plugin failed: {reason}"),
            })
        }
    }
}

/// The executor plugin's Python package, as its entry points name it.
const PLUGIN_PACKAGE: &str = "localstack_native_executor";

/// Removes the entry-point indexes in `plux_cache` that name the plugin.
///
/// plux, LocalStack's plugin loader, caches an environment's entry points
/// in `<user cache>/plux`, under a hash of the entry-point files' mtimes
/// packed as 32-bit floats (plux 1.x, `runtime/cache.py`): to the second
/// near 2026 those round to 128 s, so a plugin installed again within about
/// two minutes kept the key, and LocalStack ran the hooks of the plugin
/// installed before (seen: a new hook never ran). LocalStack rebuilds a
/// removed index when it starts. Returns how many were removed.
fn forget_plugin_indexes(plux_cache: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(plux_cache) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.to_string_lossy().ends_with(".entry_points.txt")
                && std::fs::read_to_string(path).is_ok_and(|text| text.contains(PLUGIN_PACKAGE))
        })
        .filter(|path| std::fs::remove_file(path).is_ok())
        .count()
}

/// The executor plugin installed on its own (`pip install --target`), for a
/// LocalStack that is not this venv's: the container backend puts it on the
/// image's `PYTHONPATH`. Keyed by the plugin's sources, installed on first use
/// with this venv's pip and setuptools (the plugin is pure Python).
pub fn plugin_tree(quiet: bool) -> Result<PathBuf, HarnessError> {
    let venv = ensure(quiet)?;
    let dir = plugin_dir();
    let target = cache_dir().join(format!("executor-plugin-{}", plugin_hash(&dir)?));
    if is_complete(&target) {
        return Ok(target);
    }
    let step = Step::start(
        "installing the native Lambda executor plugin for the container",
        quiet,
    );
    // Built from a copy so pip's build artefacts never land in the checkout.
    let source = target.with_extension(format!("src-{}", std::process::id()));
    let result = copy_tree(&dir, &source)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            build_in_place(&target, |partial| {
                run_streaming(
                    pip_install_alone(&venv.python())
                        .args(["--no-build-isolation", "--quiet", "--target"])
                        .arg(partial)
                        .arg(&source),
                    &step,
                )
            })
        });
    let _ = std::fs::remove_dir_all(&source);
    match result {
        Ok(()) => {
            step.done();
            Ok(target)
        }
        Err(reason) => {
            step.failed();
            Err(HarnessError::Venv {
                path: target,
                reason: format!("installing the executor plugin failed: {reason}"),
            })
        }
    }
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), HarnessError> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        let n = name.to_string_lossy();
        if n == "__pycache__" || n == "build" || n.ends_with(".egg-info") {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_entry_point_indexes_naming_the_plugin_are_forgotten() {
        let cache = tempfile::tempdir().expect("a temporary directory");
        let write = |name: &str, text: &str| {
            std::fs::write(cache.path().join(name), text).expect("written");
        };
        write(
            "a.entry_points.txt",
            "[localstack.hooks.on_infra_start]\nharness_shared_timers = localstack_native_executor.tuning:share_environment_timers\n",
        );
        write(
            "b.entry_points.txt",
            "[localstack.hooks.on_infra_start]\neager_load_services = localstack.services.plugins:eager_load_services\n",
        );
        write("notes.txt", "localstack_native_executor");

        assert_eq!(forget_plugin_indexes(cache.path()), 1);
        let mut left: Vec<String> = std::fs::read_dir(cache.path())
            .expect("listed")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["b.entry_points.txt", "notes.txt"]);
        assert_eq!(forget_plugin_indexes(&cache.path().join("absent")), 0);
    }

    #[test]
    fn the_key_changes_with_any_part() {
        let a = hash_hex(&[b"pins", b"3.11"]);
        assert_eq!(a.len(), 12);
        assert_ne!(a, hash_hex(&[b"pins", b"3.12"]));
        // Length-prefixing keeps ("ab","c") and ("a","bc") apart.
        assert_ne!(hash_hex(&[b"ab", b"c"]), hash_hex(&[b"a", b"bc"]));
    }

    #[test]
    fn the_constraints_pin_the_measured_versions() {
        for pin in [
            "localstack-core==4.8.1",
            "cbor2==5.7.0",
            "cryptography==45.0.7",
            "pyopenssl==25.2.0",
            "psutil==7.0.0",
            "localstack-twisted==24.3.0",
            "moto-ext==5.1.11.post1",
        ] {
            assert!(
                CONSTRAINTS.lines().any(|l| l.trim() == pin),
                "missing {pin}"
            );
        }
    }

    #[test]
    fn the_plugin_tree_puts_the_executor_on_a_python_path() {
        let tree = plugin_tree(true).expect("the plugin installs on its own");
        assert!(
            tree.join("localstack_native_executor/executor.py")
                .is_file()
        );
        // A Python without the plugin installed, as LocalStack's image is,
        // finds the executor LAMBDA_RUNTIME_EXECUTOR=native names once the
        // tree is on its path.
        let (python, _) = find_python().expect("python3");
        let found = Command::new(python)
            .env("PYTHONPATH", &tree)
            .args([
                "-c",
                "import importlib.metadata as m; print(*sorted(e.name + '=' + e.value for e in m.entry_points(group='localstack.lambda.runtime_executor')))",
            ])
            .output()
            .expect("python3 runs");
        let stdout = String::from_utf8_lossy(&found.stdout);
        assert_eq!(
            stdout.trim(),
            "native=localstack_native_executor.plugin:NativeRuntimeExecutorPlugin",
            "{}",
            String::from_utf8_lossy(&found.stderr)
        );
    }

    #[test]
    fn a_failed_build_leaves_nothing_and_a_finished_one_is_complete() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("thing");
        let failed = build_in_place(&target, |partial| {
            std::fs::create_dir_all(partial).map_err(|e| e.to_string())?;
            std::fs::write(partial.join("half"), "x").map_err(|e| e.to_string())?;
            Err("interrupted".into())
        });
        assert_eq!(failed, Err("interrupted".to_owned()));
        assert!(!target.exists());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "no partial left"
        );

        build_in_place(&target, |partial| {
            std::fs::create_dir_all(partial).map_err(|e| e.to_string())?;
            std::fs::write(partial.join("whole"), "x").map_err(|e| e.to_string())
        })
        .unwrap();
        assert!(is_complete(&target));
        assert!(target.join("whole").is_file());
    }

    #[test]
    fn a_missing_interpreter_says_python3_is_missing() {
        // SAFETY: tests in this module do not read HARNESS_PYTHON concurrently.
        let err = {
            let _guard = EnvGuard::set("HARNESS_PYTHON", "/nonexistent/python3");
            find_python().unwrap_err()
        };
        let msg = err.to_string();
        assert!(msg.contains("python3 was not found"), "{msg}");
        assert!(msg.contains("/nonexistent/python3"), "{msg}");
    }

    struct EnvGuard(&'static str, Option<std::ffi::OsString>);
    impl EnvGuard {
        fn set(key: &'static str, value: &str) -> Self {
            let old = std::env::var_os(key);
            // SAFETY: single-threaded use within one test; restored on drop.
            unsafe { std::env::set_var(key, value) };
            Self(key, old)
        }
    }
    impl Drop for EnvGuard {
        fn drop(&mut self) {
            // SAFETY: see `set`.
            unsafe {
                match &self.1 {
                    Some(v) => std::env::set_var(self.0, v),
                    None => std::env::remove_var(self.0),
                }
            }
        }
    }
}
