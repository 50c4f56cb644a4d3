//! The one place the settings are handed on: the reactor's settings, the
//! embedded backend's, whether and where that backend runs, and the
//! backend endpoints, each built from a [`Config`].

use std::net::SocketAddr;

use super::Config;
use crate::backend::BackendConfig;
use crate::conn::wire::Announced;
use crate::protocol::codec::PreparedSeeds;
use crate::protocol::Codec;
use crate::reactor::ReactorConfig;
use crate::rpc::Endpoints;

impl Config {
    /// The reactor's settings; `bound_port` is the port the client
    /// listener actually bound, advertised unless `public_port` is set.
    /// The irose tables are not built here: see [`Config::prepare_seeds`].
    pub fn reactor_config(&self, bound_port: u16) -> ReactorConfig {
        ReactorConfig {
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
            codec: Codec::new(self.codec),
            packet_ids: self.packet_ids,
            announced: Announced::of(&self.irose_seeds).unwrap_or(Announced::DEFAULT),
            seeds: PreparedSeeds::none(),
            output_limit: self.output_limit,
            public_addr: self.public_addr.to_string(),
            public_port: self.public_port.unwrap_or(bound_port),
            handshake_timeout: self.handshake_timeout,
            idle_timeout: self.idle_timeout,
            frame_timeout: self.frame_timeout,
            rpc_deadline: self.rpc_deadline,
            wrong_state_budget: self.wrong_state_budget,
            packets_per_sec: self.max_packets_per_sec,
            packet_burst: self.packet_burst,
            chat_per_sec: self.chat_per_sec,
            chat_max_bytes: self.chat_max_bytes,
            world_flush: self.world_flush,
            shutdown_grace: self.shutdown_grace,
            proxy_protocol: self.proxy_protocol,
            proxy_trusted: self.proxy_trusted.clone(),
        }
    }

    /// The seeded tables the configured dialects need: those of every irose
    /// seed when irose clients are served, none otherwise. Blocking (about
    /// a millisecond per seed in a release build): call it at start-up,
    /// off the reactor thread. The tables live as long as the process.
    pub fn prepare_seeds(&self) -> &'static PreparedSeeds {
        if !self.packet_ids.serves_irose() {
            return PreparedSeeds::none();
        }
        match PreparedSeeds::build(&self.irose_seeds) {
            Ok(prepared) => Box::leak(Box::new(prepared)),
            // The setting's rule admits at most MAX_PREPARED_SEEDS.
            Err(_) => PreparedSeeds::none(),
        }
    }

    /// The embedded backend's settings.
    pub fn backend_config(&self) -> BackendConfig {
        BackendConfig {
            accounts: self.accounts.clone(),
            accounts_file: self.accounts_file.clone(),
            auto_create: self.auto_create_accounts,
            session_ttl: self.session_ttl,
            max_chars_per_account: self.max_chars_per_account,
            server_name: self.server_name.clone(),
            database: self.database.clone(),
            save_interval: self.save_interval,
            admin_listen: self.admin_listen,
            admin_token_file: self.admin_token_file.clone(),
            view: crate::backend::world::ViewConfig {
                cell_size: self.world_cell_size,
                radius_cells: self.world_view_cells,
            },
            limits: crate::backend::throttle::AuthLimitsConfig {
                failures_per_account: self.auth_failures_per_account,
                failures_per_source: self.auth_failures_per_source,
                autocreate_per_source: self.autocreate_per_source,
                autocreate_per_min: self.autocreate_per_min,
            },
        }
    }

    /// Whether some service has no external URL, so the embedded backend
    /// must serve it.
    pub fn needs_embedded_backend(&self) -> bool {
        self.auth_url.is_none() || self.character_url.is_none() || self.world_url.is_none()
    }

    /// Where the embedded backend listens, or `None` when it does not run:
    /// it runs for a service without a URL, or when `backend_listen` asks
    /// to expose it; unexposed, it takes an ephemeral loopback port.
    pub fn embedded_backend_listen(&self) -> Option<SocketAddr> {
        match self.backend_listen {
            Some(listen) => Some(listen),
            None if self.needs_embedded_backend() => Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            None => None,
        }
    }

    /// The three backend services: the URLs that are set, else the
    /// embedded backend at `embedded` (its bound address, when it runs).
    pub fn endpoints(&self, embedded: Option<SocketAddr>) -> Endpoints {
        let embedded = embedded
            .map(crate::rpc::transport::embedded_url)
            .unwrap_or_default();
        let or_embedded =
            |urls: &Option<Vec<String>>| urls.clone().unwrap_or_else(|| vec![embedded.clone()]);
        Endpoints {
            auth: or_embedded(&self.auth_url),
            character: or_embedded(&self.character_url),
            world: self.world_url.clone().unwrap_or_else(|| embedded.clone()),
            gateway: String::new(),
            local: None,
        }
    }

    /// The name the gateway gives itself on its world link: the address it
    /// advertises (`bound_port` unless `public_port` is set), the host and
    /// the process id, e.g. `203.0.113.7:29000 gw1/4242`.
    pub fn gateway_name(&self, bound_port: u16) -> String {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        format!(
            "{}:{} {}/{}",
            self.public_addr,
            self.public_port.unwrap_or(bound_port),
            host.trim(),
            std::process::id()
        )
    }
}
