//! The mail viewer in a real headless Chromium, used as a person would: the
//! page is open while an alert goes through the whole chain (caller, STS,
//! callee, SMTP); its row appears without a reload; opened, it shows the
//! rendered HTML and each hop's IAM decision and both lambdas' logs. A call
//! the gateway denies shows up with its denial. The screenshot lands in
//! `<target>/harness/viewer.png`.
//!
//! Chromium is started here, with a fresh profile, and driven over the
//! DevTools protocol by `tests/browser/viewer.mjs` (puppeteer-core). Without
//! a `chromium` (or `HARNESS_CHROMIUM`) or `node`, the test says so and skips.

mod support;

use std::{
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use harness::{
    observe::{Call, EmailWait},
    suite::{self, SuiteTarget},
};
use nix::{sys::signal::Signal, unistd::Pid};
use scenario::{InvocationType, OutcomeStatus, Via};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};

/// How long the page gets for anything it should show.
const PAGE_TIMEOUT: Duration = Duration::from_secs(60);

/// The Chromium to drive: `HARNESS_CHROMIUM`, else the first on `PATH`.
fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("HARNESS_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| {
            ["chromium", "chromium-browser", "google-chrome"].map(|name| dir.join(name))
        })
        .find(|candidate| candidate.is_file())
}

/// A headless Chromium in its own process group, with a throwaway profile;
/// dropping it kills the whole group (browser, zygote, renderers).
struct Browser {
    child: Child,
    profile: tempfile::TempDir,
}

