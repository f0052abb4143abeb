//! The one place that prints a command's result: as text for people, or as
//! one JSON object with `--json`.

use std::{fmt, io::Write as _, process::ExitCode};

use serde::Serialize;

/// What a command produced: printable as text or JSON, with its exit status.
pub trait Output: Serialize {
    /// Writes the human-readable form.
    fn text(&self, out: &mut dyn fmt::Write) -> fmt::Result;

    /// The process's exit status for this result.
    fn exit_code(&self) -> ExitCode {
        ExitCode::SUCCESS
    }
}

/// Prints `output` as text, or as one line of JSON, and returns its exit status.
pub fn emit<O: Output>(output: &O, json: bool) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let printed = if json {
        serde_json::to_string(output)
            .map_err(std::io::Error::other)
            .and_then(|line| writeln!(out, "{line}"))
    } else {
        let mut text = String::new();
        output
            .text(&mut text)
            .map_err(std::io::Error::other)
            .and_then(|()| out.write_all(text.as_bytes()))
    };
    // A closed stdout (`| head`) is not the command's failure.
    if let Err(err) = printed
        && err.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("error: cannot write the output: {err}");
        return ExitCode::FAILURE;
    }
    output.exit_code()
}

/// Exit status 0 when `ok`, else 1.
pub fn status(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Greeting {
        name: &'static str,
    }

    impl Output for Greeting {
        fn text(&self, out: &mut dyn fmt::Write) -> fmt::Result {
            writeln!(out, "hello {}", self.name)
        }

        fn exit_code(&self) -> ExitCode {
            status(false)
        }
    }

    #[test]
    fn the_exit_status_is_the_outputs_in_either_form() {
        let greeting = Greeting { name: "ops" };
        let mut text = String::new();
        greeting.text(&mut text).unwrap();

        assert_eq!(text, "hello ops\n");
        assert_eq!(
            serde_json::to_string(&greeting).unwrap(),
            r#"{"name":"ops"}"#
        );
        assert_eq!(emit(&greeting, true), ExitCode::from(1));
    }
}
