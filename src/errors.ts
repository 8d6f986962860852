/**
 * The one error base of p2pd. Every area keeps its own `errors.ts` with stable upper-snake codes
 * (`STALE_NONCE`, `PEER_FORBIDDEN`, `DEVICE_OFFLINE`); the same code appears in HTTP answers,
 * MQTT `error` messages and logs. Never throw strings.
 */
export class P2pdError extends Error {
  readonly code: string;
  /** HTTP status when the error reaches an HTTP client (400 unless an area says otherwise). */
  readonly statusCode: number;

  constructor(code: string, message: string, statusCode = 400, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.statusCode = statusCode;
  }

  toJSON(): { code: string; message: string } {
    return { code: this.code, message: this.message };
  }
}
