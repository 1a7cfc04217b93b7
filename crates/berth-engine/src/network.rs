//! Networks on the engine side: the records live in `berth.db`
//! (`berth_network::store`), the kernel side is derived from them.
//!
//! - `none`: the container gets a network namespace of its own with only
//!   loopback (the runtime makes it).
//! - `host`: no network namespace.
//! - `container:NAME`: the other container's namespace, by its init's
//!   `/proc/<pid>/ns/net`.
//! - `bridge` (the default network, Linux bridge `berth0` on 10.88.0.0/16)
//!   and user-defined bridge networks: at start the engine makes a network
//!   namespace file `<runroot>/netns/<id>`, leases an address per network
//!   (store), makes the bridge if it is missing and a veth pair with `eth0`
//!   in the namespace (netlink), publishes the container's ports (store,
//!   then one `nft` transaction regenerating berth's table from the
//!   records), and hands the namespace's path to the runtime. At the end
//!   (the monitor's exit command, `rm`, or a later `start` finding
//!   leftovers) it removes the namespace file — the kernel then deletes the
//!   veth pair — and releases the leases and ports.
//!
//! Records first, kernel second: a crash in between leaves records that the
//! next start or removal of the container, or the next `nft` sync, brings the
//! kernel in line with.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use berth_network::netlink::{IfAddr, MacAddr};
use berth_network::store::{self, EndpointSpec, Network, NetworkSpec, Pools};
use berth_network::{endpoint, netlink, netns, nft, ports};

use crate::config::EndpointSettings;
use crate::{ids, Engine, EngineError, Result, Row, Settings};

/// Where sysctls are written.
const PROC_SYS: &str = "/proc/sys";

/// A container's endpoints (with their networks) and published ports.
pub type ContainerNetwork = (Vec<(Network, store::Endpoint)>, Vec<store::PublishedPort>);

/// What a started container's network is, for its spec and files.
#[derive(Debug, Default)]
pub(crate) struct NetUp {
    /// The network namespace to join (`None`: a new one, or the host's).
    pub netns: Option<PathBuf>,
    /// The container's addresses, for /etc/hosts.
    pub addrs: Vec<IpAddr>,
    /// The embedded DNS server's address, for resolv.conf (user networks).
    pub dns: Option<IpAddr>,
}

type DynError = Box<dyn std::error::Error + Send + Sync>;

fn net_err(op: &'static str, object: &str) -> impl FnOnce(DynError) -> EngineError {
    let object = object.to_owned();
    move |e| EngineError::Network {
        op,
        object,
        message: berth_runtime::error::chain(&*e),
    }
}

impl Engine {
    fn conn(&self) -> &rusqlite::Connection {
        self.db.conn()
    }

    /// The predefined networks `bridge`, `host` and `none`, recorded if missing.
    pub fn ensure_networks(&self) -> Result<()> {
        let mut id = || ids::random_id().unwrap_or_default();
        store::ensure_predefined(
            self.conn(),
            store::DEFAULT_BRIDGE_SUBNET,
            &berth_runtime::state::now_rfc3339(),
            &mut id,
        )
        .map_err(|e| net_err("recording", "the predefined networks")(e.into()))
    }

    /// `network create`.
    pub fn network_create(&self, mut spec: NetworkSpec) -> Result<Network> {
        self.ensure_networks()?;
        spec.id = ids::random_id().map_err(crate::io_err("reading", "/dev/urandom"))?;
        spec.created = berth_runtime::state::now_rfc3339();
        let name = spec.name.clone();
        let n = store::create_network(self.conn(), &spec, Pools::DEFAULT)
            .map_err(|e| net_err("creating network", &name)(e.into()))?;
        self.sync_firewall()?;
        Ok(n)
    }

    /// Every network, predefined ones included.
    pub fn networks(&self) -> Result<Vec<Network>> {
        self.ensure_networks()?;
        store::list_networks(self.conn()).map_err(|e| net_err("listing", "networks")(e.into()))
    }

    /// A network by name, id or unique id prefix.
    pub fn network(&self, term: &str) -> Result<Network> {
        self.ensure_networks()?;
        store::find_network(self.conn(), term).map_err(|e| match e {
            store::StoreError::NotFound(_) => EngineError::NetworkNotFound(term.to_owned()),
            e => net_err("looking up network", term)(e.into()),
        })
    }

