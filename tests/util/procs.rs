//! Real processes for the tests that need them: the packet-service binary
//! (a gateway or a standalone backend) and HAProxy. Each runs with its
//! stderr in a file of its own and is killed (SIGKILL) and reaped when its
//! [`Proc`] is dropped, so a failing test leaves nothing running. Start-up
//! is awaited on a condition with a deadline: the `READY=1` the binary
//! sends to its own `NOTIFY_SOCKET`, or a port that accepts.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::DEADLINE;

/// The gateway binary of this build.
pub const BINARY: &str = env!("CARGO_BIN_EXE_packet-service");

/// A scratch directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new empty directory named after `what` and this process.
    pub fn new(what: &str) -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("packet-service-{what}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temp dir");
        TempDir(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A loopback port free at the time of the call (for a process that must
/// be told its port, or restarted on the same one).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("addr").port()
}

/// Whether something accepts on `addr`.
pub fn accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// A child process killed on drop.
pub struct Proc {
    name: String,
    child: Option<Child>,
    log: PathBuf,
    /// What the process said in its `READY=1` status line, if it was
    /// awaited that way.
    pub status: String,
    _dir: TempDir,
}

impl Proc {
    /// Starts `cmd` with its stderr in a file; `NOTIFY_SOCKET` is set and
    /// the call returns once the process sent `READY=1` (its status line
    /// is kept in [`status`](Self::status)).
    #[track_caller]
    pub fn notifying(name: &str, mut cmd: Command) -> Proc {
        let dir = TempDir::new(name);
        let path = dir.path().join("notify.sock");
        let sock = UnixDatagram::bind(&path).expect("bind a notify socket");
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        cmd.env("NOTIFY_SOCKET", &path);
        let mut proc = Proc::spawn(name, cmd, dir);
        let until = Instant::now() + DEADLINE;
        let mut buf = [0u8; 4096];
        loop {
            if let Ok(n) = sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                if msg.lines().any(|l| l == "READY=1") {
                    proc.status = msg
                        .lines()
                        .find_map(|l| l.strip_prefix("STATUS="))
                        .unwrap_or_default()
                        .to_owned();
                    return proc;
                }
            }
            proc.assert_running("READY=1");
            assert!(
                Instant::now() < until,
                "{name} sent no READY=1\n{}",
                proc.log()
            );
        }
    }

    /// Starts `cmd` with its stderr in a file and returns once `addr`
    /// accepts connections.
    #[track_caller]
    pub fn listening(name: &str, cmd: Command, addr: SocketAddr) -> Proc {
        let mut proc = Proc::spawn(name, cmd, TempDir::new(name));
        let until = Instant::now() + DEADLINE;
        while !accepts(addr) {
            proc.assert_running(&format!("{addr} to accept"));
            assert!(
                Instant::now() < until,
                "{name} never listened on {addr}\n{}",
                proc.log()
            );
            std::thread::sleep(Duration::from_millis(20)); // polling a port, bounded above
        }
        proc
    }

    /// Starts `cmd` with its stderr in a file, without waiting for anything.
    #[track_caller]
    pub fn started(name: &str, cmd: Command) -> Proc {
        Proc::spawn(name, cmd, TempDir::new(name))
    }

    #[track_caller]
    fn spawn(name: &str, mut cmd: Command, dir: TempDir) -> Proc {
        let log = dir.path().join("stderr.log");
        let file = std::fs::File::create(&log).expect("create the log file");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(file));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            name: name.to_owned(),
            child: Some(child),
            log,
            status: String::new(),
            _dir: dir,
        }
    }

    /// The address at the end of the `READY=1` status line
    /// (`accepting clients on 127.0.0.1:29000`).
    #[track_caller]
    pub fn ready_addr(&self) -> SocketAddr {
        self.status
            .rsplit(' ')
            .next()
            .and_then(|a| a.trim().parse().ok())
            .unwrap_or_else(|| panic!("no address in {:?}", self.status))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// What the process wrote to stderr so far.
    pub fn log(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        format!("--- {} stderr ---\n{text}", self.name)
    }

    /// Fails the test if the process exited while `what` was awaited.
    #[track_caller]
    pub fn assert_running(&mut self, what: &str) {
        if let Some(status) = self
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
        {
            panic!(
                "{} exited ({status}) while waiting for {what}\n{}",
                self.name,
                self.log()
            );
        }
    }

    /// Waits for the process to exit by itself and returns its status.
    #[track_caller]
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let until = Instant::now() + DEADLINE;
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                self.child = None;
                return status;
            }
            assert!(Instant::now() < until, "{} did not exit", self.name);
            std::thread::sleep(Duration::from_millis(10)); // polling a child's exit
        }
    }

    /// SIGKILL and reap: the process is gone when this returns.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}
