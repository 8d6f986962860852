/**
 * An MQTT.js client for tests of the broker's login bounds (test/integration/signaling-*.test.ts):
 * it records the CONNACK of each of its connections and does not reconnect by itself.
 */
import { randomBytes } from 'node:crypto';
import { connect, type MqttClient } from 'mqtt';

/** An MQTT.js client that records the CONNACK of each of its connections (0: logged in, else the return code). */
export interface Login {
  readonly client: MqttClient;
  readonly connacks: readonly number[];
  /** No CONNACK yet on its current connection: its login is in flight. */
  readonly waiting: boolean;
  /** The CONNACK of its current connection, once it comes. */
  answer(timeoutMs?: number): Promise<number>;
  /** Connects again (MQTT.js does not after a refusal) and resolves with that connection's CONNACK. */
  retry(timeoutMs?: number): Promise<number>;
  end(): void;
}

export function login(url: string, id: string, password: string): Login {
  const client = connect(url, {
    clientId: `${id}-${randomBytes(4).toString('hex')}`, username: id, password,
    reconnectPeriod: 0, connectTimeout: 60_000, protocolVersion: 4, clean: true,
  });
  const connacks: number[] = [];
  let connections = 1;
  const listeners = new Set<() => void>();
  const record = (code: number): void => {
    connacks.push(code);
    for (const l of [...listeners]) l();
  };
  client.on('connect', () => record(0));
  client.on('error', (err) => {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'number') record(code);
  });
  const answerOf = (n: number, timeoutMs: number): Promise<number> => new Promise((resolve, reject) => {
    const check = (): void => {
      if (connacks.length < n) return;
      clearTimeout(timer);
      listeners.delete(check);
      resolve(connacks[n - 1] as number);
    };
    const timer = setTimeout(() => {
      listeners.delete(check);
      reject(new Error(`${id}: no CONNACK within ${timeoutMs} ms (connection ${n})`));
    }, timeoutMs);
    listeners.add(check);
    check();
  });
  return {
    client,
    connacks,
    get waiting() {
      return connacks.length < connections;
    },
    answer: (timeoutMs = 20_000) => answerOf(connections, timeoutMs),
    retry(timeoutMs = 20_000) {
      connections++;
      client.reconnect();
      return answerOf(connections, timeoutMs);
    },
    end: () => client.end(true),
  };
}

