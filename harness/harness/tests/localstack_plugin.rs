//! The LocalStack executor plugin's own unit tests (Python's unittest, in
//! `harness/localstack-plugin/tests`), run with the interpreter of the venv the
//! harness runs LocalStack in, so `cargo test --workspace` covers them too.

use std::process::Command;

use harness::emulator::venv;

#[test]
fn the_executor_plugins_python_tests_pass_in_the_localstack_venv() {
    // The same venv `up` uses: built once under a lock, shared with every test.
    let venv = venv::ensure(true).expect("the LocalStack venv");
    let plugin = venv::plugin_dir();
    let output = Command::new(venv.python())
        .args(["-m", "unittest", "discover", "-s"])
        .arg(plugin.join("tests"))
        .arg("-t")
        .arg(&plugin)
        .output()
        .expect("run python -m unittest");
    let report = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the plugin's Python tests failed:\n{report}"
    );
    // unittest reports "Ran N tests"; zero found would pass vacuously.
    assert!(
        !report.contains("Ran 0 tests"),
        "no Python tests were found under {}:\n{report}",
        plugin.join("tests").display()
    );
}
