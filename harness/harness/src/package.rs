//! Builds the lambdas and packages each as `bootstrap` inside a zip, the
//! `provided.al2023` layout.

use std::{
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use sha2::{Digest, Sha256};
use zip::{CompressionMethod, DateTime, ZipWriter, write::SimpleFileOptions};

use crate::{error::HarnessError, progress::Step};

/// The lambda crates, in deploy order.
pub const LAMBDAS: [&str; 2] = ["alert-callee", "alert-caller"];

/// How to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Cargo profile: `dev`, `release`, or a custom one.
    pub profile: String,
    /// Where to put `<crate>/bootstrap.zip`.
    pub out_dir: PathBuf,
    /// Also build the runtime shim (host backend).
    pub with_shim: bool,
    /// Suppress progress output.
    pub quiet: bool,
}

/// A packaged lambda.
#[derive(Debug, Clone)]
pub struct LambdaZip {
    /// The crate name.
    pub name: String,
    /// The zip's path.
    pub zip: PathBuf,
    /// Hex SHA-256 of the zip, so deploys can tell whether code changed.
    pub sha256: String,
}

/// What a build produced.
#[derive(Debug, Clone)]
pub struct Artifacts {
    /// The callee's zip.
    pub callee: LambdaZip,
    /// The caller's zip.
    pub caller: LambdaZip,
    /// The runtime shim, when built.
    pub runtime_shim: Option<PathBuf>,
}

/// Builds the lambdas (and the shim) with cargo and zips them.
pub fn build(options: &BuildOptions) -> Result<Artifacts, HarnessError> {
    let step = Step::start(
        format!("building the lambdas (profile {})", options.profile),
        options.quiet,
    );
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(describes_running_package) {
            cmd.env_remove(name);
        }
    }
    cmd.current_dir(crate::workspace::root())
        .args(["build", "--message-format=json-render-diagnostics"])
        .args(["--profile", &options.profile]);
    for lambda in LAMBDAS {
        cmd.args(["-p", lambda]);
    }
    if options.with_shim {
        cmd.args(["-p", "runtime-shim", "--bin", "runtime-shim"]);
    }
    cmd.args(["--bin", "alert-callee", "--bin", "alert-caller"]);
    let executables = match run_cargo(&mut cmd, &step) {
        Ok(found) => found,
        Err(reason) => {
            step.failed();
            return Err(HarnessError::Build(reason));
        }
    };
    let exe = |name: &str| -> Result<PathBuf, HarnessError> {
        executables
            .iter()
            .find(|p| p.file_name().is_some_and(|f| f == name))
            .cloned()
            .ok_or_else(|| HarnessError::Build(format!("cargo built no `{name}` binary")))
    };
    let zip_one = |name: &str| -> Result<LambdaZip, HarnessError> {
        let zip = options.out_dir.join(name).join("bootstrap.zip");
        let sha256 = zip_bootstrap(&exe(name)?, &zip)?;
        Ok(LambdaZip {
            name: name.to_string(),
            zip,
            sha256,
        })
    };
    let artifacts = Artifacts {
        callee: zip_one("alert-callee")?,
        caller: zip_one("alert-caller")?,
        runtime_shim: if options.with_shim {
            Some(exe("runtime-shim")?)
        } else {
            None
        },
    };
    step.done();
    Ok(artifacts)
}

/// Whether an environment variable is one `cargo run` and `cargo test` set to
/// describe the package of the program they start (the harness itself).
///
/// The nested build must not inherit them: a build script that declares
/// `rerun-if-env-changed` on one (ring's does, on `CARGO_MANIFEST_DIR`) would
/// rerun, and everything above it would be rebuilt; the user's next build,
/// without the variable, would rebuild it all again.
fn describes_running_package(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || matches!(
            name,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_TARGET_TMPDIR"
                | "CARGO_RUSTC_CURRENT_DIR"
        )
}

/// Runs cargo with JSON messages and returns every executable it produced.
fn run_cargo(cmd: &mut Command, step: &Step) -> Result<Vec<PathBuf>, String> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    let stderr = child.stderr.take();
    let err_thread = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(stderr) = stderr {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                text.push_str(&line);
                text.push('\n');
            }
        }
        text
    });
    let mut executables = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if msg["reason"] == "compiler-artifact" {
                if let Some(name) = msg["target"]["name"].as_str() {
                    step.detail(name);
                }
                if let Some(exe) = msg["executable"].as_str() {
                    executables.push(PathBuf::from(exe));
                }
            }
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    let stderr = err_thread.join().unwrap_or_default();
    if status.success() {
        Ok(executables)
    } else {
        // Progress lines bury the error; keep what cargo said about the failure.
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| {
                let t = l.trim_start();
                !(t.starts_with("Compiling ")
                    || t.starts_with("Downloaded ")
                    || t.starts_with("Downloading ")
                    || t.starts_with("Blocking waiting"))
            })
            .collect();
        Err(format!(
            "cargo build failed ({status}):\n{}",
            errors.join("\n")
        ))
    }
}

