/**
 * The web viewer on the HTTP port: `/` (web/index.html), `/assets/viewer.js` (web/src/viewer.ts
 * and the browser SDK, bundled with esbuild into web/dist on the first request, then served from
 * memory) and `/viewer-config.json` (whether the page may offer a development token to this caller).
 *
 * esbuild is a development dependency: without it a bundle already in web/dist is served, and
 * without either the page answers 503 WEB_UNAVAILABLE saying what to run.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { P2pdError, webUnavailable } from '../errors.ts';
import type { Logger } from '../log.ts';

export interface WebOptions {
  readonly log: Logger;
  /** Whether POST /v1/dev/token would give this caller a token (registered, and the caller in reach). */
  readonly devTokens: (callerIp: string | undefined) => boolean;
  /** The web/ folder (default: the checkout's). */
  readonly webDir?: string;
}

interface Bundle {
  readonly js: Buffer;
  readonly map: Buffer | undefined;
}

/** Bundles web/src/viewer.ts for the browser into web/dist/viewer.js (+ .map). */
export async function buildViewer(webDir: string): Promise<Bundle> {
  const outfile = `${webDir}/dist/viewer.js`;
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch {
    try {
      return { js: await readFile(outfile), map: await readFile(`${outfile}.map`).catch(() => undefined) };
    } catch {
      throw webUnavailable('the viewer is not built and esbuild is missing: run `npm ci` (it installs the development dependencies) in the checkout');
    }
  }
  const result = await esbuild.build({
    entryPoints: [`${webDir}/src/viewer.ts`],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['chrome110', 'firefox115', 'safari16'],
    sourcemap: 'external',
    minify: true,
    write: false,
    outfile,
    logLevel: 'silent',
    legalComments: 'none',
  });
  let js: Buffer | undefined;
  let map: Buffer | undefined;
  for (const f of result.outputFiles) {
    if (f.path.endsWith('.js')) js = Buffer.from(f.contents);
    else if (f.path.endsWith('.map')) map = Buffer.from(f.contents);
  }
  if (!js) throw webUnavailable('esbuild produced no bundle');
  // Kept on disk too (gitignored): a later start without esbuild can still serve it.
  try {
    await mkdir(`${webDir}/dist`, { recursive: true });
    await writeFile(outfile, js);
    if (map) await writeFile(`${outfile}.map`, map);
  } catch { /* a read-only checkout: memory is enough */ }
  return { js, map };
}

export function registerWebRoutes(app: FastifyInstance, opts: WebOptions): void {
  const webDir = opts.webDir ?? fileURLToPath(new URL('../../web', import.meta.url));
  let bundle: Promise<Bundle> | undefined;
  const getBundle = (): Promise<Bundle> => {
    if (!bundle) {
      const started = Date.now();
      bundle = buildViewer(webDir).then((b) => {
        opts.log.info({ ms: Date.now() - started, bytes: b.js.length }, 'web viewer built');
        return b;
      }, (err: unknown) => {
        bundle = undefined; // try again on the next request
        opts.log.error({ err }, 'web viewer build failed');
        throw err instanceof P2pdError ? err : webUnavailable(`the viewer could not be built: ${(err as Error).message}`);
      });
    }
    return bundle;
  };
  let html: Promise<Buffer> | undefined;

  app.get('/', async (_req, reply) => {
    html ??= readFile(`${webDir}/index.html`);
    // Start bundling while the browser parses the page.
    getBundle().catch(() => undefined);
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(await html);
  });
  app.get('/assets/viewer.js', async (_req, reply) => {
    const b = await getBundle();
    return reply.type('text/javascript; charset=utf-8').header('cache-control', 'no-cache').send(b.js);
  });
  app.get('/assets/viewer.js.map', async (_req, reply) => {
    const b = await getBundle();
    if (!b.map) return reply.status(404).send({ error: { code: 'NOT_FOUND', message: 'no source map' } });
    return reply.type('application/json').send(b.map);
  });
  // Per caller: a page opened from another machine asks for a token instead of offering one it would be refused.
  app.get('/viewer-config.json', async (req, reply) => {
    void reply.header('cache-control', 'no-store');
    return { devTokens: opts.devTokens(req.socket.remoteAddress) };
  });
}
