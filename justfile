# The menu of routine tasks. `just --list` shows them all.

set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes.
default:
    @just --list

# Start LocalStack, the SMTP capture and both lambdas, deploy the four stacks, stay up until Ctrl-C.
up *ARGS:
    cargo run -p harness -- up {{ARGS}}

# Invoke the running harness with a payload file.
invoke PAYLOAD *ARGS:
    cargo run -q -p harness -- invoke --payload {{PAYLOAD}} {{ARGS}}

# Stop a running `just up`.
down:
    cargo run -q -p harness -- down

# Every test: unit, mailer against a real SMTP server, caller against wiremock, end to end, the viewer in Chromium, and the scenario suite once (as test-e2e runs it).
test:
    cargo test --workspace

# The mail viewer in headless Chromium, and its Mailpit API read by mailpit-api (needs chromium, node, npm).
test-viewer:
    npm ci --silent --no-audit --no-fund --prefix harness/harness/tests/browser
    npm ci --silent --no-audit --no-fund --prefix harness/harness/tests/mailpit-client
    cargo test -p harness --test viewer_browser --test mailpit_client

# Read a running `just up`'s viewer with mailpit-api: list, latest, headers, source, and these searches.
mailpit-client URL="http://127.0.0.1:8025" *QUERIES:
    npm ci --silent --no-audit --no-fund --prefix harness/harness/tests/mailpit-client
    node harness/harness/tests/mailpit-client/client.mjs {{URL}} {{QUERIES}}

# The scenario suite against the whole system, with a JUnit report.
test-e2e *ARGS:
    cargo run -p harness -- run scenarios/ --junit target/harness/junit.xml {{ARGS}}

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

# Lint the four CloudFormation templates.
lint-cfn:
    cfn-lint cloudformation/*.yaml

# Build both lambdas for this host as target/lambda/<crate>/bootstrap.zip.
package:
    cargo run -q -p harness -- package --profile release --out-dir target/lambda

# Cross-build both lambdas for AWS (x86_64 and arm64) with cargo-lambda and zig.
package-linux:
    pip install --quiet cargo-lambda==1.9.2
    cargo lambda build --release --target x86_64-unknown-linux-gnu --output-format zip -p alert-callee -p alert-caller --lambda-dir target/lambda/x86_64
    cargo lambda build --release --target aarch64-unknown-linux-gnu --output-format zip -p alert-callee -p alert-caller --lambda-dir target/lambda/arm64

# Everything CI runs.
ci: lint lint-cfn test

# Measure emulator start, four-stack deploy and the warm chain invoke, without and with the IAM gateway.
bench *ARGS:
    cargo run -q -p harness -- bench --iam off {{ARGS}}
    cargo run -q -p harness -- bench --iam enforce {{ARGS}}

# The callee's direct invoke through the harness, under `cargo lambda watch` (installed from PyPI on first use) and the floor, side by side.
bench-compare *ARGS:
    cargo run -q -p harness -- bench --compare {{ARGS}}

# Cross-check the IAM evaluator's rule table against @cloud-copilot/iam-simulate (needs node and npm).
iam-crosscheck:
    npm ci --silent --prefix harness/iam-policy/crosscheck
    cargo run -q -p iam-policy --example crosscheck
