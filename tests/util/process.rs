//! The gateway binary as a child process: started on ephemeral loopback
//! ports (or as the standalone backend, or any command), its stderr
//! collected line by line, its addresses read from its own start-up lines,
//! signalled, stopped or killed like an operator or a crash would.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{wait_until, DEADLINE};

/// A running `packet-service` binary. Dropping it kills the process.
pub struct Process {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Process {
    /// Starts the binary with `args` after loopback, ephemeral-port defaults
    /// (those of `--listen`, `--port`, `--metrics-listen`,
    /// `--metrics-port` and `--admin-listen` that `args` does not give), with `env` added to the
    /// environment.
    #[track_caller]
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Process {
        let mut command = Process::command(args, env);
        command.stderr(Stdio::piped());
        Process::collect(command)
    }

    /// The command [`start`](Self::start) runs, stderr not yet set.
    pub fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_packet-service"));
        for (flag, value) in [("--listen", "127.0.0.1"), ("--port", "0")]
            .into_iter()
            .chain([("--metrics-listen", "127.0.0.1"), ("--metrics-port", "0")])
            .chain([("--admin-listen", "127.0.0.1:0")])
        {
            if !args.contains(&flag) {
                command.args([flag, value]);
            }
        }
        command
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("LOG_FORMAT")
            .env_remove("JOURNAL_STREAM")
            .env_remove("NOTIFY_SOCKET")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        command
    }

    /// The standalone backend (`packet-service backend`) on `listen`,
    /// accounts created on first login, its state in `database`, its admin
    /// service on an ephemeral loopback port; returns once it serves.
    #[track_caller]
    pub fn backend(listen: SocketAddr, database: &str) -> Process {
        Process::backend_with(listen, &["--database", database, "--auto-create-accounts"])
    }

    /// The standalone backend on `listen` with `args` (its database, its
    /// accounts…), logging at info, its admin service on an ephemeral
    /// loopback port; returns once it serves.
    #[track_caller]
    pub fn backend_with(listen: SocketAddr, args: &[&str]) -> Process {
        let mut command = Command::new(env!("CARGO_BIN_EXE_packet-service"));
        command
            .args(["backend", "--backend-listen", &listen.to_string()])
            .args(["--log-level", "info", "--admin-listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let backend = Process::collect(command);
        backend.wait_for_line("backend serving auth, character and world on");
        backend
    }

    /// A gateway process whose auth, character and world services are all
    /// at `url` (a standalone backend), with `args` added.
    #[track_caller]
    pub fn gateway_on(url: &str, args: &[&str]) -> Process {
        let services = [
            "--auth-url",
            url,
            "--character-url",
            url,
            "--world-url",
            url,
        ];
        let all: Vec<&str> = services.iter().chain(args).copied().collect();
        Process::start(&all, &[])
    }

    /// Runs `command` (with its stderr piped) and collects that stderr.
    #[track_caller]
    pub fn collect(mut command: Command) -> Process {
        let mut child = command.spawn().expect("start the binary");
        let stderr = child.stderr.take().expect("stderr piped");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                sink.lock().expect("lines").push(line);
            }
        });
        Process { child, lines }
    }

    /// Every stderr line so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("lines").clone()
    }

    /// Waits for a stderr line containing `text` and returns it.
    #[track_caller]
    pub fn wait_for_line(&self, text: &str) -> String {
        self.wait_for_line_with(&[text])
    }

    /// Waits for a stderr line containing every one of `texts`.
    #[track_caller]
    pub fn wait_for_line_with(&self, texts: &[&str]) -> String {
        let mut found = None;
        wait_until(&format!("a stderr line with {texts:?}"), || {
            found = self
                .lines()
                .into_iter()
                .find(|l| texts.iter().all(|t| l.contains(t)));
            found.is_some()
        });
        found.unwrap_or_default()
    }

    /// The address written right after `marker` in a stderr line that also
    /// contains `also`.
    #[track_caller]
    pub fn addr_after(&self, marker: &str, also: &str) -> SocketAddr {
        let line = self.wait_for_line_with(&[marker, also]);
        let rest = line.split_once(marker).map_or("", |(_, r)| r);
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '"' || c == '/')
            .unwrap_or(rest.len());
        rest[..end]
            .parse()
            .unwrap_or_else(|_| panic!("no address after {marker:?} in {line:?}"))
    }

    /// The client listener's address.
    #[track_caller]
    pub fn addr(&self) -> SocketAddr {
        // Not the embedded backend's "listening on" line.
        self.addr_after("listening on ", "(codec ")
    }

    /// The metrics endpoint's address.
    #[track_caller]
    pub fn metrics_addr(&self) -> SocketAddr {
        self.addr_after("metrics on http://", "/metrics")
    }

    /// Sends `signal` to the process.
    #[track_caller]
    pub fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.child.id()).expect("pid");
        // SAFETY: sending a signal to our own child process.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill");
    }

    /// SIGKILL, as a crash would: the process is gone when this returns.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the exit status.
    #[track_caller]
    pub fn stop(mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        self.wait()
    }

    /// Waits for the process to exit.
    #[track_caller]
    pub fn wait(&mut self) -> ExitStatus {
        let until = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < until, "the binary did not exit");
            std::thread::sleep(Duration::from_millis(10)); // polling a child's exit
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