    /// `network rm`: refused while containers are connected.
    pub fn network_remove(&self, term: &str) -> Result<Network> {
        self.ensure_networks()?;
        let n = store::remove_network(self.conn(), term).map_err(|e| match e {
            store::StoreError::NotFound(_) => EngineError::NetworkNotFound(term.to_owned()),
            e => EngineError::State(format!("{e}")),
        })?;
        let _ = berth_dns::stop(&self.network_run_dir(&n).join("dns.pid"));
        let _ = std::fs::remove_dir_all(self.network_run_dir(&n));
        if let Some(bridge) = &n.bridge {
            let mut nl = netlink::Handle::open().map_err(|e| net_err("opening netlink for", bridge)(e.into()))?;
            endpoint::remove_bridge(&mut nl, bridge).map_err(|e| net_err("removing bridge", bridge)(e.into()))?;
        }
        self.sync_firewall()?;
        Ok(n)
    }

    /// Regenerates berth's nftables table from the records.
    pub(crate) fn sync_firewall(&self) -> Result<()> {
        nft::sync(self.conn(), nft::TABLE).map_err(|e| net_err("applying nftables rules of", nft::TABLE)(e.into()))
    }

    /// Brings the nftables port maps in line with the published ports.
    pub(crate) fn sync_ports(&self) -> Result<()> {
        nft::sync_ports(self.conn(), nft::TABLE)
            .map_err(|e| net_err("applying published ports to nftables table", nft::TABLE)(e.into()))
    }

    /// The network namespace file of a container.
    pub fn netns_path(&self, id: &str) -> PathBuf {
        netns::path(&self.runroot, id)
    }

    /// Sets the container's network up for a start.
    pub(crate) fn network_up(&self, row: &Row, s: &Settings) -> Result<NetUp> {
        let mode = s.host_config.network_mode.as_str();
        if mode == "none" || mode == "host" {
            return Ok(NetUp::default());
        }
        if let Some(other) = mode.strip_prefix("container:") {
            let o = self.get(other)?;
            if !o.is_running() || o.pid <= 0 {
                return Err(EngineError::State(format!(
                    "cannot join network of a non running container: {other}"
                )));
            }
            return Ok(NetUp {
                netns: Some(PathBuf::from(format!("/proc/{}/ns/net", o.pid))),
                ..Default::default()
            });
        }
        // Whatever an earlier run left (a killed monitor): gone first.
        self.network_down(&row.id);
        self.ensure_networks()?;
        let path = self.netns_path(&row.id);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(crate::io_err("creating directory", dir))?;
        }
        let up = (|| {
            netns::create(&path).map_err(|e| net_err("creating network namespace", &row.id)(e.into()))?;
            let mut nl = netlink::Handle::open().map_err(|e| net_err("opening netlink for", &row.id)(e.into()))?;
            let mut out = NetUp {
                netns: Some(path.clone()),
                ..Default::default()
            };
            let mut nets: Vec<(&String, &EndpointSettings)> = s.networking_config.endpoints_config.iter().collect();
            let default = EndpointSettings::default();
            let bridge_name = "bridge".to_string();
            if nets.is_empty() {
                nets.push((
                    if mode == "default" {
                        &bridge_name
                    } else {
                        &s.host_config.network_mode
                    },
                    &default,
                ));
            }
            let mut joined = Vec::new();
            for (i, (name, ep)) in nets.into_iter().enumerate() {
                let (net, e) = self.join(&mut nl, row, name, ep, &path, &format!("eth{i}"))?;
                out.addrs.extend(e.ipv4.map(IpAddr::V4));
                out.addrs.extend(e.ipv6.map(IpAddr::V6));
                if net.name != "bridge" && out.dns.is_none() {
                    out.dns = net.subnets.first().map(|s| s.gateway);
                }
                joined.push(net);
            }
            // Their DNS servers, once for all (a failure: `network_down` below
            // releases the leases and refreshes them again).
            self.refresh_dns_around(&joined.iter().collect::<Vec<_>>())?;
            // Published ports.
            let mut bindings = Vec::new();
            for (key, list) in &s.host_config.port_bindings {
                for b in list {
                    bindings.push(
                        ports::PortBinding::from_docker(key, &b.host_ip, &b.host_port)
                            .map_err(|e| EngineError::State(e.to_string()))?,
                    );
                }
            }
            if s.host_config.publish_all_ports {
                let exposed: Vec<&str> = s
                    .config
                    .exposed_ports
                    .as_ref()
                    .map(|m| m.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                for b in ports::publish_all(exposed.iter().copied()).map_err(|e| EngineError::State(e.to_string()))? {
                    if !bindings.iter().any(|x| x.key() == b.key()) {
                        bindings.push(b);
                    }
                }
            }
            if !bindings.is_empty() {
                store::publish_ports(self.conn(), &row.id, &bindings).map_err(|e| EngineError::State(e.to_string()))?;
                self.sync_ports()?;
            }
            Ok(out)
        })();
        if up.is_err() {
            self.network_down(&row.id);
        }
        up
    }

