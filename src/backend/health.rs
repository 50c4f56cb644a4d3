//! The backend's `grpc.health.v1.Health` service: SERVING for the whole
//! server (`""`) and for each of its services while it runs, NOT_SERVING
//! (then the end of every watch) as soon as it begins to stop. Gateways with several backend URLs watch it
//! to balance over the backends that serve (`src/rpc/balance.rs`); a
//! Kubernetes `grpc` probe or `grpc_health_probe` can ask it too.

use tonic_health::server::{health_reporter, HealthReporter};
use tonic_health::ServingStatus;

use crate::pb;

/// The server as a whole, then each service, as the health protocol names them.
const NAMES: [&str; 4] = [
    "",
    pb::auth::auth_server::SERVICE_NAME,
    pb::character::character_server::SERVICE_NAME,
    pb::world::world_server::SERVICE_NAME,
];

/// The health service to add to the backend's router, every name SERVING,
/// and the handle that changes them.
pub(super) async fn serving() -> (
    HealthReporter,
    tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
) {
    let (reporter, service) = health_reporter();
    set_all(&reporter, ServingStatus::Serving).await;
    (reporter, service)
}

/// Every name NOT_SERVING, then every watch stream ended: watchers take
/// this backend out of their balance before it stops accepting calls, and
/// no open watch holds up the server's graceful stop.
pub(super) async fn stopping(mut reporter: HealthReporter) {
    set_all(&reporter, ServingStatus::NotServing).await;
    for name in NAMES {
        reporter.clear_service_status(name).await;
    }
}

async fn set_all(reporter: &HealthReporter, status: ServingStatus) {
    for name in NAMES {
        reporter.set_service_status(name, status).await;
    }
}
