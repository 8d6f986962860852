/**
 * Mosquitto's dynamic-security plugin, driven by p2pd: Mosquitto cannot read our tokens, so p2pd
 * verifies a token once (POST /v1/mqtt/credentials) and writes what it allows into the broker —
 * a client `username = sub` whose password is the token, with its own role `p2pd-client:<sub>`
 * holding the ACL of signaling/acl.ts. Commands go over `$CONTROL/dynamic-security/v1` on the
 * service's MQTT connection (its user needs the `admin` role, see deploy/mosquitto).
 *
 * Mosquitto 2.0 kicks every client of a role when an ACL is removed from it, and not when one is
 * added or a password changes: provisioning therefore only removes ACLs a new token no longer
 * grants, and a second device of the same id re-provisioning does not disconnect the first.
 */
import { randomUUID } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import type { ClientClaims } from '../auth/token.ts';
import type { Logger } from '../log.ts';
import { aclRules, type AclRule } from '../signaling/acl.ts';

const CONTROL_TOPIC = '$CONTROL/dynamic-security/v1';
const RESPONSE_TOPIC = '$CONTROL/dynamic-security/v1/response';

export const CLIENT_ROLE_PREFIX = 'p2pd-client:';

export interface DynsecAcl {
  readonly acltype: 'publishClientSend' | 'subscribeLiteral' | 'subscribePattern';
  readonly topic: string;
  readonly allow: boolean;
}

interface DynsecResponse {
  readonly command: string;
  readonly error?: string;
  readonly data?: Record<string, unknown>;
  readonly correlationData?: string;
}

/** The dynamic-security ACLs of a client's role (retain cannot be expressed: the service clears retained signals). */
export function dynsecAcls(rules: readonly AclRule[]): DynsecAcl[] {
  return rules.map((r) => ({
    acltype: r.action === 'publish' ? 'publishClientSend' : r.topic.includes('+') || r.topic.includes('#') ? 'subscribePattern' : 'subscribeLiteral',
    topic: r.topic,
    allow: true,
  }));
}

export class DynsecProvisioner {
  private readonly client: MqttClient;
  private readonly log: Logger;
  private readonly waiting = new Map<string, (r: DynsecResponse[]) => void>();
  /** One provisioning per id at a time (create races would fail half-way). */
  private readonly chains = new Map<string, Promise<unknown>>();
  private readonly timeoutMs: number;

  constructor(client: MqttClient, log: Logger, opts: { timeoutMs?: number } = {}) {
    this.client = client;
    this.log = log.child({ role: 'dynsec' });
    this.timeoutMs = opts.timeoutMs ?? 5000;
    client.on('message', (topic, payload) => {
      if (topic !== RESPONSE_TOPIC) return;
      let responses: DynsecResponse[];
      try {
        responses = (JSON.parse(payload.toString('utf8')) as { responses?: DynsecResponse[] }).responses ?? [];
      } catch {
        return;
      }
      // Every node hears every response; the correlation data says whose it is.
      const id = responses[0]?.correlationData;
      const resolve = id === undefined ? undefined : this.waiting.get(id);
      if (resolve) {
        this.waiting.delete(id as string);
        resolve(responses);
      }
    });
  }

  async start(): Promise<void> {
    const [granted] = await this.client.subscribeAsync(RESPONSE_TOPIC, { qos: 1 });
    if (granted?.qos === 128) throw new Error(`the broker refused ${RESPONSE_TOPIC}: the service user needs the dynamic-security admin role`);
  }

  /** Sends commands in one request; resolves with one response per command. */
  async send(commands: ReadonlyArray<Record<string, unknown>>): Promise<DynsecResponse[]> {
    const id = randomUUID();
    const tagged = commands.map((c) => ({ ...c, correlationData: id }));
    const answer = new Promise<DynsecResponse[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error('the broker did not answer a dynamic-security command'));
      }, this.timeoutMs);
      this.waiting.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
    });
    await this.client.publishAsync(CONTROL_TOPIC, JSON.stringify({ commands: tagged }), { qos: 1 });
    return answer;
  }

  /** Makes `claims.sub` able to log in with `password` (its token) with exactly the rights of its claims. */
  provision(claims: ClientClaims, password: string): Promise<void> {
    const previous = this.chains.get(claims.sub) ?? Promise.resolve();
    const work = previous.catch(() => undefined).then(() => this.provisionNow(claims, password));
    this.chains.set(claims.sub, work);
    void work.catch(() => undefined).then(() => {
      if (this.chains.get(claims.sub) === work) this.chains.delete(claims.sub);
    });
    return work;
  }

  private async provisionNow(claims: ClientClaims, password: string): Promise<void> {
    const username = claims.sub;
    const rolename = `${CLIENT_ROLE_PREFIX}${username}`;
    const wanted = dynsecAcls(aclRules(claims));
    const [role] = await this.send([{ command: 'getRole', rolename }]);
    if (role?.error !== undefined) {
      const created = await this.send([{ command: 'createRole', rolename, acls: wanted }]);
      failOn(created, 'createRole');
    } else {
      const have = ((role?.data?.role as { acls?: DynsecAcl[] } | undefined)?.acls ?? []).map((a) => ({ acltype: a.acltype, topic: a.topic, allow: a.allow }));
      const key = (a: DynsecAcl): string => `${a.acltype} ${a.topic} ${a.allow}`;
      const haveKeys = new Set(have.map(key));
      const wantKeys = new Set(wanted.map(key));
      const commands: Record<string, unknown>[] = [
        ...wanted.filter((a) => !haveKeys.has(key(a))).map((a) => ({ command: 'addRoleACL', rolename, ...a })),
        ...have.filter((a) => !wantKeys.has(key(a))).map((a) => ({ command: 'removeRoleACL', rolename, acltype: a.acltype, topic: a.topic })),
      ];
      if (commands.length > 0) failOn(await this.send(commands), 'role ACL update');
    }
    const [client] = await this.send([{ command: 'getClient', username }]);
    if (client?.error !== undefined) {
      failOn(await this.send([{ command: 'createClient', username, password, roles: [{ rolename }] }]), 'createClient');
    } else {
      failOn(await this.send([{ command: 'setClientPassword', username, password }]), 'setClientPassword');
    }
    this.log.debug({ username }, 'client provisioned in Mosquitto');
  }

  /** Removes an id's client and role (its connections are closed by Mosquitto). */
  async remove(username: string): Promise<void> {
    await this.send([{ command: 'deleteClient', username }, { command: 'deleteRole', rolename: `${CLIENT_ROLE_PREFIX}${username}` }]);
  }
}

function failOn(responses: readonly DynsecResponse[], what: string): void {
  const bad = responses.find((r) => r.error !== undefined);
  if (bad) throw new Error(`dynamic-security ${what} failed: ${bad.error}`);
}
