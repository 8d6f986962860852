/**
 * Reloading the TURN TLS certificate and key without a restart (docs/operations.md "Reloading
 * the TLS certificate"): on SIGHUP, and when the files change on disk (their folders are watched,
 * so a certbot symlink swap or a Kubernetes secret update is seen too). The pair is read, checked
 * by loading it (a certificate and a key that do not belong together fail here), and handed to
 * `apply`, which gives it to the TLS listeners: new connections get it, open ones keep theirs. A
 * pair that does not load is logged as an error and the old one stays.
 */
import { watch, readFileSync, type FSWatcher } from 'node:fs';
import { dirname, basename } from 'node:path';
import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import type { Logger } from '../log.ts';
import { tlsReloadsTotal } from '../metrics/metrics.ts';

export interface TlsReloaderOptions {
  readonly certFile: string;
  readonly keyFile: string;
  readonly log: Logger;
  /** Installs a checked pair (in this process, or sent to the workers); may throw. */
  readonly apply: (cert: Buffer, key: Buffer) => void;
  /** Quiet time after the last change of the files before they are read (a renewal writes both). */
  readonly debounceMs?: number;
}

export type ReloadCause = 'SIGHUP' | 'file change';

export class TlsReloader {
  private readonly opts: TlsReloaderOptions;
  private cert: Buffer;
  private key: Buffer;
  private readonly watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(opts: TlsReloaderOptions) {
    this.opts = opts;
    // The pair the listeners started with (config.ts checked that both files read).
    this.cert = readFileSync(opts.certFile);
    this.key = readFileSync(opts.keyFile);
  }

  /**
   * Reads and installs the pair now. Returns 'ok' when a new pair went in, 'unchanged' when the
   * files hold the pair in use, 'error' when they could not be read or loaded (logged; the old
   * pair stays).
   */
  reload(cause: ReloadCause): 'ok' | 'unchanged' | 'error' {
    const { certFile, keyFile, log } = this.opts;
    let cert: Buffer;
    let key: Buffer;
    try {
      cert = readFileSync(certFile);
      key = readFileSync(keyFile);
      if (cert.equals(this.cert) && key.equals(this.key)) {
        if (cause === 'SIGHUP') log.info({ cause, certFile }, 'TLS certificate unchanged');
        return 'unchanged';
      }
      tls.createSecureContext({ cert, key });
      this.opts.apply(cert, key);
    } catch (err) {
      tlsReloadsTotal.labels('error').inc();
      log.error({ err, cause, certFile, keyFile }, 'TLS certificate reload failed; the old certificate stays');
      return 'error';
    }
    this.cert = cert;
    this.key = key;
    tlsReloadsTotal.labels('ok').inc();
    log.info({ cause, certFile, ...describe(cert) }, 'TLS certificate reloaded');
    return 'ok';
  }

  /** Reloads (after `debounceMs` of quiet) whenever something changes next to the two files. */
  watch(): void {
    const names = new Set([basename(this.opts.certFile), basename(this.opts.keyFile)]);
    for (const dir of new Set([dirname(this.opts.certFile), dirname(this.opts.keyFile)])) {
      try {
        const w = watch(dir, { persistent: false }, (_event, name) => {
          // A named event about another file is not ours; an unnamed one, or a swap of a
          // hidden folder (Kubernetes' ..data), may be.
          if (name !== null && !names.has(name) && !name.startsWith('..')) return;
          this.schedule();
        });
        w.on('error', (err) => this.opts.log.warn({ err, dir }, 'watching the TLS files stopped; SIGHUP still reloads'));
        this.watchers.push(w);
      } catch (err) {
        this.opts.log.warn({ err, dir }, 'cannot watch the TLS files; SIGHUP reloads them');
      }
    }
  }

  stop(): void {
    clearTimeout(this.timer);
    for (const w of this.watchers.splice(0)) w.close();
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.reload('file change'), this.opts.debounceMs ?? 500);
    this.timer.unref();
  }
}

/** What the logs say of a certificate: its subject, expiry and SHA-256 fingerprint. */
function describe(cert: Buffer): Record<string, string> {
  try {
    const x = new X509Certificate(cert);
    return { subject: x.subject.replace(/\n/g, ', '), validTo: x.validTo, fingerprint256: x.fingerprint256 };
  } catch {
    return {};
  }
}
