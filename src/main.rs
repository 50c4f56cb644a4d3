//! The packet-service binary: configuration, the socket systemd passed
//! (if any), logging, signals, then the reactor on the main thread — or,
//! for `packet-service backend`, the embedded backend alone, and for
//! `packet-service accounts` and `packet-service admin`, one operator
//! command. Everything else lives in the library.

use std::process::ExitCode;

use log::{error, info};
use packet_service::backend::{accounts_cmd, admin_cli, standalone};
use packet_service::config::{AccountsCommand, AdminCommand, Command, Config};
use packet_service::reload::Reloader;
use packet_service::server::Server;

fn main() -> ExitCode {
    let config = match Config::from_env_and_args() {
        Ok(Command::Run(config)) => config,
        Ok(Command::Backend(config)) => return backend(&config),
        Ok(Command::Accounts(cmd)) => return accounts(&cmd),
        Ok(Command::Admin(cmd)) => return admin(&cmd),
        Ok(Command::Help(text)) | Ok(Command::Version(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Healthcheck(probe)) => {
            return match probe.check() {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("packet-service healthcheck: unhealthy: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Err(e) => {
            eprintln!("packet-service: {e}");
            return ExitCode::from(2);
        }
    };
    // SAFETY: before logging and the server start any thread.
    let activated = unsafe { packet_service::listener::take_activated() };
    let signals = match packet_service::signals::take() {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("packet-service: cannot install the signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let log = packet_service::logging::LogSettings::of(&config);
    if let Err(e) = packet_service::logging::init(&log) {
        eprintln!("packet-service: cannot start logging: {e}");
    }
    info!(
        "packet-service {} (revision {}) starting: {}",
        env!("CARGO_PKG_VERSION"),
        packet_service::metrics::REVISION,
        config.summary()
    );
    let activated = match activated {
        Ok(activated) => activated,
        Err(e) => {
            error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let current = config.clone();
    let server = match Server::build_with(config, activated) {
        Ok(server) => server,
        Err(e) => {
            error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let mut reloader = Reloader::new(current, server.reactor_reload(), server.local_addr().port())
        .with_accounts(server.accounts_reload());
    if let Err(e) =
        packet_service::signals::install(signals, server.shutdown_trigger(), move || {
            reloader.reload()
        })
    {
        error!("cannot install the signal handlers: {e}");
        return ExitCode::FAILURE;
    }
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("event loop failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `packet-service backend`: serves until SIGINT/SIGTERM; SIGHUP reloads.
fn backend(config: &Config) -> ExitCode {
    let signals = match packet_service::signals::take() {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("packet-service: cannot install the signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let log = packet_service::logging::LogSettings::of(config);
    if let Err(e) = packet_service::logging::init(&log) {
        eprintln!("packet-service: cannot start logging: {e}");
    }
    info!(
        "packet-service {} backend starting: {}",
        env!("CARGO_PKG_VERSION"),
        config.summary()
    );
    let running = match standalone::start(config) {
        Ok(running) => running,
        Err(e) => {
            error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let (tx, stop) = std::sync::mpsc::channel();
    let mut reloader = Reloader::backend(config.clone(), running.accounts_reload());
    if let Err(e) = packet_service::signals::install(
        signals,
        packet_service::signals::ChannelStop::new(tx),
        move || reloader.reload(),
    ) {
        error!("cannot install the signal handlers: {e}");
        return ExitCode::FAILURE;
    }
    packet_service::systemd::ready(&format!("backend serving on {}", running.addr()));
    running.serve(stop);
    ExitCode::SUCCESS
}

/// `packet-service accounts …`: one command, its result on stdout, an
/// error on stderr with its exit status.
fn accounts(cmd: &AccountsCommand) -> ExitCode {
    let password = || {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    };
    match accounts_cmd::run_blocking(cmd, password) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("packet-service accounts: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// `packet-service admin …`: one call, its answer on stdout, an error on
/// stderr with its exit status.
fn admin(cmd: &AdminCommand) -> ExitCode {
    match admin_cli::run_blocking(cmd) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("packet-service admin: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
