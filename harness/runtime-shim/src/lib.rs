//! Runs one AWS Lambda function's `bootstrap` as a native process for LocalStack.
//!
//! The shim speaks LocalStack's executor protocol on one side (`POST /invoke`
//! in, status and result callbacks out, or the result in the answer to
//! `/invoke` when the harness's plugin asks: see [`executor`]) and the Lambda
//! Runtime API on the other,
//! like the `init` binary LocalStack puts into its Lambda containers.
#![warn(missing_docs)]

pub mod bootstrap;
pub mod callback;
pub mod config;
pub mod error;
pub mod executor;
pub mod faults;
pub mod http;
pub mod logs;
pub mod protocol;
pub mod runtime_api;
pub mod sandbox;

use std::{future::Future, net::SocketAddr, sync::Arc};

use tokio::sync::mpsc;
use tracing::warn;

use crate::{callback::Callback, sandbox::Sandbox};
pub use crate::{config::Config, error::ShimError};

/// Invocations LocalStack may queue before the shim takes them (it sends one at a time).
const INVOKE_QUEUE: usize = 8;

/// Runs the environment until `shutdown` resolves or the init fails.
///
/// `announce` receives the executor-side address once it is bound, before the
/// bootstrap starts. Whatever the exit path, the bootstrap is killed before
/// this returns.
pub async fn run(
    config: Config,
    announce: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()>,
) -> Result<(), ShimError> {
    let listener = http::bind(config.listen).await?;
    let addr = listener.local_addr().map_err(|source| ShimError::Bind {
        addr: config.listen.to_string(),
        source,
    })?;
    announce(addr);

    let callback = Callback::new(&config);
    let (invoke_tx, mut invoke_rx) = mpsc::channel(INVOKE_QUEUE);
    let server = tokio::spawn(http::serve(listener, Arc::new(invoke_tx), executor::handle));
    let timeout = config.timeout;
    let mut sandbox = Sandbox::new(config);

    let result = {
        let work = async {
            if let Err(failure) = sandbox.init(None).await {
                let output = sandbox.take_output();
                let payload = failure.payload(None, timeout);
                let message = String::from_utf8_lossy(&payload).into_owned();
                warn!(
                    error = %message,
                    output = %String::from_utf8_lossy(tail(&output, 4096)),
                    "function init failed"
                );
                callback.status_error(payload).await?;
                return Err(ShimError::InitFailed { message });
            }
            callback.status_ready().await?;
            while let Some(executor::Queued { request, answer }) = invoke_rx.recv().await {
                let finished = sandbox.invoke(request).await;
                match answer {
                    Some(answer) => {
                        if answer.send(finished).is_err() {
                            warn!("the executor stopped waiting for an inline result");
                        }
                    }
                    None => finished.post(&callback).await,
                }
            }
            Ok(())
        };
        tokio::select! {
            result = work => result,
            () = shutdown => Ok(()),
        }
    };
    sandbox.discard().await;
    server.abort();
    result
}

fn tail(bytes: &[u8], max: usize) -> &[u8] {
    &bytes[bytes.len().saturating_sub(max)..]
}
