//! Progress for long steps: a spinner on a terminal, plain lines elsewhere (CI logs).

use std::{
    io::IsTerminal,
    time::{Duration, Instant},
};

use indicatif::{ProgressBar, ProgressStyle};

/// One long step (venv, build, deploy) shown to the user while it runs.
pub struct Step {
    bar: Option<ProgressBar>,
    title: String,
    started: Instant,
    quiet: bool,
}

impl Step {
    /// Starts showing a step. With `quiet` (e.g. `--json`), nothing is printed.
    pub fn start(title: impl Into<String>, quiet: bool) -> Self {
        let title = title.into();
        let bar = if !quiet && std::io::stderr().is_terminal() {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix} {wide_msg:.dim} {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(title.clone());
            bar.enable_steady_tick(Duration::from_millis(120));
            Some(bar)
        } else {
            if !quiet {
                eprintln!("==> {title}");
            }
            None
        };
        Self {
            bar,
            title,
            started: Instant::now(),
            quiet,
        }
    }

    /// Shows the latest detail (e.g. the last line of pip's output).
    pub fn detail(&self, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(message.trim().chars().take(100).collect::<String>());
        }
    }

    /// Ends the step successfully and returns how long it took.
    pub fn done(self) -> Duration {
        let elapsed = self.started.elapsed();
        let line = format!("✓ {} ({:.1} s)", self.title, elapsed.as_secs_f64());
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if !self.quiet {
            eprintln!("{line}");
        }
        elapsed
    }

    /// Ends the step as failed.
    pub fn failed(self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if !self.quiet {
            eprintln!("✗ {}", self.title);
        }
    }
}
