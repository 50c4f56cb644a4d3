//! The packet-service binary: the socket systemd passed (if any),
//! configuration, logging, signals, then the reactor on the main thread.
//! Everything else lives in the library.

use std::process::ExitCode;

use log::{error, info};
use packet_service::config::{Command, Config};
use packet_service::server::Server;

fn main() -> ExitCode {
    // SAFETY: first thing in main, before any thread starts.
    let activated = unsafe { packet_service::listener::take_activated() };
    let config = match Config::from_env_and_args() {
        Ok(Command::Run(config)) => config,
        Ok(Command::Help(text)) | Ok(Command::Version(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("packet-service: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = packet_service::logging::init(config.log_level) {
        eprintln!("packet-service: cannot start logging: {e}");
    }
    info!(
        "packet-service {} starting: {}",
        env!("CARGO_PKG_VERSION"),
        config.summary()
    );
    let activated = match activated {
        Ok(activated) => activated,
        Err(e) => {
            error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let server = match Server::build_with(config, activated) {
        Ok(server) => server,
        Err(e) => {
            error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let trigger = server.shutdown_trigger();
    let handler = ctrlc::set_handler(move || {
        if trigger.requested() {
            eprintln!("packet-service: second signal, exiting now");
            std::process::exit(130);
        }
        trigger.request();
    });
    if let Err(e) = handler {
        error!("cannot install the signal handler: {e}");
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