/// Writes `binary`, stripped (see [`deployable_binary`]), as an executable
/// `bootstrap` into a zip at `zip_path`, with a fixed timestamp so the same
/// binary always gives the same zip, and returns the zip's SHA-256.
///
/// A zip already made from this very binary (same path, size and modification
/// time, and the same packaging, as recorded in `<zip>.source`) is reused:
/// deflating tens of megabytes of debug binary is most of a no-op build's time.
pub fn zip_bootstrap(binary: &Path, zip_path: &Path) -> Result<String, HarnessError> {
    let unreadable = |e: std::io::Error| HarnessError::File {
        path: binary.to_path_buf(),
        reason: format!("cannot read the lambda binary: {e}"),
    };
    let meta = std::fs::metadata(binary).map_err(unreadable)?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let source = format!("{} {} {modified} {PACKAGING}", binary.display(), meta.len());
    let record = zip_path.with_extension("zip.source");
    if let Ok(recorded) = std::fs::read_to_string(&record)
        && let Some((recorded_source, sha256)) = recorded.split_once('\n')
        && recorded_source == source
        && zip_path.is_file()
    {
        return Ok(sha256.trim().to_owned());
    }
    if let Some(dir) = zip_path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let bytes =
        deployable_binary(binary, &zip_path.with_extension("zip.stripped")).map_err(unreadable)?;
    let mut buffer = std::io::Cursor::new(Vec::new());
    {
        let mut zip = ZipWriter::new(&mut buffer);
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .compression_level(Some(1))
            .last_modified_time(DateTime::default())
            .unix_permissions(0o755);
        zip.start_file("bootstrap", options)
            .map_err(|e| HarnessError::Build(e.to_string()))?;
        zip.write_all(&bytes)?;
        zip.finish()
            .map_err(|e| HarnessError::Build(e.to_string()))?;
    }
    let data = buffer.into_inner();
    let tmp = zip_path.with_extension("zip.tmp");
    std::fs::write(&tmp, &data)?;
    std::fs::rename(&tmp, zip_path)?;
    let sha256 = hex::encode(Sha256::digest(&data));
    std::fs::write(&record, format!("{source}\n{sha256}\n"))?;
    Ok(sha256)
}

/// How [`zip_bootstrap`] packages a binary; part of each zip's cache record,
/// so a zip made another way is remade.
const PACKAGING: &str = "strip-all";

/// The bytes of `binary` as a deployed lambda needs them: a copy (written to
/// `scratch`, then removed) without the symbol table and debug info, as the
/// release profile's `strip = true` ships it. A dev build's debug info and
/// symbols are two fifths of its size, and LocalStack copies, hashes and
/// unzips every byte of a function's code several times over when it creates
/// one. The lambdas print no backtraces (the shim starts them with only their
/// function's environment, so no `RUST_BACKTRACE`), so nothing they log
/// changes. Cargo's own binary is never touched. A `bootstrap` that `strip`
/// cannot read (a script), or no `strip` at all: the file goes in as it is,
/// with a warning.
fn deployable_binary(binary: &Path, scratch: &Path) -> std::io::Result<Vec<u8>> {
    let stripped = Command::new("strip")
        .arg("--strip-all")
        .arg("-o")
        .arg(scratch)
        .arg(binary)
        .stdin(Stdio::null())
        .output();
    let bytes = match stripped {
        Ok(out) if out.status.success() => std::fs::read(scratch),
        Ok(out) => {
            tracing::warn!(
                binary = %binary.display(),
                reason = %String::from_utf8_lossy(&out.stderr).trim(),
                "strip could not strip the lambda binary; zipping it with its debug info"
            );
            std::fs::read(binary)
        }
        Err(err) => {
            tracing::warn!(
                binary = %binary.display(),
                %err,
                "cannot run strip (binutils); zipping the lambda binary with its debug info"
            );
            std::fs::read(binary)
        }
    };
    let _ = std::fs::remove_file(scratch);
    bytes
}

