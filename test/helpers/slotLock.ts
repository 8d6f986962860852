/**
 * A numbered slot that no other test process on this machine holds now: one of `slots` lock files
 * in `dir`, created with this process's pid in it (atomically, `wx`). A free slot is taken first,
 * from `first` on; then a slot whose holder has died (a killed run) is taken over. Test files run
 * in parallel processes, and some resources they share are not theirs alone: relay port ranges
 * (turnClient.ts), the subnets of network namespaces (netns.ts).
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface SlotLock {
  readonly slot: number;
  release(): void;
}

/** The process whose pid a lock file holds is alive. */
function holderAlive(file: string): boolean {
  try {
    const pid = Number(readFileSync(file, 'utf8'));
    if (!Number.isInteger(pid) || pid <= 0) return false;
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A slot of `dir`, or undefined when every one is held by a live process. */
export function claimSlot(dir: string, slots: number, first: number): SlotLock | undefined {
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < slots * 2; i++) {
    const slot = (first + i) % slots;
    const file = join(dir, `${slot}.lock`);
    if (i >= slots && !holderAlive(file)) rmSync(file, { force: true });
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
    } catch {
      continue;
    }
    return { slot, release: () => rmSync(file, { force: true }) };
  }
  return undefined;
}
