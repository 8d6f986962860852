/**
 * The connectivity lab's run (docs/lab.md): every camera NAT × app NAT cell, under every network
 * condition, for every app stack, N attempts each. One internet and one p2pd for the whole run;
 * the two sites are rebuilt per cell, so a cell starts with empty NAT tables.
 *
 * A condition's delay and loss are end to end between the camera and the app: each of their two
 * links to the internet router carries half the one-way delay in each direction, and a loss rate
 * whose two crossings compound to the condition's (1 − √(1 − L)). p2pd's link carries what puts it
 * `p2pdMs` from either side: nothing when p2pd is midway (D/2, the seed's regional deployment), as
 * much as a site's link when it is as far as the peers are apart (D): docs/lab.md "Where p2pd is".
 */
import { chromiumAttempts, nodeAttempts, type AttemptResult, type Stack } from './connectivity.ts';
import { openBrowserApp, type BrowserApp } from './browser.ts';
import { shapeLinkAt, type LinkEnd, type Shaper } from './delay.ts';
import { halfway, type Attempt } from './report.ts';
import { startCamera, startService, type Service } from './service.ts';
import { Internet, type NatKind } from './sites.ts';

export interface Condition {
  /** One-way delay and loss between the camera and the app. */
  readonly delayMs: number;
  readonly lossPct: number;
  /** One-way delay between p2pd and either site: from delayMs / 2 (midway) to delayMs. */
  readonly p2pdMs: number;
}

/** Where p2pd sits between the two sites: midway (in the region), or as far as they are apart. */
export type P2pdPlace = 'mid' | 'far';

export function conditionAt(delayMs: number, lossPct: number, place: P2pdPlace): Condition {
  return { delayMs, lossPct, p2pdMs: place === 'mid' ? halfway(delayMs) : delayMs };
}

export interface LabPlan {
  readonly cells: readonly (readonly [NatKind, NatKind])[];
  readonly conditions: readonly Condition[];
  readonly stacks: readonly Stack[];
  readonly attempts: number;
}

/**
 * Shapes both directions of the three links for `c`, each at its internet-router end (so no NAT
 * router ever holds a new flow's first packet before its NAT rule ran: docs/lab.md "Delay and
 * loss"); returns what undoes it.
 */
async function shapeAll(serverEnd: LinkEnd, siteEnds: readonly LinkEnd[], c: Condition): Promise<Shaper[]> {
  const half = halfway(c.delayMs);
  if (c.p2pdMs < half || c.p2pdMs > c.delayMs) throw new RangeError(`p2pd must be ${half}..${c.delayMs} ms from each site, not ${c.p2pdMs}`);
  const siteLink = { delayMs: half, lossPct: 100 * (1 - Math.sqrt(1 - c.lossPct / 100)) };
  const serverLink = { delayMs: c.p2pdMs - half, lossPct: c.p2pdMs > half ? siteLink.lossPct : 0 };
  const shapers: Shaper[] = [];
  let queue = 1;
  for (const [end, shaping] of [[serverEnd, serverLink] as const, ...siteEnds.map((e) => [e, siteLink] as const)]) {
    if (shaping.delayMs === 0 && shaping.lossPct === 0) continue;
    shapers.push(await shapeLinkAt(end, shaping, queue));
    queue += 2;
  }
  return shapers;
}

export interface LabRun {
  readonly attempts: Attempt[];
  /** What the service's /metrics said at the end (for the telemetry check). */
  readonly metrics: string;
}

export async function runMatrix(plan: LabPlan, log: (line: string) => void, onAttempt?: (a: Attempt) => void): Promise<LabRun> {
  const net = new Internet();
  const stop = (): void => { net.destroy(); process.exit(130); };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let service: Service | undefined;
  const attempts: Attempt[] = [];
  try {
    service = await startService(net.server);
    let n = 0;
    for (const [cameraKind, appKind] of plan.cells) {
      const cameraSite = net.addSite('camera', cameraKind);
      const appSite = net.addSite('app', appKind);
      const deviceId = `cam-${++n}`;
      const camera = await startCamera(cameraSite.host, deviceId, service.tls.caFile);
      let browser: BrowserApp | undefined;
      try {
        for (const condition of plan.conditions) {
          const shapers = await shapeAll(net.serverLink.a, [cameraSite.uplink.b, appSite.uplink.b], condition);
          try {
            for (const stack of plan.stacks) {
              let results: AttemptResult[];
              if (stack === 'node') results = await nodeAttempts(appSite.host, deviceId, plan.attempts, service.tls.caFile);
              else {
                browser ??= await openBrowserApp(appSite.host, service.tls.spki);
                results = await chromiumAttempts(browser, deviceId, plan.attempts);
              }
              for (const r of results) {
                const { natType, ...rest } = r;
                const cameraNat = camera.natType();
                const attempt: Attempt = {
                  camera: cameraKind, app: appKind, stack, ...condition, ...rest,
                  natType: { ...(cameraNat === undefined ? {} : { camera: cameraNat }), ...(natType === undefined ? {} : { app: natType }) },
                };
                attempts.push(attempt);
                onAttempt?.(attempt);
              }
              log(cellLine(cameraKind, appKind, stack, condition, results));
            }
          } finally {
            for (const s of shapers) s.stop();
          }
        }
      } finally {
        await browser?.close();
        camera.stop();
      }
    }
    return { attempts, metrics: service.get('/metrics') };
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    service?.stop();
    net.destroy();
  }
}

function cellLine(camera: NatKind, app: NatKind, stack: Stack, c: Condition, rs: readonly AttemptResult[]): string {
  const ok = rs.filter((r) => r.ok);
  const direct = ok.filter((r) => r.path === 'direct').length;
  const setups = ok.map((r) => r.setupMs ?? 0).sort((a, b) => a - b);
  const p95 = setups[Math.max(0, Math.ceil(setups.length * 0.95) - 1)];
  const errors = [...new Set(rs.filter((r) => !r.ok).map((r) => r.error))].join(',');
  return `${camera.padEnd(19)} ${app.padEnd(19)} ${stack.padEnd(8)} ${`${c.delayMs}ms/${c.lossPct}%/p2pd ${c.p2pdMs}ms`.padEnd(19)} ${`${ok.length}/${rs.length}`.padEnd(6)} direct ${String(direct).padEnd(3)} setup P95 ${p95 ?? '-'} ms${errors ? `  errors: ${errors}` : ''}`;
}
