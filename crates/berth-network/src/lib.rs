//! berth-network: the networks containers join on one host.
//!
//! - [`netlink`]: a small rtnetlink client (links, addresses, routes) over a
//!   `NETLINK_ROUTE` socket, so no `ip` process is ever spawned.
//! - [`netns`]: network namespaces kept open as bind-mounted files under the
//!   runroot, and running code inside one.
//! - [`endpoint`]: a container's attachment to a bridge: bridge, veth pair,
//!   eth0 in the container's namespace with its addresses and routes.
//! - [`ipam`]: subnets, gateways and address allocation.
//! - [`store`]: networks and endpoints (with their leases) in `berth.db`.
//! - [`ports`]: `-p`/`-P` specs parsed into port bindings.
//! - [`nft`]: NAT, published ports and isolation in nftables tables of our own.

pub mod endpoint;
pub mod ipam;
pub mod netlink;
pub mod netns;
pub mod nft;
pub mod ports;
pub mod store;
