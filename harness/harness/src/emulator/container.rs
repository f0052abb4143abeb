//! The `container` backend: LocalStack through testcontainers, for machines
//! with a Docker engine.
//!
//! With the IAM gateway on, the container runs the harness's executor plugin,
//! as the host backend does: the plugin is mounted on the image's
//! `PYTHONPATH` and the runtime shim beside it, the functions run as processes
//! inside the container, and the harness attaches the executor to its gateway
//! ([`super::attach`]) as it attaches an external emulator, so every call the
//! lambdas make reaches the gateway at [`HOST_ALIAS`]. The zips and the shim
//! are this host's Linux builds, which must run on the image's glibc.
//!
//! With `--iam off`, the container is LocalStack as shipped: it runs the
//! lambdas in sibling containers through the Docker socket, so the zips must
//! hold builds for Lambda's image (`just package-linux`).

use std::path::{Path, PathBuf};

use testcontainers::{
    ContainerAsync, ContainerRequest, ImageExt,
    core::{AccessMode, Host, Mount},
    runners::AsyncRunner,
};
use testcontainers_modules::localstack::LocalStack;

use super::host::SERVICES;
use crate::error::HarnessError;

/// The default image: the LocalStack the host backend runs (4.8.1), which the
/// executor plugin is tested against; it starts without an auth token.
pub const DEFAULT_IMAGE: &str = "localstack/localstack:4.8.1";

/// The name under which the container reaches this host (Docker's
/// `host-gateway`): the gateway and the SMTP relay, for the lambdas.
pub const HOST_ALIAS: &str = "host.docker.internal";

const DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// Where the plugin and the shim are mounted in the container.
const PLUGIN_MOUNT: &str = "/opt/harness/python";
const SHIM_MOUNT: &str = "/opt/harness/runtime-shim";

/// The harness's executor plugin in the container.
#[derive(Debug, Clone)]
pub struct ContainerPlugin {
    /// The plugin installed on its own ([`super::venv::plugin_tree`]).
    pub python_dir: PathBuf,
    /// The runtime shim, built for this host.
    pub runtime_shim: PathBuf,
}

/// A running LocalStack container; dropping it removes the container.
pub struct ContainerEmulator {
    _container: ContainerAsync<LocalStack>,
}

impl std::fmt::Debug for ContainerEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContainerEmulator")
    }
}

/// Says why no Docker engine can be used, or `Ok` when one might be.
///
/// A `DOCKER_HOST` is trusted as given; otherwise the default socket must exist.
pub fn docker_available(docker_host: Option<&str>, socket: &Path) -> Result<(), String> {
    match docker_host {
        Some(host) if !host.is_empty() => Ok(()),
        _ if socket.exists() => Ok(()),
        _ => Err(format!(
            "DOCKER_HOST is not set and {} does not exist",
            socket.display()
        )),
    }
}

/// Splits `repo:tag` (the tag defaults to `latest`).
pub fn split_image(image: &str) -> (&str, &str) {
    match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, tag),
        _ => (image, "latest"),
    }
}

/// The container request: pinned tag, services, auth token passthrough, and
/// either the harness's executor plugin or the Docker socket LocalStack's own
/// executor needs.
pub fn request(
    image: &str,
    auth_token: Option<&str>,
    plugin: Option<&ContainerPlugin>,
) -> ContainerRequest<LocalStack> {
    let (_, tag) = split_image(image);
    let mut request = LocalStack::default()
        .with_tag(tag)
        .with_env_var("SERVICES", SERVICES)
        .with_env_var("EAGER_SERVICE_LOADING", "1")
        .with_env_var(super::RETRY_BASE_DELAY_ENV, super::retry_base_delay_secs());
    request = match plugin {
        Some(plugin) => {
            let read_only = |from: &Path, to: &str| {
                Mount::bind_mount(from.to_string_lossy(), to).with_access_mode(AccessMode::ReadOnly)
            };
            request
                .with_mount(read_only(&plugin.python_dir, PLUGIN_MOUNT))
                .with_mount(read_only(&plugin.runtime_shim, SHIM_MOUNT))
                // The plugin's entry points are found on the path like an installed package's.
                .with_env_var("PYTHONPATH", PLUGIN_MOUNT)
                .with_env_var(super::EXECUTOR_ENV, super::EXECUTOR)
                .with_env_var(super::SHIM_ENV, SHIM_MOUNT)
                .with_env_var(super::CFN_POLL_ENV, super::CFN_POLL_SECONDS)
                .with_host(HOST_ALIAS, Host::HostGateway)
        }
        None => request.with_mount(Mount::bind_mount(DOCKER_SOCKET, DOCKER_SOCKET)),
    };
    if let Some(token) = auth_token.filter(|t| !t.is_empty()) {
        request = request.with_env_var("LOCALSTACK_AUTH_TOKEN", token);
    }
    request
}