    /// Leases the container an address on the network `name` and plugs it in.
    fn join(
        &self,
        nl: &mut netlink::Handle,
        row: &Row,
        name: &str,
        ep: &EndpointSettings,
        ns: &Path,
        ifname: &str,
    ) -> Result<(Network, store::Endpoint)> {
        let ipam = ep.ipam_config.clone().unwrap_or_default();
        let bad = |what: &str, v: &str| EngineError::State(format!("invalid {what} address {v:?}"));
        let ipv4 = match ipam.ipv4_address.as_str() {
            "" => None,
            v => Some(v.parse().map_err(|_| bad("IPv4", v))?),
        };
        let ipv6 = match ipam.ipv6_address.as_str() {
            "" => None,
            v => Some(v.parse().map_err(|_| bad("IPv6", v))?),
        };
        let spec = EndpointSpec {
            id: ids::random_id().map_err(crate::io_err("reading", "/dev/urandom"))?,
            container: row.id.clone(),
            name: row.name.clone(),
            ipv4,
            ipv6,
            mac: (!ep.mac_address.is_empty()).then(|| ep.mac_address.clone()),
            aliases: ep.aliases.clone(),
        };
        let (net, e) = store::connect(self.conn(), name, &spec).map_err(|e| match e {
            store::StoreError::NotFound(_) => EngineError::NetworkNotFound(name.to_owned()),
            e => EngineError::State(e.to_string()),
        })?;
        // The DNS servers are refreshed by the caller, once for all the networks joined.
        if let Err(err) = self.plug(nl, &net, &e, ns, ifname) {
            let _ = store::disconnect(self.conn(), &net.id, &row.id);
            return Err(err);
        }
        Ok((net, e))
    }

    /// `network connect`: a running container joins at once; the setting
    /// is recorded for its next starts either way.
    pub fn network_connect(&self, network: &str, container: &str, ep: &EndpointSettings) -> Result<()> {
        let _lock = self.lock(&self.lookup(container)?)?;
        let row = self.get(container)?;
        let net = self.network(network)?;
        let mut s = row.settings();
        let mode = s.host_config.network_mode.clone();
        let refused = match mode.as_str() {
            "host" => Some("container cannot be disconnected from host network or connected to host network"),
            "none" => Some("container cannot be connected to multiple networks with one of the networks in private (none) mode"),
            m if m.starts_with("container:") => Some(
                "container sharing network namespace with another container or host cannot be connected to any other network",
            ),
            _ => None,
        };
        if let Some(why) = refused {
            return Err(EngineError::State(why.into()));
        }
        if s.networking_config.endpoints_config.contains_key(&net.name) {
            return Err(EngineError::State(format!(
                "endpoint with name {} already exists in network {}",
                row.name, net.name
            )));
        }
        if row.is_running() {
            let ns = self.netns_path(&row.id);
            // The first ethN the container does not have yet.
            let ifname = netns::run_in(&ns, || -> std::result::Result<String, netlink::Error> {
                let mut inner = netlink::Handle::open()?;
                let mut n = 0;
                while inner.link_index(&format!("eth{n}"))?.is_some() {
                    n += 1;
                }
                Ok(format!("eth{n}"))
            })
            .map_err(|e| net_err("entering the network namespace of", &row.id)(e.into()))?
            .map_err(|e| net_err("listing the interfaces of", &row.id)(e.into()))?;
            let mut nl = netlink::Handle::open().map_err(|e| net_err("opening netlink for", &row.id)(e.into()))?;
            let (joined, _) = self.join(&mut nl, &row, &net.name, ep, &ns, &ifname)?;
            if let Err(err) = self.refresh_dns_around(&[&joined]) {
                let _ = store::disconnect(self.conn(), &joined.id, &row.id);
                let _ = self.refresh_dns_around(&[&joined]);
                return Err(err);
            }
        }
        if s.networking_config.endpoints_config.is_empty() {
            // The network of --network alone, kept beside the new one.
            s.networking_config
                .endpoints_config
                .insert(mode.clone(), EndpointSettings::default());
        }
        s.networking_config
            .endpoints_config
            .insert(net.name.clone(), ep.clone());
        self.db
            .set_config(&row.id, &serde_json::to_string(&s).expect("serializable"))?;
        self.db
            .add_event(&crate::container::network_event("connect", &net, &row.id))?;
        Ok(())
    }

