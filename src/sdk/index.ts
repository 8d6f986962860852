/** The platform-neutral SDK surface; node.ts and browser.ts add the platform. */
export { AppConnection, connect as connectWithPlatform } from './app.ts';
export type { AppConnectionEvents, ConnectOptions, ConnectionState, ConnectionStats } from './app.ts';
export { DeviceServer, serve as serveWithPlatform, DEVICE_ERROR_CODES } from './device.ts';
export type { DeviceEvents, DeviceMedia, ServeOptions, ViewerInfo } from './device.ts';
export { SdkError, SDK_ERROR_CODES, isSdkError } from './errors.ts';
export type { SdkErrorCode } from './errors.ts';
export { devToken, normalizeServer } from './http.ts';
export type { IceServerInit, SessionInfo } from './http.ts';
export type { IcePolicy } from './icePolicy.ts';
export { NAT_TYPES, natDetector } from './natDetect.ts';
export type { NatDetector, NatProbe, NatType } from './natDetect.ts';
export type { PathKind, RemoteTrack, RtcPeer, RtcPlatform, VideoCodec } from './rtc.ts';
export { SignalingClient } from './signaling.ts';
export { percentile } from './stats.ts';
export { readTokenClaims } from './token.ts';
