import { P2pdError } from '../errors.ts';

/** A command-line option or `P2PD_*` variable that stops the start. */
export class ConfigError extends P2pdError {
  constructor(code: 'CONFIG_UNKNOWN_OPTION' | 'CONFIG_INVALID_VALUE' | 'CONFIG_MISSING_VALUE' | 'CONFIG_CONFLICT', message: string) {
    super(code, message, 400);
  }
}

export const unknownOption = (name: string): ConfigError =>
  new ConfigError('CONFIG_UNKNOWN_OPTION', `unknown option ${name} (see \`p2pd serve --help\`)`);

export const invalidValue = (name: string, value: string, expected: string): ConfigError =>
  new ConfigError('CONFIG_INVALID_VALUE', `invalid value for --${name}: ${JSON.stringify(value)} (expected ${expected})`);

export const missingValue = (name: string): ConfigError =>
  new ConfigError('CONFIG_MISSING_VALUE', `option --${name} needs a value`);

export const conflict = (message: string): ConfigError => new ConfigError('CONFIG_CONFLICT', message);