impl Browser {
    fn launch(binary: &Path) -> Self {
        let profile = tempfile::tempdir().expect("a profile directory");
        let log = std::fs::File::create(profile.path().join("chromium.log")).expect("a log file");
        let child = Command::new(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", binary.display()));
        Self { child, profile }
    }

    /// The browser's DevTools WebSocket, from the `DevToolsActivePort` file
    /// Chromium writes into its profile once it listens.
    fn endpoint(&mut self) -> String {
        let file = self.profile.path().join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(text) = std::fs::read_to_string(&file)
                && let [port, path, ..] = text.lines().collect::<Vec<_>>()[..]
            {
                return format!("ws://127.0.0.1:{port}{path}");
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "chromium exited ({status}) before listening:\n{}",
                    std::fs::read_to_string(self.profile.path().join("chromium.log"))
                        .unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "chromium wrote no DevToolsActivePort in 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let group = Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(group, Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// `viewer.mjs`: commands in, one JSON report per command out. Killed on drop.
struct Driver {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    reports: Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Driver {
    fn spawn(project: &Path, endpoint: &str, url: &str, screenshot: &Path) -> Self {
        let mut child = tokio::process::Command::new("node")
            .arg(project.join("viewer.mjs"))
            .args([endpoint, url])
            .arg(screenshot)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts");
        let stdin = child.stdin.take().expect("stdin");
        let reports = BufReader::new(child.stdout.take().expect("stdout")).lines();
        Self {
            child,
            stdin,
            reports,
        }
    }

    async fn next(&mut self, expected: &str) -> Value {
        let line = tokio::time::timeout(PAGE_TIMEOUT, self.reports.next_line())
            .await
            .unwrap_or_else(|_| panic!("the page showed no {expected} within {PAGE_TIMEOUT:?}"))
            .expect("the driver's output")
            .unwrap_or_else(|| panic!("the driver ended before reporting {expected}"));
        let report: Value = serde_json::from_str(&line).expect("a JSON report");
        assert_eq!(report["event"], expected, "{report:#}");
        report
    }

    async fn ask(&mut self, command: Value, expected: &str) -> Value {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .expect("the driver reads");
        self.next(expected).await
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[test]
fn the_viewer_shows_emails_and_calls_live_in_a_real_browser() {
    let Some(chromium) = chromium() else {
        eprintln!(
            "skipped: no chromium on PATH and no HARNESS_CHROMIUM (Debian: apt-get install chromium)"
        );
        return;
    };
    let Some(project) = support::node_project("browser") else {
        return;
    };
    let running = support::Running::up("viewer-browser");
    let system = running.system();
    let mut browser = Browser::launch(&chromium);
    let endpoint = browser.endpoint();
    let screenshot = harness::workspace::default_work_dir().join("viewer.png");
    std::fs::create_dir_all(screenshot.parent().expect("a parent")).expect("the work dir");
    let _ = std::fs::remove_file(&screenshot);

    running.block_on(async {
        let mut page = Driver::spawn(&project, &endpoint, &running.viewer_url(), &screenshot);
        let ready = page.next("ready").await;
        assert!(
            ready["rows"].as_u64() >= Some(1),
            "the warm-up email is listed when the page opens: {ready}"
        );

        // An alert through the whole chain while the page is open.
        let payload = support::alert(
            "INC0020101",
            "Viewer check: disk <b>full</b> on db-7",
            "The volume /var on db-7 is at 99%.",
            "oncall@example.com",
        );
        let call = Call::new(Via::Caller, payload, InvocationType::RequestResponse);
        let trace = call.trace.root().to_owned();
        let observed = system
            .call(
                call,
                EmailWait {
                    at_least: 1,
                    within: Duration::from_secs(10),
                },
            )
            .await
            .expect("the call is observed");
        // A warm caller reuses the role it assumed for an earlier call.
        let assumed_now = observed
            .requests
            .iter()
            .any(|r| r.action == "sts:AssumeRole");
        let sent = observed.outcome;
        assert_eq!(sent.status, OutcomeStatus::Success, "{sent:?}");
        assert_eq!(sent.emails.len(), 1, "{sent:?}");
        let email = &sent.emails[0];

        let shown = page.ask(json!({ "open_email": trace }), "email").await;
        assert_eq!(shown["sameDocument"], true, "the row came without a reload");
        let cells = strings(&shown["row"]);
        assert_eq!(cells[1], "alerts@example.com", "{cells:?}");
        assert_eq!(cells[2], "oncall@example.com", "{cells:?}");
        assert!(
            cells[3].contains("disk <b>full</b> on db-7"),
            "mail text is shown as text, not markup: {cells:?}"
        );
        assert_eq!(cells[4], trace, "an unscripted call is named by its trace");
        assert_eq!(shown["message"]["subject"], email.subject.as_str());
        assert_eq!(
            shown["message"]["sandbox"], "",
            "the HTML frame is fully sandboxed"
        );
        let frame = &shown["frame"];
        assert!(
            frame["text"]
                .as_str()
                .is_some_and(|t| t.contains("The volume /var on db-7 is at 99%.")),
            "the HTML part is rendered in the frame: {frame}"
        );
        let tags = strings(&frame["tags"]);
        assert!(
            tags.contains(&"h1") && tags.contains(&"table"),
            "the frame holds the email's markup, rendered: {tags:?}"
        );
        assert!(
            shown["message"]["text"]
                .as_str()
                .is_some_and(|t| t.contains("The volume /var on db-7 is at 99%.")),
            "{shown:#}"
        );
        assert!(
            shown["message"]["source"]
                .as_str()
                .is_some_and(|s| s.contains(&format!("Root={trace}"))),
            "the raw source carries the trace header"
        );
        assert!(
            shown["message"]["headers"]
                .as_array()
                .is_some_and(|h| h.iter().any(|kv| kv[0] == "X-Amzn-Trace-Id")),
            "{shown:#}"
        );
        let steps: Vec<(&str, &str)> = shown["hops"]
            .as_array()
            .expect("hops")
            .iter()
            .map(|h| {
                (
                    h["step"].as_str().unwrap_or_default(),
                    h["decision"].as_str().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            steps,
            [
                ("client", ""),
                ("lambda:InvokeFunction", "allow"),
                ("caller", ""),
                ("sts:AssumeRole", if assumed_now { "allow" } else { "" }),
                ("lambda:InvokeFunction", "allow"),
                ("callee", ""),
                ("SMTP", "")
            ]
        );
        let invoke = shown["hops"][4]["text"].as_str().unwrap_or_default();
        assert!(
            invoke.contains(" policy ") && invoke.contains(", statement "),
            "the deciding statements are shown: {invoke}"
        );
        let assume = shown["hops"][3]["text"].as_str().unwrap_or_default();
        if assumed_now {
            assert!(assume.contains("trust policy"), "{assume}");
        } else {
            assert!(assume.contains("reused credentials"), "{assume}");
        }
        let deployment = &system.running.deployment;
        for lambda in [
            &deployment.caller_function_name,
            &deployment.callee_function_name,
        ] {
            let log = shown["logs"][lambda.as_str()].as_str().unwrap_or_else(|| {
                panic!(
                    "no log lines of {lambda}: {} / {}",
                    shown["logs"], shown["logsError"]
                )
            });
            assert!(log.contains(&trace), "{lambda}'s lines of this call: {log}");
        }

        // A call the gateway denies: the caller's role may not assume the target role.
        let scenarios = suite::load(
            &[harness::workspace::scenarios_dir().join("iam/caller-lacks-assume-role.yaml")],
            &scenario::Filter::default(),
        )
        .expect("the scenario loads");
        let run = suite::run_suite(&SuiteTarget::of(system), &scenarios, 1, |_, _| {}).await;
        run.write_reports(
            &scenarios,
            &harness::workspace::reports_dir(&running.work_dir),
            None,
        )
        .expect("the reports are written");
        let denied = &run.finished[0].outcome;
        assert_eq!(denied.status, OutcomeStatus::Denied, "{denied:?}");
        let denied_trace = denied.trace_id.as_ref().expect("a trace").root().to_owned();

        let shown = page
            .ask(json!({ "open_denied": denied_trace }), "denied")
            .await;
        assert_eq!(shown["sameDocument"], true, "the row came without a reload");
        assert_eq!(shown["messageShown"], false, "a denied call has no email");
        let denial = shown["denial"].as_str().unwrap_or_default();
        assert!(denial.starts_with("Denied: DENY"), "{denial}");
        assert_eq!(
            shown["scenario"],
            format!("scenario: {}", scenarios[0].name),
            "the scenario report names the call"
        );
        let hops: Vec<(&str, &str)> = shown["hops"]
            .as_array()
            .expect("hops")
            .iter()
            .map(|h| {
                (
                    h["step"].as_str().unwrap_or_default(),
                    h["decision"].as_str().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            hops,
            [
                ("client", ""),
                ("lambda:InvokeFunction", "allow"),
                ("caller", ""),
                ("sts:AssumeRole", "deny")
            ],
            "the chain stops at the denial"
        );
        let shot = page.ask(json!({ "screenshot": trace }), "screenshot").await;
        assert_eq!(
            shot["foreignRequests"],
            json!([]),
            "the page loads nothing from elsewhere"
        );
    });
    let png = std::fs::read(&screenshot).expect("the screenshot is saved");
    assert!(
        png.starts_with(b"\x89PNG"),
        "a PNG at {}",
        screenshot.display()
    );
    drop(browser);
}
