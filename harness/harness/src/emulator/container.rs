//! The `container` backend: LocalStack through testcontainers, for machines
//! with a Docker engine. LocalStack then runs the lambdas itself in sibling
//! containers, so the zips must hold Linux builds (`just package-linux`).

use std::path::Path;

use testcontainers::{
    ContainerAsync, ContainerRequest, ImageExt, core::Mount, runners::AsyncRunner,
};
use testcontainers_modules::localstack::LocalStack;

use super::host::SERVICES;
use crate::error::HarnessError;

/// The default image: the last tag that starts without an auth token.
pub const DEFAULT_IMAGE: &str = "localstack/localstack:4.14.0";

const DOCKER_SOCKET: &str = "/var/run/docker.sock";

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

/// The container request: pinned tag, services, Docker socket, auth token passthrough.
pub fn request(image: &str, auth_token: Option<&str>) -> ContainerRequest<LocalStack> {
    let (_, tag) = split_image(image);
    let mut request = LocalStack::default()
        .with_tag(tag)
        .with_env_var("SERVICES", SERVICES)
        .with_env_var("EAGER_SERVICE_LOADING", "1")
        .with_env_var(super::RETRY_BASE_DELAY_ENV, super::retry_base_delay_secs())
        .with_mount(Mount::bind_mount(DOCKER_SOCKET, DOCKER_SOCKET));
    if let Some(token) = auth_token.filter(|t| !t.is_empty()) {
        request = request.with_env_var("LOCALSTACK_AUTH_TOKEN", token);
    }
    request
}

impl ContainerEmulator {
    /// Starts the container and returns it with its gateway endpoint.
    pub async fn start(image: &str) -> Result<(Self, String), HarnessError> {
        docker_available(
            std::env::var("DOCKER_HOST").ok().as_deref(),
            Path::new(DOCKER_SOCKET),
        )
        .map_err(HarnessError::DockerUnavailable)?;
        let (name, _) = split_image(image);
        if name != "localstack/localstack" {
            return Err(HarnessError::EmulatorStart(format!(
                "the container backend runs localstack/localstack images, not {name}"
            )));
        }
        let token = std::env::var("LOCALSTACK_AUTH_TOKEN").ok();
        let container = request(image, token.as_deref())
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
    fn the_default_image_is_the_last_tokenless_tag() {
        let request = request(DEFAULT_IMAGE, None);
        assert_eq!(request.descriptor(), "localstack/localstack:4.14.0");
    }

    #[test]
    fn the_request_mounts_the_socket_and_passes_the_token() {
        let with = request(DEFAULT_IMAGE, Some("ls-token"));
        let env: Vec<(String, String)> =
            with.env_vars().map(|(k, v)| (k.into(), v.into())).collect();
        assert!(env.contains(&("LOCALSTACK_AUTH_TOKEN".into(), "ls-token".into())));
        assert!(env.contains(&("SERVICES".into(), SERVICES.into())));
        assert!(
            with.mounts()
                .any(|m| m.target() == Some(DOCKER_SOCKET) && m.source() == Some(DOCKER_SOCKET))
        );

        let without = request(DEFAULT_IMAGE, None);
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
        let (_emulator, endpoint) = match ContainerEmulator::start(DEFAULT_IMAGE).await {
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
