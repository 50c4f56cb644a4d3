//! packet-service: the client-facing gateway of a ROSE Online server stack.
pub mod backend;
pub mod config;
pub mod logging;
pub mod metrics;
pub mod protocol;
pub mod systemd;

/// Generated backend contracts.
pub mod pb {
    /// `rose.auth.v1`
    pub mod auth {
        tonic::include_proto!("rose.auth.v1");
    }
    /// `rose.character.v1`
    pub mod character {
        tonic::include_proto!("rose.character.v1");
    }
    /// `rose.world.v1`
    pub mod world {
        tonic::include_proto!("rose.world.v1");
    }
}
