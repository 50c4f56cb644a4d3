//! What the process does on a signal: SIGINT and SIGTERM start the graceful
//! shutdown (a second one exits at once); SIGHUP runs the reload given to
//! [`install`] (the gateway's is [`crate::reload::Reloader`]) and never
//! stops the service.
//!
//! The signals are taken by a thread of their own (signal-hook's iterator),
//! so nothing here runs in a signal handler and logging is safe.

use std::io;
use std::thread::JoinHandle;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::server::ShutdownTrigger;

/// What a stop signal stops: the gateway's [`ShutdownTrigger`], or the
/// standalone backend's stop channel.
pub trait Stop: Send + 'static {
    /// Starts the graceful shutdown.
    fn request(&self);
    /// Whether a shutdown was already requested.
    fn requested(&self) -> bool;
}

impl Stop for ShutdownTrigger {
    fn request(&self) {
        ShutdownTrigger::request(self);
    }
    fn requested(&self) -> bool {
        ShutdownTrigger::requested(self)
    }
}

/// A stop delivered as one message on a channel (the standalone backend).
pub struct ChannelStop {
    tx: std::sync::mpsc::Sender<()>,
    sent: std::sync::atomic::AtomicBool,
}

impl ChannelStop {
    /// Stops by sending `()` on `tx` once.
    pub fn new(tx: std::sync::mpsc::Sender<()>) -> ChannelStop {
        ChannelStop {
            tx,
            sent: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl Stop for ChannelStop {
    fn request(&self) {
        if !self.sent.swap(true, std::sync::atomic::Ordering::AcqRel) {
            let _ = self.tx.send(());
        }
    }
    fn requested(&self) -> bool {
        self.sent.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// Exit status when a second stop signal ends the process at once (128 +
/// SIGINT, as a shell reports an interrupted command).
pub const EXIT_NOW_STATUS: i32 = 130;

/// What a signal asks of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response {
    /// Start the graceful shutdown.
    Stop,
    /// A stop signal during the shutdown: exit now.
    ExitNow,
    /// Reload the settings.
    Reload,
    /// Not a signal this module handles.
    Ignore,
}

/// What `signal` asks for, given whether a shutdown is already under way.
pub fn respond(signal: i32, stopping: bool) -> Response {
    match signal {
        SIGINT | SIGTERM if stopping => Response::ExitNow,
        SIGINT | SIGTERM => Response::Stop,
        SIGHUP => Response::Reload,
        _ => Response::Ignore,
    }
}

/// SIGINT, SIGTERM and SIGHUP registered but not yet answered: from
/// [`take`] on they no longer kill the process with their default action;
/// what arrives before [`install`] starts answering waits for it.
pub struct Taken(Signals);

/// Registers the handlers at the very start of the process, before anything
/// is bound, so that a stop signal during start-up is a graceful stop (or a
/// reload), never the default "terminate".
pub fn take() -> io::Result<Taken> {
    Signals::new([SIGINT, SIGTERM, SIGHUP]).map(Taken)
}

/// Takes SIGINT, SIGTERM and SIGHUP from now on and answers them on a
/// thread of its own for the life of the process; `reload` runs on that
/// thread for each SIGHUP.
pub fn install(
    taken: Taken,
    trigger: impl Stop,
    mut reload: impl FnMut() + Send + 'static,
) -> io::Result<JoinHandle<()>> {
    let Taken(mut signals) = taken;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                match respond(signal, trigger.requested()) {
                    Response::Stop => trigger.request(),
                    Response::ExitNow => {
                        eprintln!("packet-service: second signal, exiting now");
                        std::process::exit(EXIT_NOW_STATUS);
                    }
                    Response::Reload => reload(),
                    Response::Ignore => {}
                }
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_signals_stop_then_exit_and_hangup_reloads() {
        for stop in [SIGINT, SIGTERM] {
            assert_eq!(respond(stop, false), Response::Stop);
            assert_eq!(respond(stop, true), Response::ExitNow);
        }
        assert_eq!(respond(SIGHUP, false), Response::Reload);
        assert_eq!(respond(SIGHUP, true), Response::Reload);
        assert_eq!(
            respond(signal_hook::consts::SIGUSR1, false),
            Response::Ignore
        );
    }
}
