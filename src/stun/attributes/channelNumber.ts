import { Attr } from '../constants.ts';
import { StunEncodeError } from '../errors.ts';
import { readUint32 } from './value.ts';

/** CHANNEL-NUMBER (RFC 8656 §18.1): a 16-bit channel number, then 2 bytes RFFU. */
export const MIN_CHANNEL_NUMBER = 0x4000;
export const MAX_CHANNEL_NUMBER = 0x4fff;

/** The channel number as sent; whether it is in range is {@link isChannelNumber}'s call. */
export function readChannelNumber(value: Buffer): number {
  return readUint32(value, 'CHANNEL-NUMBER', Attr.ChannelNumber) >>> 16;
}

/** RFC 8656 §12: channels 0x4000 through 0x4FFF. */
export function isChannelNumber(n: number): boolean {
  return n >= MIN_CHANNEL_NUMBER && n <= MAX_CHANNEL_NUMBER;
}

/** The 32-bit value, for `MessageWriter.addUint32(Attr.ChannelNumber, …)`. */
export function channelNumberValue(channel: number): number {
  if (!Number.isInteger(channel) || !isChannelNumber(channel)) {
    throw new StunEncodeError('STUN_BAD_VALUE', `channel number 0x${channel.toString(16)}`);
  }
  return channel * 0x10000;
}
