/** Machine-readable error codes used by the client, the server and the wire protocol. */
export type ZyncErrorCode =
  | 'BAD_REQUEST'
  | 'UNKNOWN_EVENT'
  | 'UNSAFE_PATH'
  | 'TOO_DEEP'
  | 'TOO_LARGE'
  | 'BAD_VECTOR'
  | 'CLOCK_SKEW'
  | 'UNKNOWN_HISTORY'
  | 'CLIENT_MISMATCH'
  | 'SHAPE_MISMATCH'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'RATE_LIMITED'
  | 'PROTOCOL_VERSION'
  | 'NOT_JOINED'
  | 'INTERNAL'
  | 'TIMEOUT'
  | 'DISCONNECTED'
  | 'STORAGE_FULL'
  | 'STORAGE_UNAVAILABLE'
  | 'CONFLICT_NOT_FOUND'
  | 'CONFLICT_RESOLVED'
  | 'INVALID_RESOLUTION'
  | 'DEAD_LETTER_NOT_FOUND'
  | 'DESTROYED'

/** Marks every ZyncError, whichever copy of zync made it (see ZyncError[Symbol.hasInstance]). */
const BRAND = Symbol.for('zync.ZyncError')

/** Every error zync raises or reports. `retryable` says whether sending the same thing again can succeed. */
export class ZyncError extends Error {
  /**
   * `err instanceof ZyncError` holds for a ZyncError of any copy of zync in the process (of this version
   * or later): the CLI's own bundle of the server, `require('zync/server')` beside `import` (CommonJS and
   * ESM builds), two installed versions. By class alone, an `authenticate` module's `ZyncError('INTERNAL', ..., {
   * retryable: true })` under `zync-server` became a permanent UNAUTHENTICATED refusal. Subclasses
   * keep the usual check.
   */
  static override [Symbol.hasInstance](v: unknown): boolean {
    if (this !== ZyncError) return Function.prototype[Symbol.hasInstance].call(this, v)
    return v instanceof Error && (v as unknown as Record<symbol, unknown>)[BRAND] === true
  }
  readonly code: ZyncErrorCode
  readonly retryable: boolean
  readonly opId?: string
  /** RATE_LIMITED: milliseconds until the server admits the same request again. */
  readonly retryAfter?: number
  constructor(code: ZyncErrorCode, message: string, options: { retryable?: boolean; opId?: string; retryAfter?: number; cause?: unknown } = {}) {
    super(message.startsWith('[zync]') ? message : `[zync] ${message}`, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'ZyncError'
    this.code = code
    this.retryable = options.retryable ?? false
    if (options.opId !== undefined) this.opId = options.opId
    if (options.retryAfter !== undefined) this.retryAfter = options.retryAfter
  }

  /** JSON keeps the message (an Error's is not enumerable): `JSON.stringify(store.sync.status())` shows why. */
  toJSON(): { name: string; code: ZyncErrorCode; message: string; retryable: boolean; opId?: string; retryAfter?: number } {
    return { name: this.name, code: this.code, message: this.message, retryable: this.retryable, ...(this.opId === undefined ? {} : { opId: this.opId }), ...(this.retryAfter === undefined ? {} : { retryAfter: this.retryAfter }) }
  }
}

Object.defineProperty(ZyncError.prototype, BRAND, { value: true })

/** The wire shape of a refusal: `{ ok: false, code, message, retryable, opId?, retryAfter? }`. */
export interface WireError {
  ok: false
  code: ZyncErrorCode
  message: string
  retryable: boolean
  opId?: string
  /** RATE_LIMITED: milliseconds until the same request would be admitted. */
  retryAfter?: number
}

export function toWireError(err: unknown, opId?: string): WireError {
  if (err instanceof ZyncError) {
    const w: WireError = { ok: false, code: err.code, message: err.message, retryable: err.retryable }
    const id = err.opId ?? opId
    if (id !== undefined) w.opId = id
    if (err.retryAfter !== undefined) w.retryAfter = err.retryAfter
    return w
  }
  const w: WireError = { ok: false, code: 'INTERNAL', message: '[zync] internal server error', retryable: true }
  if (opId !== undefined) w.opId = opId
  return w
}

export function fromWireError(w: WireError): ZyncError {
  const retryAfter = typeof w.retryAfter === 'number' && w.retryAfter >= 0 && w.retryAfter < 3_600_000 ? w.retryAfter : undefined
  return new ZyncError(w.code, w.message, { retryable: w.retryable, ...(w.opId === undefined ? {} : { opId: w.opId }), ...(retryAfter === undefined ? {} : { retryAfter }) })
}

/** Refusals another attempt with the same credentials or client cannot fix: the store stops trying and goes offline with the error. */
export const REFUSAL_CODES: ReadonlySet<string> = new Set<ZyncErrorCode>(['UNAUTHENTICATED', 'FORBIDDEN', 'PROTOCOL_VERSION'])

/** The store is offline because the server refused it for good (see REFUSAL_CODES), not because the network is down. */
export function isRefusal(s: { connection: string; error?: { code: string } | undefined }): boolean {
  return s.connection === 'offline' && s.error !== undefined && REFUSAL_CODES.has(s.error.code)
}

/** True when the error (or one it wraps, as Dexie's AbortError does) is a quota error. */
export function isQuotaError(err: unknown): boolean {
  let e: unknown = err
  for (let i = 0; i < 5 && e; i++) {
    const x = e as { name?: string; inner?: unknown; cause?: unknown }
    if (x.name === 'QuotaExceededError' || x.name === 'QuotaExceeded') return true
    e = x.inner ?? x.cause
  }
  return false
}
