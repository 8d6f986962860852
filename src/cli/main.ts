/** The `p2pd` command: dispatches to its subcommands. Errors print one clear line and exit 1/2. */
import { P2pdError } from '../errors.ts';
import { serve, SERVE_HELP } from './serve.ts';
import { natType, NAT_TYPE_HELP } from './natType.ts';
import { token, TOKEN_HELP } from './token.ts';
import { device, DEVICE_HELP } from './device.ts';
import { connect, CONNECT_HELP } from './connect.ts';

const USAGE = `usage: p2pd <command> [options]

commands:
  serve       run the server (STUN, TURN, signaling, HTTP API)
  nat-type    RFC 5780 NAT behaviour discovery against a STUN server
  token       print a signed client token (JWT)
  device      a simulated camera
  connect     a command-line app peer

\`p2pd <command> --help\` lists a command's options.
`;

interface Command {
  readonly help: string;
  run(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<void>;
}

const COMMANDS: Record<string, Command> = {
  serve: { help: SERVE_HELP, run: serve },
  'nat-type': { help: NAT_TYPE_HELP, run: natType },
  token: { help: TOKEN_HELP, run: token },
  device: { help: DEVICE_HELP, run: device },
  connect: { help: CONNECT_HELP, run: connect },
};

async function main(argv: readonly string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    process.stderr.write(`p2pd: unknown command ${JSON.stringify(name)}\n\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(cmd.help);
    return;
  }
  await cmd.run(rest, process.env);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof P2pdError) {
    process.stderr.write(`p2pd: ${err.message} [${err.code}]\n`);
    process.exit(2);
  }
  process.stderr.write(`p2pd: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
