/** Per-socket limits of the sync server, with their defaults (see SyncServerOptions.limits). */
export interface ServerLimits {
  /** Ops a socket may send per second (burst = 2 s worth). Default 5000. */
  opsPerSecond: number
  /** Bytes a socket may send per second (burst = 2 s worth). Default 16 MB. */
  bytesPerSecond: number
  /** Messages of any kind a socket may send per second (burst = 2 s worth). Default 2000. */
  messagesPerSecond: number
  /** Requests of one socket being processed at once; more are refused until some finish. Default 256. */
  maxPending: number
  /** Largest message in bytes (socket.io maxHttpBufferSize); a bigger frame closes the connection. Default 4 MB. */
  maxPayload: number
  /** Packets queued for one socket before it is dropped as a slow consumer. Default 10000. */
  maxBufferedPackets: number
  /** Bytes queued for one socket before it is dropped as a slow consumer. Default 32 MB. */
  maxBufferedBytes: number
  /** Largest presence state in bytes (as JSON). Default 4096. */
  presenceBytes: number
  /** Presence updates per second per socket. Default 20. */
  presencePerSecond: number
  /** Documents a socket may join per second (burst = 2 s worth); joining one already joined is free. Default 50. */
  joinsPerSecond: number
  /** Documents one socket may have joined at once; leave one to join another. Default 256. */
  docsPerSocket: number
  /**
   * History entries a socket may ask for per second, counted by each request's `limit` (default 100;
   * burst = 2 s worth): 20 requests of 100, or 2 of 1000. Default 2000.
   */
  historyPerSecond: number
}

export const DEFAULT_LIMITS: ServerLimits = {
  opsPerSecond: 5000,
  bytesPerSecond: 16_000_000,
  messagesPerSecond: 2000,
  maxPending: 256,
  maxPayload: 4_000_000,
  maxBufferedPackets: 10_000,
  maxBufferedBytes: 32_000_000,
  presenceBytes: 4096,
  presencePerSecond: 20,
  joinsPerSecond: 50,
  docsPerSocket: 256,
  historyPerSecond: 2000,
}

/**
 * Approximate JSON size of a decoded message in bytes. Iterative (deep input cannot overflow the
 * stack) and stops counting once past `cap`, so it costs at most what the limit allows.
 */
export function sizeOf(value: unknown, cap = Infinity): number {
  let n = 0
  const stack: unknown[] = [value]
  while (stack.length > 0 && n <= cap) {
    const v = stack.pop()
    if (typeof v === 'string') n += v.length + 2
    else if (v === null || v === undefined || typeof v === 'number' || typeof v === 'boolean') n += 5
    else if (typeof v === 'function') n += 0
    else if (ArrayBuffer.isView(v)) n += v.byteLength
    else if (v instanceof ArrayBuffer) n += v.byteLength
    else if (Array.isArray(v)) {
      n += 1 + v.length
      for (let i = 0; i < v.length; i++) stack.push(v[i])
    } else if (typeof v === 'object') {
      n += 2
      for (const k of Object.keys(v)) {
        n += k.length + 4
        stack.push((v as Record<string, unknown>)[k])
      }
    } else n += 8
  }
  return n
}

/** Exact JSON size in bytes of a value already validated (bounded depth). */
export function jsonBytes(value: unknown): number {
  try {
    const s = JSON.stringify(value)
    return s === undefined ? 0 : Buffer.byteLength(s)
  } catch {
    return Infinity
  }
}
