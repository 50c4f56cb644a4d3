//! The packet-service binary: configuration, logging, signals, then the
//! reactor on the main thread. Everything else lives in the library.

use std::process::ExitCode;

use log::{error, info};
use packet_service::config::{Command, Config};
use packet_service::server::Server;

fn main() -> ExitCode {
    let config = match Config::from_env_and_args() {
        Ok(Command::Run(config)) => config,
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
    let server = match Server::build(config) {
        Ok(server) => server,
        Err(e) => {
            error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = packet_service::signals::install(server.shutdown_trigger()) {
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
