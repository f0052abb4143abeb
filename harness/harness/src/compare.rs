//! `harness bench --compare`: the same direct invoke of the callee (payload
//! in, email out through the harness's SMTP capture) measured three ways in
//! one run: through the harness (gateway and emulator), through cargo-lambda's
//! `watch` emulator as a Rust Lambda developer runs it, and the floor, one
//! loopback HTTP request whose handler makes one SMTP session to the capture,
//! with no lambda at all.
//!
//! cargo-lambda is installed from its registry package (PyPI, the version the
//! justfile's `package-linux` pins) into a venv in the harness's cache
//! directory, never globally. `cargo lambda watch` and everything it starts
//! run in a [`ProcessGroup`] of their own, stopped on every exit path.
//!
//! Both lambdas-under-test send exactly as deployed: STARTTLS required, AUTH
//! with the run's credentials, trusting the run's CA (`SSL_CERT_FILE`), so
//! the SMTP work is the same on every side.

use std::{
    fs::File,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use lettre::{
    address::Envelope,
    transport::smtp::{
        authentication::{Credentials, Mechanism},
        client::{AsyncSmtpConnection, Certificate, CertificateStore, TlsParameters},
        extension::ClientId,
    },
};
use serde::Serialize;

use crate::{
    breakdown::LatencyStats,
    emulator::{
        host::ProcessGroup,
        venv::{self, cache_dir},
    },
    error::HarnessError,
    progress::Step,
    smtp::{MailCapture, SmtpCredentials},
};

/// The cargo-lambda release compared against: the one `just package-linux` pins.
pub const CARGO_LAMBDA_VERSION: &str = "1.9.2";

/// The callee's package and binary, as `cargo lambda watch` names the function.
pub const CALLEE_FUNCTION: &str = "alert-callee";

/// How long `cargo lambda watch` may take to build and start the callee.
const WATCH_START: Duration = Duration::from_secs(600);

/// The three medians and how they compare.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Direct invokes of the callee through the harness (gateway and emulator).
    pub harness_ms: LatencyStats,
    /// The same invokes through `cargo lambda watch`.
    pub cargo_lambda_ms: LatencyStats,
    /// One loopback HTTP request plus one SMTP session to the capture, no lambda.
    pub floor_ms: LatencyStats,
    /// The harness's median over cargo-lambda's.
    pub ratio: f64,
    /// How many invokes each median is of.
    pub iterations: usize,
    /// The cargo-lambda release.
    pub cargo_lambda_version: String,
    /// How the callee reached the capture on every side (`required`: STARTTLS and AUTH).
    pub smtp_tls: String,
}

impl Comparison {
    /// Puts the three sets of samples side by side.
    pub fn of(
        harness: &mut [f64],
        cargo_lambda: &mut [f64],
        floor: &mut [f64],
        smtp_tls: &str,
    ) -> Self {
        let harness_ms = LatencyStats::of(harness);
        let cargo_lambda_ms = LatencyStats::of(cargo_lambda);
        Self {
            ratio: ratio(harness_ms.median, cargo_lambda_ms.median),
            harness_ms,
            cargo_lambda_ms,
            floor_ms: LatencyStats::of(floor),
            iterations: harness.len(),
            cargo_lambda_version: CARGO_LAMBDA_VERSION.to_owned(),
            smtp_tls: smtp_tls.to_owned(),
        }
    }
}

/// `a / b`, or infinity when `b` is not positive.
fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { f64::INFINITY }
}

/// The venv that holds cargo-lambda, under the harness's cache directory.
pub fn cargo_lambda_venv() -> PathBuf {
    cache_dir().join(format!("cargo-lambda-{CARGO_LAMBDA_VERSION}"))
}