    /// `network disconnect`.
    pub fn network_disconnect(&self, network: &str, container: &str, force: bool) -> Result<()> {
        let id = match self.lookup(container) {
            Ok(id) => id,
            Err(EngineError::NotFound(_)) if force => {
                // A container already gone: only its lease.
                let net = self.network(network)?;
                let _ = store::disconnect(self.conn(), &net.id, container);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let _lock = self.lock(&id)?;
        let row = self.get(&id)?;
        let net = self.network(network)?;
        let mut s = row.settings();
        let recorded = s.networking_config.endpoints_config.remove(&net.name).is_some();
        if row.is_running() {
            match store::disconnect(self.conn(), &net.id, &row.id) {
                Ok(_) => {
                    let mut nl =
                        netlink::Handle::open().map_err(|e| net_err("opening netlink for", &row.id)(e.into()))?;
                    endpoint::detach(&mut nl, &endpoint::host_ifname(&row.id, &net.id))
                        .map_err(|e| net_err("detaching from network", &net.name)(e.into()))?;
                    // Its other networks' servers lose their view of this one.
                    let (others, ports) = self.container_network(&row.id)?;
                    let mut nets = vec![&net];
                    nets.extend(others.iter().map(|(other, _)| other));
                    self.refresh_dns_around(&nets)?;
                    // Its published ports may have gone to the address it lost.
                    if !ports.is_empty() {
                        self.sync_ports()?;
                    }
                }
                Err(e) if !recorded => return Err(EngineError::State(e.to_string())),
                Err(_) => {}
            }
        } else if !recorded {
            return Err(EngineError::State(format!(
                "container {} is not connected to network {}",
                row.id, net.name
            )));
        }
        if s.host_config.network_mode == net.name && s.networking_config.endpoints_config.is_empty() {
            s.host_config.network_mode = "none".into();
        }
        self.db
            .set_config(&row.id, &serde_json::to_string(&s).expect("serializable"))?;
        self.db
            .add_event(&crate::container::network_event("disconnect", &net, &row.id))?;
        Ok(())
    }

    /// `network prune`: user networks without containers.
    pub fn network_prune(&self) -> Result<Vec<String>> {
        let mut gone = Vec::new();
        for n in self.networks()? {
            if n.is_predefined() {
                continue;
            }
            if self.network_remove(&n.id).is_ok() {
                gone.push(n.name);
            }
        }
        Ok(gone)
    }

    /// A container's endpoints and published ports, as recorded.
    pub fn container_network(&self, id: &str) -> Result<ContainerNetwork> {
        let eps =
            store::container_endpoints(self.conn(), id).map_err(|e| net_err("reading endpoints of", id)(e.into()))?;
        let mut out = Vec::new();
        for e in eps {
            if let Ok(n) = store::find_network(self.conn(), &e.network) {
                out.push((n, e));
            }
        }
        let ports =
            store::published_ports(self.conn(), Some(id)).map_err(|e| net_err("reading ports of", id)(e.into()))?;
        Ok((out, ports))
    }

    /// The containers on a network, for `network inspect`.
    pub fn network_endpoints(&self, net: &Network) -> Result<Vec<store::Endpoint>> {
        store::list_endpoints(self.conn(), Some(&net.id))
            .map_err(|e| net_err("reading endpoints of", &net.name)(e.into()))
    }

    /// The directory of a network's run-time files (its DNS server's).
    fn network_run_dir(&self, net: &Network) -> PathBuf {
        self.runroot.join("networks").join(&net.id)
    }

    /// Refreshes the DNS servers of `nets` and of every network that shares a
    /// container with one of them (their views changed), from one read of
    /// the networks and endpoints.
    pub(crate) fn refresh_dns_around(&self, nets: &[&Network]) -> Result<()> {
        // The predefined networks have no DNS server and are in no view.
        let user: Vec<&str> = nets
            .iter()
            .filter(|n| !n.is_predefined())
            .map(|n| n.id.as_str())
            .collect();
        if user.is_empty() {
            return Ok(());
        }
        let conn = self.conn();
        let networks = store::list_networks(conn).map_err(|e| net_err("reading", "networks")(e.into()))?;
        let endpoints = store::list_endpoints(conn, None).map_err(|e| net_err("reading", "endpoints")(e.into()))?;
        let mut affected = user.clone();
        for e in endpoints.iter().filter(|e| user.contains(&e.network.as_str())) {
            for o in endpoints.iter().filter(|o| o.container == e.container) {
                if !affected.contains(&o.network.as_str()) {
                    affected.push(&o.network);
                }
            }
        }
        let mut upstreams = HashMap::new();
        for id in affected {
            if let Some(n) = networks.iter().find(|n| n.id == id) {
                self.refresh_dns(n, &networks, &endpoints, &mut upstreams)?;
            }
        }
        Ok(())
    }

    /// Brings a user network's embedded DNS server in line with its
    /// endpoints (`networks` and `endpoints`: all of them, as recorded): the
    /// records rewritten (and the server told at once), the server started
    /// with the first container and stopped with the last. The default
    /// `bridge` network has none, as Docker's has none. `upstreams` caches
    /// each container's `--dns` servers across the networks refreshed.
    fn refresh_dns(
        &self,
        net: &Network,
        networks: &[Network],
        endpoints: &[store::Endpoint],
        upstreams: &mut HashMap<String, Vec<IpAddr>>,
    ) -> Result<()> {
        if net.is_predefined() || net.bridge.is_none() {
            return Ok(());
        }
        let dir = self.network_run_dir(net);
        let cfg_path = dir.join("dns.json");
        let pid_file = dir.join("dns.pid");
        fn on<'a>(endpoints: &'a [store::Endpoint], id: &'a str) -> impl Iterator<Item = &'a store::Endpoint> {
            endpoints.iter().filter(move |e| e.network == id)
        }
        if on(endpoints, &net.id).next().is_none() {
            let _ = berth_dns::stop(&pid_file);
            let _ = std::fs::remove_dir_all(&dir);
            return Ok(());
        }
        std::fs::create_dir_all(&dir).map_err(crate::io_err("creating directory", &dir))?;
        let entry = |e: &store::Endpoint| berth_dns::Entry {
            name: e.name.clone(),
            aliases: e.aliases.clone(),
            id: Some(e.container.clone()),
            addresses: e
                .ipv4
                .map(IpAddr::V4)
                .into_iter()
                .chain(e.ipv6.map(IpAddr::V6))
                .collect(),
        };
        // A container also on other user networks asks this server (its
        // resolv.conf names one) for their containers too; one with `--dns`
        // has its other names forwarded there, as Docker's embedded server does.
        let listen: Vec<std::net::SocketAddr> = net
            .subnets
            .iter()
            .map(|s| std::net::SocketAddr::new(s.gateway, 53))
            .collect();
        let mut views = Vec::new();
        for e in on(endpoints, &net.id) {
            if !upstreams.contains_key(&e.container) {
                let dns = match self.db.get(&e.container)? {
                    Some(row) => row
                        .settings()
                        .host_config
                        .dns
                        .iter()
                        .filter_map(|d| d.parse::<IpAddr>().ok())
                        .collect(),
                    None => Vec::new(),
                };
                upstreams.insert(e.container.clone(), dns);
            }
            // `--dns` naming this server itself means its default: the host's resolvers.
            let upstream: Vec<std::net::SocketAddr> = upstreams[&e.container]
                .iter()
                .map(|ip| std::net::SocketAddr::new(*ip, 53))
                .filter(|a| !listen.contains(a))
                .collect();
            let mut records = Vec::new();
            for o in endpoints
                .iter()
                .filter(|o| o.container == e.container && o.network != net.id)
            {
                let Some(other) = networks.iter().find(|n| n.id == o.network) else {
                    continue;
                };
                if other.is_predefined() {
                    continue;
                }
                records.extend(on(endpoints, &other.id).map(entry));
            }
            if !records.is_empty() || !upstream.is_empty() {
                views.push(berth_dns::config::View {
                    clients: entry(e).addresses,
                    records,
                    upstream,
                });
            }
        }
        let cfg = berth_dns::Config {
            listen,
            upstream: host_resolvers(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default()),
            domains: Vec::new(),
            records: on(endpoints, &net.id).map(entry).collect(),
            ttl: 0,
            upstream_timeout_ms: 2000,
            views,
        };
        berth_dns::write_config(&cfg_path, &cfg).map_err(|e| net_err("writing DNS records of", &net.name)(e.into()))?;
        match berth_dns::running(&pid_file) {
            Some(pid) => {
                // Reload now rather than at its next look at the file.
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGHUP);
            }
            None => {
                if let Err(e) = berth_dns::spawn(&self.opts.dns, &cfg_path, &pid_file) {
                    // Another berth started it meanwhile.
                    if berth_dns::running(&pid_file).is_none() {
                        return Err(net_err("starting the DNS server of", &net.name)(e.into()));
                    }
                }
            }
        }
        Ok(())
    }

    /// Makes sure the network's bridge exists and attaches the endpoint.
    fn plug(
        &self,
        nl: &mut netlink::Handle,
        net: &Network,
        e: &store::Endpoint,
        ns: &Path,
        ifname: &str,
    ) -> Result<()> {
        let Some(bridge) = &net.bridge else {
            return Err(EngineError::State(format!(
                "network {} (driver {}) cannot have containers attached",
                net.name, net.driver
            )));
        };
        let gw: Vec<IfAddr> = net
            .subnets
            .iter()
            .map(|s| IfAddr {
                addr: s.gateway,
                prefix_len: s.subnet.prefix(),
            })
            .collect();
        let ensured = endpoint::ensure_bridge(
            nl,
            &endpoint::Bridge {
                name: bridge,
                addresses: &gw,
                mtu: 1500,
            },
            Path::new(PROC_SYS),
        )
        .map_err(|err| net_err("setting up bridge", bridge)(err.into()))?;
        if ensured.created {
            // The network's masquerade and isolation rules.
            self.sync_firewall()?;
        }
        // Each leased address with its subnet's prefix.
        let addrs: Vec<IfAddr> = [e.ipv4.map(IpAddr::V4), e.ipv6.map(IpAddr::V6)]
            .into_iter()
            .flatten()
            .filter_map(|a| {
                let s = net.subnets.iter().find(|s| s.subnet.contains(a))?;
                Some(IfAddr {
                    addr: a,
                    prefix_len: s.subnet.prefix(),
                })
            })
            .collect();
        // The default route goes through the first network only, as Docker
        // routes through one gateway.
        let gateways: Vec<IpAddr> = if net.internal || ifname != "eth0" {
            Vec::new()
        } else {
            net.subnets.iter().map(|s| s.gateway).collect()
        };
        let mac = e.mac.parse::<MacAddr>().ok();
        let host_if = endpoint::host_ifname(&e.container, &net.id);
        endpoint::attach(
            nl,
            &endpoint::Endpoint {
                bridge,
                bridge_index: Some(ensured.index),
                netns: ns,
                host_ifname: &host_if,
                ifname,
                addresses: &addrs,
                gateways: &gateways,
                mtu: 1500,
                mac,
            },
        )
        .map_err(|err| net_err("attaching to bridge", bridge)(err.into()))?;
        Ok(())
    }

    /// Tears the container's network down: the namespace file (the kernel
    /// removes its veth pairs), leases and published ports. Idempotent.
    pub(crate) fn network_down(&self, id: &str) {
        let path = self.netns_path(id);
        let _ = netns::remove(&path);
        // Most calls find nothing held (every start, stop and removal asks):
        // two reads then, not a write transaction.
        let conn = self.conn();
        let holds = store::container_endpoints(conn, id).map_or(true, |e| !e.is_empty())
            || store::published_ports(conn, Some(id)).map_or(true, |p| !p.is_empty());
        if !holds {
            return;
        }
        if let Ok((endpoints, ports)) = store::release_container(self.conn(), id) {
            if !ports.is_empty() {
                let _ = self.sync_ports();
            }
            let nets: Vec<Network> = endpoints
                .iter()
                .filter_map(|e| store::find_network(self.conn(), &e.network).ok())
                .collect();
            let _ = self.refresh_dns_around(&nets.iter().collect::<Vec<_>>());
        }
    }
}

/// The host's resolvers from its resolv.conf, for the embedded DNS server
/// (which runs in the host's namespace, so loopback resolvers work).
fn host_resolvers(resolv_conf: &str) -> Vec<std::net::SocketAddr> {
    resolv_conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|v| v.trim().split('%').next()?.parse::<IpAddr>().ok())
        .map(|ip| std::net::SocketAddr::new(ip, 53))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolvers_come_from_resolv_conf() {
        let r = host_resolvers("# x\nnameserver 10.0.0.1\nnameserver fe80::1%eth0\nsearch lan\nnameserver bogus\n");
        assert_eq!(r, ["10.0.0.1:53".parse().unwrap(), "[fe80::1]:53".parse().unwrap()]);
    }
}
