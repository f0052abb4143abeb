//! Capture of the bootstrap's stdout and stderr, which become the function's logs.

use std::{
    fs::File,
    io::{self, Read, Write},
    os::fd::OwnedFd,
    sync::{Arc, Mutex, PoisonError},
};

use tokio::{net::unix::pipe, task::JoinHandle};

/// Output kept per attribution window; older bytes are dropped first so a chatty function cannot exhaust memory.
const MAX_BUFFERED: usize = 4 * 1024 * 1024;

/// Reads one pipe that both stdout and stderr of the bootstrap write to, so their order is kept.
pub struct OutputCapture {
    shared: Arc<Shared>,
    reader: JoinHandle<()>,
}

struct Shared {
    /// Tokio's view of the pipe, for waiting until it is readable.
    pipe: pipe::Receiver,
    /// The same (non-blocking) pipe for direct reads: tokio's `try_read`
    /// answers WouldBlock without a syscall until the reactor has seen the
    /// pipe readable, which would make `drain` miss bytes already written.
    direct: File,
    buffer: Mutex<Vec<u8>>,
    echo: bool,
}

impl OutputCapture {
    /// Starts reading `reader` in the background; with `echo` the output is copied to the shim's stderr.
    pub fn start(reader: io::PipeReader, echo: bool) -> io::Result<Self> {
        let fd: OwnedFd = reader.into();
        let direct = File::from(fd.try_clone()?);
        // Sets O_NONBLOCK on the open file description, which `direct` shares.
        let pipe = pipe::Receiver::from_owned_fd(fd)?;
        let shared = Arc::new(Shared {
            pipe,
            direct,
            buffer: Mutex::new(Vec::new()),
            echo,
        });
        let background = Arc::clone(&shared);
        let reader = tokio::spawn(async move {
            loop {
                if background.pipe.readable().await.is_err() {
                    return;
                }
                if background.read_available(Via::Reactor) {
                    return;
                }
            }
        });
        Ok(Self { shared, reader })
    }

    /// Takes everything written so far, including bytes still in the pipe.
    ///
    /// A function writes its output before it posts its response, so reading
    /// the pipe dry here attributes that output to the right invocation even if
    /// the background reader has not woken yet.
    pub fn drain(&self) -> Vec<u8> {
        self.shared.read_available(Via::Direct);
        let mut buffer = self
            .shared
            .buffer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut *buffer)
    }
}

/// How to read the pipe.
#[derive(Clone, Copy)]
enum Via {
    /// Through tokio, which clears its readiness flag on WouldBlock.
    Reactor,
    /// Straight from the file descriptor, whatever tokio believes.
    Direct,
}

impl Shared {
    /// Reads until the pipe would block; returns true at end of file.
    fn read_available(&self, via: Via) -> bool {
        // Reading while holding the lock keeps chunks in pipe order even if
        // drain() and the background reader race.
        let mut buffer = self.buffer.lock().unwrap_or_else(PoisonError::into_inner);
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let read = match via {
                Via::Reactor => self.pipe.try_read(&mut chunk),
                Via::Direct => (&self.direct).read(&mut chunk),
            };
            match read {
                Ok(0) => return true,
                Ok(n) => {
                    if self.echo {
                        let _ = io::stderr().write_all(&chunk[..n]);
                    }
                    buffer.extend_from_slice(&chunk[..n]);
                    if buffer.len() > MAX_BUFFERED {
                        let excess = buffer.len() - MAX_BUFFERED;
                        buffer.drain(..excess);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return true,
            }
        }
    }
}

impl Drop for OutputCapture {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drain_returns_bytes_written_before_the_call() {
        let (reader, mut writer) = io::pipe().expect("pipe");
        let capture = OutputCapture::start(reader, false).expect("capture");
        writer.write_all(b"first line\n").expect("write");
        writer.write_all(b"second line\n").expect("write");
        // No await between write and drain: the background reader had no chance to run.
        assert_eq!(capture.drain(), b"first line\nsecond line\n");
        assert_eq!(capture.drain(), b"");
    }

    #[tokio::test]
    async fn background_reader_keeps_the_pipe_flowing() {
        let (reader, mut writer) = io::pipe().expect("pipe");
        let capture = OutputCapture::start(reader, false).expect("capture");
        // More than a pipe's capacity: the writer would block without the background reader.
        let big = vec![b'x'; 256 * 1024];
        let writer_thread = std::thread::spawn(move || writer.write_all(&big));
        while !writer_thread.is_finished() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        writer_thread.join().expect("thread").expect("write");
        assert_eq!(capture.drain().len(), 256 * 1024);
    }
}