/// Installs cargo-lambda from PyPI into [`cargo_lambda_venv`] unless it is
/// there, and returns its `cargo-lambda` binary.
pub fn ensure_cargo_lambda(quiet: bool) -> Result<PathBuf, HarnessError> {
    let root = cargo_lambda_venv();
    let binary = root.join("bin").join("cargo-lambda");
    let failed = |reason: String| HarnessError::Venv {
        path: root.clone(),
        reason,
    };
    std::fs::create_dir_all(cache_dir()).map_err(|e| failed(e.to_string()))?;
    let lock_path = cache_dir().join(format!("cargo-lambda-{CARGO_LAMBDA_VERSION}.lock"));
    let lock = File::create(&lock_path)?;
    // Serialises installs between concurrent harness runs.
    let _lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| failed(format!("cannot lock {}: {e}", lock_path.display())))?;
    let complete = root.join(".complete");
    if complete.exists() && binary.exists() {
        return Ok(binary);
    }
    let step = Step::start(
        format!(
            "installing cargo-lambda {CARGO_LAMBDA_VERSION} from PyPI into {} (first run only)",
            root.display()
        ),
        quiet,
    );
    // Built in place (console scripts record the venv's path) and marked
    // complete only at the end, so an interrupted install is redone.
    let _ = std::fs::remove_dir_all(&root);
    let (python, _) = venv::find_python()?;
    let installed = venv::run_streaming(
        Command::new(&python).arg("-m").arg("venv").arg(&root),
        &step,
    )
    .and_then(|()| {
        venv::run_streaming(
            Command::new(root.join("bin").join("pip"))
                .args(["install", "--disable-pip-version-check", "--quiet"])
                .arg(format!("cargo-lambda=={CARGO_LAMBDA_VERSION}")),
            &step,
        )
    });
    match installed {
        Ok(()) if binary.exists() => {
            File::create(&complete)?;
            step.done();
            Ok(binary)
        }
        Ok(()) => {
            step.failed();
            Err(failed(format!(
                "pip installed cargo-lambda=={CARGO_LAMBDA_VERSION} but {} is missing",
                binary.display()
            )))
        }
        Err(reason) => {
            step.failed();
            Err(failed(format!(
                "installing cargo-lambda=={CARGO_LAMBDA_VERSION} failed: {reason}"
            )))
        }
    }
}

/// How the callee sends under `cargo lambda watch`, as the stacks deploy it.
#[derive(Debug, Clone)]
pub struct CalleeEnv {
    /// `MAIL_FROM`.
    pub mail_from: String,
    /// `ALLOWED_RECIPIENT_DOMAINS`.
    pub allowed_domains: String,
    /// `ALLOWED_INSTANCE_HOSTS`.
    pub allowed_instance_hosts: String,
    /// The capture's address (`SMTP_HOST`, `SMTP_PORT`).
    pub smtp: SocketAddr,
    /// `SMTP_TLS`.
    pub smtp_tls: mailer::TlsMode,
    /// `SMTP_USERNAME`, `SMTP_PASSWORD`.
    pub credentials: Option<SmtpCredentials>,
    /// The CA the callee trusts (`SSL_CERT_FILE`).
    pub ca_file: Option<PathBuf>,
}

impl CalleeEnv {
    /// The variables, as `--env-var` takes them.
    pub fn vars(&self) -> Vec<(String, String)> {
        let mut vars = vec![
            ("MAIL_FROM".to_owned(), self.mail_from.clone()),
            (
                "ALLOWED_RECIPIENT_DOMAINS".to_owned(),
                self.allowed_domains.clone(),
            ),
            (
                "ALLOWED_INSTANCE_HOSTS".to_owned(),
                self.allowed_instance_hosts.clone(),
            ),
            ("SMTP_HOST".to_owned(), self.smtp.ip().to_string()),
            ("SMTP_PORT".to_owned(), self.smtp.port().to_string()),
            ("SMTP_TLS".to_owned(), self.smtp_tls.to_string()),
        ];
        if let Some(credentials) = &self.credentials {
            vars.push(("SMTP_USERNAME".to_owned(), credentials.username.clone()));
            vars.push(("SMTP_PASSWORD".to_owned(), credentials.password.clone()));
        }
        if let Some(ca_file) = &self.ca_file {
            vars.push(("SSL_CERT_FILE".to_owned(), ca_file.display().to_string()));
        }
        vars
    }
}

/// `cargo lambda watch` serving the callee, with everything it started.
#[derive(Debug)]
pub struct CargoLambdaWatch {
    group: ProcessGroup,
    url: String,
    log: PathBuf,
}