#[cfg(test)]
mod tests {
    use std::{io::Read, os::unix::fs::PermissionsExt};

    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case::manifest_dir("CARGO_MANIFEST_DIR", true)]
    #[case::package_name("CARGO_PKG_NAME", true)]
    #[case::package_version("CARGO_PKG_VERSION_MAJOR", true)]
    #[case::test_tmpdir("CARGO_TARGET_TMPDIR", true)]
    #[case::users_target_dir("CARGO_TARGET_DIR", false)]
    #[case::users_cargo_home("CARGO_HOME", false)]
    #[case::cargo_binary("CARGO", false)]
    #[case::users_profile("CARGO_PROFILE_DEV_DEBUG", false)]
    fn only_the_running_packages_own_variables_are_dropped(
        #[case] name: &str,
        #[case] dropped: bool,
    ) {
        assert_eq!(describes_running_package(name), dropped);
    }

    #[test]
    fn the_zip_holds_an_executable_bootstrap_and_is_reproducible() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("alert-callee");
        std::fs::write(&binary, b"\x7fELF not really").unwrap();
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o644)).unwrap();
        let zip_path = dir.path().join("out/alert-callee/bootstrap.zip");

        let first = zip_bootstrap(&binary, &zip_path).unwrap();
        let elsewhere = zip_bootstrap(&binary, &dir.path().join("other/bootstrap.zip")).unwrap();

        assert_eq!(first, elsewhere, "same binary, same zip");
        assert_eq!(
            hex::encode(Sha256::digest(std::fs::read(&zip_path).unwrap())),
            first
        );
        let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
        assert_eq!(archive.len(), 1);
        let mut entry = archive.by_name("bootstrap").unwrap();
        assert_eq!(entry.unix_mode().map(|m| m & 0o777), Some(0o755));
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        assert_eq!(content, b"\x7fELF not really");
    }

    #[test]
    fn a_zip_is_remade_only_when_its_binary_changes() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("alert-callee");
        std::fs::write(&binary, b"version one").unwrap();
        let zip_path = dir.path().join("bootstrap.zip");
        let first = zip_bootstrap(&binary, &zip_path).unwrap();
        let made = std::fs::metadata(&zip_path).unwrap().modified().unwrap();

        let again = zip_bootstrap(&binary, &zip_path).unwrap();
        assert_eq!(again, first);
        assert_eq!(
            std::fs::metadata(&zip_path).unwrap().modified().unwrap(),
            made,
            "an unchanged binary reuses its zip"
        );

        std::fs::write(&binary, b"version two, longer").unwrap();
        let changed = zip_bootstrap(&binary, &zip_path).unwrap();
        assert_ne!(changed, first, "a changed binary makes a new zip");
        let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
        let mut content = Vec::new();
        archive
            .by_name("bootstrap")
            .unwrap()
            .read_to_end(&mut content)
            .unwrap();
        assert_eq!(content, b"version two, longer");
    }

    #[test]
    fn the_zipped_binary_is_a_stripped_copy_that_still_runs() {
        // This test's own executable: an ELF with a symbol table and line tables.
        let binary = std::env::current_exe().unwrap();
        let before = std::fs::metadata(&binary).unwrap();
        let dir = tempfile::tempdir().unwrap();

        let bytes = deployable_binary(&binary, &dir.path().join("scratch")).unwrap();

        assert!(bytes.starts_with(b"\x7fELF"));
        assert!(
            (bytes.len() as u64) < before.len() * 9 / 10,
            "stripped {} of {} bytes",
            bytes.len(),
            before.len()
        );
        let after = std::fs::metadata(&binary).unwrap();
        assert_eq!(
            (after.len(), after.modified().unwrap()),
            (before.len(), before.modified().unwrap()),
            "cargo's binary is left as it was"
        );
        assert!(
            !dir.path().join("scratch").exists(),
            "the scratch copy is gone"
        );
        let copy = dir.path().join("stripped");
        std::fs::write(&copy, &bytes).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        let listed = Command::new(&copy)
            .args([
                "--list",
                "--exact",
                "package::tests::a_missing_binary_is_named",
            ])
            .output()
            .unwrap();
        assert!(listed.status.success(), "{listed:?}");
        assert!(
            String::from_utf8_lossy(&listed.stdout).contains("a_missing_binary_is_named"),
            "{listed:?}"
        );
    }

    #[test]
    fn a_missing_binary_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = zip_bootstrap(&dir.path().join("nope"), &dir.path().join("x.zip")).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
