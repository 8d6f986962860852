/** What the session API needs to know about the cluster: its live nodes and where a caller is. */
import type { Membership } from './membership.ts';
import type { NodeInfo } from './nodeInfo.ts';
import type { RegionResolver } from './region.ts';

export interface ClusterView {
  /** Live nodes (this one included). */
  nodes(): NodeInfo[];
  /** The region of a caller's IP address. */
  regionOf(ip: string): string;
}

export function clusterView(membership: Membership, regions: RegionResolver): ClusterView {
  return {
    nodes: () => membership.nodes(),
    regionOf: (ip) => regions.resolve(ip, membership.regions()),
  };
}