impl CargoLambdaWatch {
    /// Starts `cargo lambda watch -p alert-callee` in the workspace on `port`,
    /// building with the cargo `profile` the harness's lambdas use, with the
    /// callee's `env` (passed in the environment, so the SMTP password never
    /// shows in a process listing); its output goes to `log`.
    pub fn start(
        binary: &Path,
        env: &CalleeEnv,
        profile: &str,
        port: u16,
        log: &Path,
    ) -> Result<Self, HarnessError> {
        let out = File::create(log)?;
        let err = out.try_clone()?;
        let bin_dir = binary.parent().unwrap_or(Path::new("."));
        let path = std::env::join_paths(
            std::iter::once(bin_dir.to_path_buf()).chain(
                std::env::var_os("PATH")
                    .iter()
                    .flat_map(std::env::split_paths),
            ),
        )
        .map_err(|e| HarnessError::Config(format!("cannot extend PATH: {e}")))?;
        let mut cmd = Command::new(binary);
        cmd.args(["lambda", "watch", "--package", CALLEE_FUNCTION])
            .args(["--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &port.to_string()])
            // Rebuilding on a file change would time a build, not an invoke.
            .arg("--ignore-changes")
            .args(profile_args(profile))
            .current_dir(crate::workspace::root())
            .env("PATH", path)
            .envs(env.vars())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let group = ProcessGroup::spawn(cmd)
            .map_err(|e| HarnessError::Config(format!("cannot start {}: {e}", binary.display())))?;
        Ok(Self {
            group,
            url: format!(
                "http://127.0.0.1:{port}/2015-03-31/functions/{CALLEE_FUNCTION}/invocations"
            ),
            log: log.to_path_buf(),
        })
    }

    /// The process group `cargo lambda watch` leads.
    pub fn pgid(&self) -> i32 {
        self.group.pgid()
    }

    /// The Lambda Invoke URL of the callee.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Invokes once with `payload` until the callee answers: `cargo lambda
    /// watch` builds and starts the function on its first invoke.
    pub async fn wait_ready(
        &self,
        client: &reqwest::Client,
        payload: &[u8],
    ) -> Result<(), HarnessError> {
        let deadline = Instant::now() + WATCH_START;
        let mut last = String::from("no answer yet");
        while Instant::now() < deadline {
            if let Some(status) = self.group.exited() {
                return Err(self.failure(format!("cargo lambda watch exited ({status})")));
            }
            match client
                .post(&self.url)
                .timeout(WATCH_START)
                .body(payload.to_vec())
                .send()
                .await
            {
                Ok(answer) if answer.status().is_success() => {
                    let text = answer.text().await.unwrap_or_default();
                    if text.contains("errorType") {
                        return Err(self.failure(format!("the callee failed: {text}")));
                    }
                    return Ok(());
                }
                Ok(answer) => last = format!("HTTP {}", answer.status()),
                Err(err) => last = err.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(self.failure(format!(
            "the callee did not answer within {} s ({last})",
            WATCH_START.as_secs()
        )))
    }

    fn failure(&self, what: String) -> HarnessError {
        HarnessError::Config(format!(
            "{what}; last lines of {}:\n{}",
            self.log.display(),
            crate::emulator::host::tail(&self.log, 25)
        ))
    }
}

/// `cargo lambda watch`'s flags for a cargo profile (its default is `dev`).
fn profile_args(profile: &str) -> Vec<String> {
    match profile {
        "dev" | "debug" => Vec::new(),
        "release" => vec!["--release".to_owned()],
        other => vec!["--profile".to_owned(), other.to_owned()],
    }
}

/// Sends `payload` to `url` and returns how long the answer took; an answer
/// that is not a success, or a function error, fails.
pub async fn post_timed(
    client: &reqwest::Client,
    url: &str,
    payload: &[u8],
) -> Result<Duration, HarnessError> {
    let started = Instant::now();
    let answer = client
        .post(url)
        .body(payload.to_vec())
        .send()
        .await
        .map_err(|e| HarnessError::Config(format!("POST {url} failed: {e}")))?;
    let status = answer.status();
    let function_error = answer.headers().contains_key("x-amz-function-error");
    let body = answer
        .bytes()
        .await
        .map_err(|e| HarnessError::Config(format!("POST {url}: the answer broke off: {e}")))?;
    let elapsed = started.elapsed();
    if !status.is_success() || function_error {
        return Err(HarnessError::Config(format!(
            "POST {url} answered {status}: {}",
            String::from_utf8_lossy(&body)
        )));
    }
    Ok(elapsed)
}

/// Waits until the capture holds more than `before` messages.
pub async fn email_arrived(capture: &MailCapture, before: usize) -> Result<(), HarnessError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while capture.messages().len() <= before {
        if Instant::now() > deadline {
            return Err(HarnessError::Smtp(
                "the invoke answered but no email reached the capture within 5 s".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

/// The floor: an HTTP server on loopback whose one route makes one SMTP
/// session to the capture (as the callee's: STARTTLS and AUTH when the run
/// demands them) with a prepared message, and answers when the server took it.
#[derive(Debug)]
pub struct Floor {
    url: String,
    server: tokio::task::JoinHandle<()>,
}

/// What the floor sends, and how.
#[derive(Clone)]
pub struct FloorMail {
    /// The capture's address.
    pub smtp: SocketAddr,
    /// TLS trusting the run's CA, and the credentials to present, when the
    /// run demands STARTTLS and AUTH ([`FloorMail::security`]).
    pub security: Option<(TlsParameters, SmtpCredentials)>,
    /// The envelope.
    pub envelope: Envelope,
    /// The message, as the callee would send it.
    pub message: Arc<Vec<u8>>,
}

impl FloorMail {
    /// TLS for `smtp` trusting only `ca_pem`, with `credentials`: made once,
    /// as the callee's mailer makes its TLS parameters once per process.
    pub fn security(
        smtp: SocketAddr,
        ca_pem: &str,
        credentials: SmtpCredentials,
    ) -> Result<(TlsParameters, SmtpCredentials), HarnessError> {
        let invalid = |e: lettre::transport::smtp::Error| {
            HarnessError::Config(format!("the floor's TLS parameters: {e}"))
        };
        let certificate = Certificate::from_pem(ca_pem.as_bytes()).map_err(invalid)?;
        let tls = TlsParameters::builder(smtp.ip().to_string())
            .certificate_store(CertificateStore::None)
            .add_root_certificate(certificate)
            .build_rustls()
            .map_err(invalid)?;
        Ok((tls, credentials))
    }

    /// One session, made as the callee's mailer makes it (`mailer::Mailer`):
    /// Nagle off, STARTTLS, AUTH, the message, QUIT.
    async fn send(&self) -> Result<(), String> {
        let hello = ClientId::default();
        let stream = tokio::net::TcpStream::connect(self.smtp)
            .await
            .map_err(|e| e.to_string())?;
        // As the mailer: without it the final "." waits for a delayed ACK.
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut connection = AsyncSmtpConnection::connect_with_transport(Box::new(stream), &hello)
            .await
            .map_err(|e| e.to_string())?;
        if let Some((tls, credentials)) = &self.security {
            connection
                .starttls(tls.clone(), &hello)
                .await
                .map_err(|e| e.to_string())?;
            connection
                .auth(
                    &[Mechanism::Plain],
                    &Credentials::new(credentials.username.clone(), credentials.password.clone()),
                )
                .await
                .map_err(|e| e.to_string())?;
        }
        connection
            .send(&self.envelope, &self.message)
            .await
            .map_err(|e| e.to_string())?;
        connection.quit().await.map_err(|e| e.to_string())?;
        Ok(())
    }
}

impl Floor {
    /// Serves the floor's route on a free loopback port.
    pub async fn start(mail: FloorMail) -> Result<Self, HarnessError> {
        use axum::{Router, http::StatusCode, routing::post};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mail = Arc::new(mail);
        let app = Router::new().route(
            "/floor",
            post(move || {
                let mail = Arc::clone(&mail);
                async move {
                    match mail.send().await {
                        Ok(()) => (StatusCode::OK, String::new()),
                        Err(err) => (StatusCode::BAD_GATEWAY, err),
                    }
                }
            }),
        );
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            url: format!("http://{addr}/floor"),
            server,
        })
    }

    /// The route's URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ratio_is_the_harness_over_cargo_lambda() {
        let mut harness = vec![30.0, 10.0, 20.0];
        let mut cargo_lambda = vec![8.0, 12.0, 10.0];
        let mut floor = vec![4.0, 5.0, 6.0];
        let comparison = Comparison::of(&mut harness, &mut cargo_lambda, &mut floor, "required");
        assert_eq!(comparison.harness_ms.median, 20.0);
        assert_eq!(comparison.cargo_lambda_ms.median, 10.0);
        assert_eq!(comparison.floor_ms.median, 5.0);
        assert_eq!(comparison.ratio, 2.0);
        assert_eq!(comparison.iterations, 3);
    }

    #[test]
    fn cargo_lambda_builds_with_the_harness_profile() {
        assert!(profile_args("dev").is_empty());
        assert_eq!(profile_args("release"), ["--release"]);
        assert_eq!(profile_args("bench"), ["--profile", "bench"]);
    }

    #[test]
    fn no_cargo_lambda_samples_is_an_infinite_ratio_not_a_division_by_zero() {
        assert_eq!(ratio(20.0, 0.0), f64::INFINITY);
    }

    #[test]
    fn the_callee_gets_the_deployed_settings_and_the_runs_ca() {
        let env = CalleeEnv {
            mail_from: "Alerts <alerts@example.com>".into(),
            allowed_domains: "example.com".into(),
            allowed_instance_hosts: "example.service-now.com".into(),
            smtp: "127.0.0.1:2526".parse().expect("address"),
            smtp_tls: mailer::TlsMode::Required,
            credentials: Some(SmtpCredentials {
                username: "u".into(),
                password: "p".into(),
            }),
            ca_file: Some(PathBuf::from("/run/ca.pem")),
        };
        let vars: std::collections::BTreeMap<_, _> = env.vars().into_iter().collect();
        assert_eq!(vars["SMTP_HOST"], "127.0.0.1");
        assert_eq!(vars["SMTP_PORT"], "2526");
        assert_eq!(vars["SMTP_TLS"], "required");
        assert_eq!(vars["SMTP_USERNAME"], "u");
        assert_eq!(vars["SMTP_PASSWORD"], "p");
        assert_eq!(vars["SSL_CERT_FILE"], "/run/ca.pem");
        assert_eq!(vars["ALLOWED_RECIPIENT_DOMAINS"], "example.com");
    }
}
