import { pino, type Logger } from 'pino';
import type { LogLevel } from './config/config.ts';

export type { Logger };

/** The process logger: structured JSON on stdout; `role`/`worker` bound by the caller. */
export function createLogger(level: LogLevel, bindings: Record<string, unknown> = {}): Logger {
  return pino({ level, base: { pid: process.pid, ...bindings } });
}