impl ContainerEmulator {
    /// Starts the container (with the executor plugin, when given) and
    /// returns it with its gateway endpoint.
    pub async fn start(
        image: &str,
        plugin: Option<&ContainerPlugin>,
    ) -> Result<(Self, String), HarnessError> {
        docker_available(
            std::env::var("DOCKER_HOST").ok().as_deref(),
            Path::new(DOCKER_SOCKET),
        )
        .map_err(HarnessError::DockerUnavailable)?;
        if let Some(plugin) = plugin.filter(|p| !p.runtime_shim.is_file()) {
            return Err(HarnessError::Build(format!(
                "the runtime shim {} does not exist",
                plugin.runtime_shim.display()
            )));
        }
        let (name, _) = split_image(image);
        if name != "localstack/localstack" {
            return Err(HarnessError::EmulatorStart(format!(
                "the container backend runs localstack/localstack images, not {name}"
            )));
        }
        let token = std::env::var("LOCALSTACK_AUTH_TOKEN").ok();
        let container = request(image, token.as_deref(), plugin)
            .start()
            .await
            .map_err(|e| HarnessError::DockerUnavailable(e.to_string()))?;
        let host = container
            .get_host()
            .await
            .map_err(|e| HarnessError::EmulatorStart(e.to_string()))?;
        let port = container
            .get_host_port_ipv4(4566)
            .await
            .map_err(|e| HarnessError::EmulatorStart(e.to_string()))?;
        Ok((
            Self {
                _container: container,
            },
            format!("http://{host}:{port}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::tag_given("localstack/localstack:4.14.0", ("localstack/localstack", "4.14.0"))]
    #[case::tag_missing("localstack/localstack", ("localstack/localstack", "latest"))]
    #[case::registry_port_is_not_a_tag("registry:5000/localstack/localstack", ("registry:5000/localstack/localstack", "latest"))]
    fn image_references_split(#[case] image: &str, #[case] expected: (&str, &str)) {
        assert_eq!(split_image(image), expected);
    }

    #[test]
    fn the_default_image_is_the_localstack_the_host_backend_runs() {
        let request = request(DEFAULT_IMAGE, None, None);
        assert_eq!(request.descriptor(), "localstack/localstack:4.8.1");
        assert!(
            super::super::venv::CONSTRAINTS
                .lines()
                .any(|l| l.trim() == "localstack-core==4.8.1")
        );
    }

    fn env_of(request: &ContainerRequest<LocalStack>) -> Vec<(String, String)> {
        request
            .env_vars()
            .map(|(k, v)| (k.into(), v.into()))
            .collect()
    }

    #[test]
    fn with_the_plugin_the_container_runs_the_harness_executor_and_reaches_this_host() {
        let plugin = ContainerPlugin {
            python_dir: PathBuf::from("/cache/executor-plugin-abc"),
            runtime_shim: PathBuf::from("/work/target/debug/runtime-shim"),
        };
        let with = request(DEFAULT_IMAGE, None, Some(&plugin));
        let env = env_of(&with);
        for expected in [
            ("PYTHONPATH", "/opt/harness/python"),
            ("LAMBDA_RUNTIME_EXECUTOR", "native"),
            ("HARNESS_RUNTIME_SHIM", "/opt/harness/runtime-shim"),
        ] {
            assert!(
                env.contains(&(expected.0.into(), expected.1.into())),
                "{expected:?} missing from {env:?}"
            );
        }
        let mounts: Vec<(Option<&str>, Option<&str>, bool)> = with
            .mounts()
            .map(|m| {
                (
                    m.source(),
                    m.target(),
                    matches!(m.access_mode(), AccessMode::ReadOnly),
                )
            })
            .collect();
        assert_eq!(
            mounts,
            [
                (
                    Some("/cache/executor-plugin-abc"),
                    Some("/opt/harness/python"),
                    true
                ),
                (
                    Some("/work/target/debug/runtime-shim"),
                    Some("/opt/harness/runtime-shim"),
                    true
                ),
            ],
            "the plugin and the shim, read-only, and no Docker socket"
        );
        let hosts: Vec<(String, String)> = with
            .hosts()
            .map(|(name, host)| (name.into_owned(), host.to_string()))
            .collect();
        assert_eq!(
            hosts,
            [("host.docker.internal".to_owned(), "host-gateway".to_owned())]
        );
    }

    #[test]
    fn the_request_mounts_the_socket_and_passes_the_token() {
        let with = request(DEFAULT_IMAGE, Some("ls-token"), None);
        let env = env_of(&with);
        assert!(env.contains(&("LOCALSTACK_AUTH_TOKEN".into(), "ls-token".into())));
        assert!(env.contains(&("SERVICES".into(), SERVICES.into())));
        assert!(
            with.mounts()
                .any(|m| m.target() == Some(DOCKER_SOCKET) && m.source() == Some(DOCKER_SOCKET))
        );

        let without = request(DEFAULT_IMAGE, None, None);
        assert!(
            !without
                .env_vars()
                .any(|(k, _)| k == "LOCALSTACK_AUTH_TOKEN")
        );
    }

    #[rstest]
    #[case::docker_host_set(Some("tcp://10.0.0.1:2375"), "/nonexistent.sock", true)]
    #[case::socket_present(None, "/", true)]
    #[case::nothing(None, "/nonexistent/docker.sock", false)]
    #[case::empty_docker_host(Some(""), "/nonexistent/docker.sock", false)]
    fn docker_detection(#[case] host: Option<&str>, #[case] socket: &str, #[case] ok: bool) {
        assert_eq!(docker_available(host, Path::new(socket)).is_ok(), ok);
    }

    /// The live test: starts the real container where Docker exists, and
    /// skips with a printed reason where it does not.
    #[tokio::test]
    async fn live_container_reaches_ready() {
        if let Err(reason) = docker_available(
            std::env::var("DOCKER_HOST").ok().as_deref(),
            Path::new(DOCKER_SOCKET),
        ) {
            eprintln!("skipped: no Docker engine on this machine ({reason})");
            return;
        }
        let (_emulator, endpoint) = match ContainerEmulator::start(DEFAULT_IMAGE, None).await {
            Ok(started) => started,
            Err(HarnessError::DockerUnavailable(reason)) => {
                eprintln!("skipped: the Docker engine did not answer ({reason})");
                return;
            }
            Err(other) => panic!("{other}"),
        };
        let health = reqwest::get(format!("{endpoint}/_localstack/health"))
            .await
            .unwrap();
        assert!(health.status().is_success());
    }
}
