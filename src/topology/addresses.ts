/**
 * The address plan of a test topology. Only benchmarking space (198.18.0.0/15, RFC 2544) and
 * unique-local IPv6 (fd00::/8) are used, and only inside namespaces: nothing here can reach a
 * real network even if a route leaked.
 */
/** The three hosts of a topology: the client, the service's first host, the host it moves to. */
export type HostRole = 'client' | 'host-a' | 'host-b';
/** Every role, in build order. */
export const HOST_ROLES: readonly HostRole[] = ['client', 'host-a', 'host-b'];

/** A host's IPv4 address, and its IPv6 address when the topology has IPv6. */
export interface AddressPair {
  ipv4: string;
  /** Absent when the topology was built without IPv6. */
  ipv6?: string;
}

/** Underlay: one flat /24 and /64 on the bridge. */
export const UNDERLAY_PREFIX = { ipv4: 24, ipv6: 64 } as const;
/** Each host's address on the bridge (198.18.0.0/24, fd00::/64). */
export const UNDERLAY: Record<HostRole, { ipv4: string; ipv6: string }> = {
  client: { ipv4: '198.18.0.1', ipv6: 'fd00::1' },
  'host-a': { ipv4: '198.18.0.2', ipv6: 'fd00::2' },
  'host-b': { ipv4: '198.18.0.3', ipv6: 'fd00::3' },
};

/**
 * The service address: the one clients connect to, and the one that moves. A host route (/32,
 * /128) inside the underlay subnet, so the client reaches it on-link through its neighbour
 * entry, which is exactly what a move has to update.
 */
export const SERVICE = { ipv4: '198.18.0.100', ipv6: 'fd00::100' } as const;

/** The interface name inside each host namespace. */
export const HOST_INTERFACE = 'eth0';

/**
 * The VXLAN overlay variant (COAT-like: the hosts talk over a tunnel on the underlay, and the
 * service address lives on the tunnel): a second flat segment, 198.19.0.0/24 and fd01::/64,
 * carried by VXLAN between the underlay addresses.
 */
export const OVERLAY_INTERFACE = 'vx0';
export const OVERLAY_VNI = 42;
export const OVERLAY_PORT = 4789;
/** Each host's address on the VXLAN overlay (198.19.0.0/24, fd01::/64). */
export const OVERLAY: Record<HostRole, { ipv4: string; ipv6: string }> = {
  client: { ipv4: '198.19.0.1', ipv6: 'fd01::1' },
  'host-a': { ipv4: '198.19.0.2', ipv6: 'fd01::2' },
  'host-b': { ipv4: '198.19.0.3', ipv6: 'fd01::3' },
};
/** The moving service address when the topology uses the overlay. */
export const OVERLAY_SERVICE = { ipv4: '198.19.0.100', ipv6: 'fd01::100' } as const;
