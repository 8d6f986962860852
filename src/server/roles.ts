/**
 * The STUN/TURN roles of one process: the front door and, with the TURN role, the relay. Runs in
 * each worker process, or in the primary itself when --workers is 1.
 */
import type { Config } from '../config/config.ts';
import type { Logger } from '../log.ts';
import { StunServer } from './stunServer.ts';
import type { WorkerStats } from '../transport/ipc.ts';

export interface PacketRoles {
  stats(): WorkerStats;
  releaseSession(sessionId: string): void;
  stop(): Promise<void>;
}

export async function startPacketRoles(config: Config, log: Logger, reusePort: boolean): Promise<PacketRoles> {
  const stun = new StunServer(config, log);
  await stun.start(reusePort);
  return {
    stats: () => ({ allocations: 0, bps: 0 }),
    releaseSession: () => undefined,
    stop: () => stun.stop(),
  };
}
