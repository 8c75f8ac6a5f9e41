import { createServer, type IncomingMessage, type Server as HttpServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Server, type Socket } from 'socket.io'
import { ZyncError, toWireError, type WireError } from '../core/errors'
import { decodeHlc } from '../core/hlc'
import { EVENTS, PROTOCOL_VERSION, type HistoryResponse, type JoinResponse, type OpsResponse } from '../core/protocol'
import { DocHost } from './doc-host'
import { toChange } from './doc-state'
import { createLogger, type LogLevel, type Logger } from './logger'
import { createMetrics, type Metrics } from './metrics'
import { PresenceHub } from './presence-hub'
import { historySchema, joinSchema, leaveSchema, opsSchema, parse, presenceSchema } from './schema'
import { createStorage, type StorageOptions } from './storage/index'
import type { ServerStorage } from './storage/types'
import { TokenBucket } from './rate-limit'

export interface ZyncUser {
  id: string
  name?: string
  color?: string
  [key: string]: unknown
}

export type Action = 'read' | 'write' | 'presence'

export interface Handshake {
  auth: Record<string, unknown>
  headers: IncomingMessage['headers']
  address: string
}

export interface SyncServerOptions {
  /** TCP port. Default 4000; 0 picks a free one. */
  port?: number
  /** Interface to listen on. Default '127.0.0.1'. */
  host?: string
  /** Where documents live. Default `{ kind: 'sqlite', file: './zync.db' }`. */
  storage?: StorageOptions | ServerStorage
  /** Fan out across several server processes through Redis (socket.io Redis adapter). Default: none. */
  redis?: { url: string }
  /**
   * Turns the handshake (socket.io `auth`, headers) into a user, or throws to refuse the connection
   * (the client gets connect_error with `data.code` 'UNAUTHENTICATED'). Runs on every connection and
   * reconnection. Default: `{ id: auth.userId ?? 'anonymous' }`.
   */
  authenticate?: (handshake: Handshake) => ZyncUser | Promise<ZyncUser>
  /** May `user` do `action` on `doc`? Checked on join, every batch, history and presence. Default: yes. */
  authorize?: (user: ZyncUser, doc: string, action: Action) => boolean | Promise<boolean>
  /**
   * Allowed browser origins. Default: only http(s)://localhost, 127.0.0.1 and [::1] on any port, which
   * closes cross-site WebSocket hijacking. '*' allows any. Clients that send no Origin (Node) are allowed.
   */
  cors?: string[] | '*'
  limits?: {
    /** Ops a socket may send per second (burst = 2 s worth). Default 5000. */
    opsPerSecond?: number
    /** Bytes a socket may send per second (burst = 2 s worth). Default 16 MB. */
    bytesPerSecond?: number
    /** Largest message in bytes (socket.io maxHttpBufferSize). Default 4 MB. */
    maxPayload?: number
    /** Packets buffered for one socket before it is dropped as a slow consumer. Default 10000. */
    maxBufferedPackets?: number
    /** Largest presence state in bytes. Default 4096. */
    presenceBytes?: number
    /** Presence updates per second per socket. Default 20. */
    presencePerSecond?: number
  }
  /** Timestamps further ahead than this are clamped for last-writer-wins (ms). Default 60000. */
  maxDriftMs?: number
  /** Timestamps further ahead than this are refused with CLOCK_SKEW (ms). Default 86400000 (1 day). */
  rejectFutureMs?: number
  /** Snapshot each document every N ops. Default 500. */
  snapshotEvery?: number
  /** Compact the log to this many entries behind the newest snapshot. Default: never compact. */
  keepLog?: number
  /** Presence entry lifetime (ms). Default 30000. */
  presenceTtl?: number
  /** Serve Prometheus metrics at /metrics. Default true. */
  metrics?: boolean
  /** Log level. Default 'info'. */
  logLevel?: LogLevel
  logger?: Logger
}

export interface SyncServer {
  /** e.g. 'http://127.0.0.1:4000' */
  readonly url: string
  readonly port: number
  readonly io: Server
  readonly httpServer: HttpServer
  readonly storage: ServerStorage
  /** The document's host (state, history); loads it if needed. */
  doc(name: string): Promise<DocHost>
  history(doc: string, query?: { path?: Array<string | number>; limit?: number }): Promise<ReturnType<typeof toChange>[]>
  metrics(): Promise<string>
  /** Stop accepting, finish in-flight writes, close sockets and storage. */
  close(): Promise<void>
}

interface SocketData {
  user: ZyncUser
  docs: Set<string>
  opsBucket: TokenBucket
  bytesBucket: TokenBucket
  presenceBucket: TokenBucket
  presence?: Record<string, unknown>
}

const LOCAL_ORIGIN = /^https?:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/

export function isOriginAllowed(origin: string | undefined, cors: string[] | '*' | undefined): boolean {
  if (origin === undefined) return true
  if (cors === '*') return true
  if (!cors) return LOCAL_ORIGIN.test(origin)
  return cors.includes(origin)
}

function approxSize(v: unknown): number {
  try {
    return JSON.stringify(v)?.length ?? 0
  } catch {
    return Infinity
  }
}

export async function createSyncServer(options: SyncServerOptions = {}): Promise<SyncServer> {
  const log = options.logger ?? createLogger(options.logLevel ?? 'info')
  const storage = await createStorage(options.storage ?? { kind: 'sqlite', file: './zync.db' })
  const shared = options.redis !== undefined || storage.kind === 'postgres'
  const limits = {
    opsPerSecond: 5000,
    bytesPerSecond: 16_000_000,
    maxPayload: 4_000_000,
    maxBufferedPackets: 10_000,
    presenceBytes: 4096,
    presencePerSecond: 20,
    ...options.limits,
  }
  const rejectFutureMs = options.rejectFutureMs ?? 86_400_000
  const metrics: Metrics | undefined = options.metrics === false ? undefined : await createMetrics()
  const hosts = new Map<string, Promise<DocHost>>()
  const inflight = new Set<Promise<unknown>>()
  let closing = false

  const httpServer = createServer((req, res) => {
    if (req.url === '/metrics' && metrics) {
      metrics
        .render()
        .then((body) => {
          res.writeHead(200, { 'content-type': metrics.contentType })
          res.end(body)
        })
        .catch(() => {
          res.writeHead(500)
          res.end()
        })
      return
    }
    if (req.url === '/healthz') {
      res.writeHead(closing ? 503 : 200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ ok: !closing, protocol: PROTOCOL_VERSION }))
      return
    }
    if (req.url?.startsWith('/socket.io')) return // socket.io handles its own requests
    res.writeHead(404)
    res.end()
  })

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  type Events = Record<string, (...args: any[]) => void>
  const io = new Server<Events, Events, Events, SocketData>(httpServer, {
    maxHttpBufferSize: limits.maxPayload,
    perMessageDeflate: false,
    httpCompression: false,
    pingInterval: 10_000,
    pingTimeout: 10_000,
    cors: { origin: (origin, cb) => cb(null, isOriginAllowed(origin, options.cors)) },
    allowRequest: (req, cb) => {
      const ok = isOriginAllowed(req.headers.origin, options.cors)
      cb(ok ? null : 'origin not allowed', ok)
    },
  })

  let redisClients: Array<{ quit?: () => Promise<unknown>; disconnect?: () => Promise<unknown> | void }> = []
  if (options.redis) {
    const { createClient } = await import('redis')
    const { createAdapter } = await import('@socket.io/redis-adapter')
    const pub = createClient({ url: options.redis.url })
    const sub = pub.duplicate()
    pub.on('error', (err: Error) => log.warn('redis error', { err: err.message }))
    sub.on('error', (err: Error) => log.warn('redis error', { err: err.message }))
    await Promise.all([pub.connect(), sub.connect()])
    io.adapter(createAdapter(pub, sub))
    redisClients = [pub as never, sub as never]
  }

  const presence = new PresenceHub(io as never, { ttl: options.presenceTtl ?? 30_000, onCount: (n) => metrics?.presence.set(n) })

  function host(doc: string): Promise<DocHost> {
    let h = hosts.get(doc)
    if (!h) {
      h = DocHost.load(doc, storage, {
        ...(options.snapshotEvery !== undefined ? { snapshotEvery: options.snapshotEvery } : {}),
        ...(options.keepLog !== undefined ? { keepLog: options.keepLog } : {}),
        ...(options.maxDriftMs !== undefined ? { maxDriftMs: options.maxDriftMs } : {}),
      })
      hosts.set(doc, h)
      h.catch(() => hosts.delete(doc))
      metrics?.documents.set(hosts.size)
    }
    return h
  }

  async function allowed(user: ZyncUser, doc: string, action: Action): Promise<void> {
    if (!options.authorize) return
    let ok = false
    try {
      ok = await options.authorize(user, doc, action)
    } catch {
      ok = false
    }
    if (!ok) throw new ZyncError('FORBIDDEN', `[zync] ${user.id} may not ${action} ${doc}`)
  }

  function track<T>(p: Promise<T>): Promise<T> {
    inflight.add(p)
    void p.finally(() => inflight.delete(p)).catch(() => {})
    return p
  }

  // Authentication runs on every connection and reconnection (no connection-state recovery).
  io.use(async (socket, next) => {
    try {
      if (closing) throw new ZyncError('DISCONNECTED', '[zync] server is shutting down', { retryable: true })
      const auth = (socket.handshake.auth ?? {}) as Record<string, unknown>
      const user = options.authenticate
        ? await options.authenticate({ auth, headers: socket.handshake.headers, address: socket.handshake.address })
        : { id: typeof auth.userId === 'string' ? auth.userId : 'anonymous' }
      if (!user || typeof user.id !== 'string' || user.id.length === 0) throw new ZyncError('UNAUTHENTICATED', '[zync] authenticate() must return a user with an id')
      socket.data.user = user
      socket.data.docs = new Set()
      socket.data.opsBucket = new TokenBucket(limits.opsPerSecond, limits.opsPerSecond * 2)
      socket.data.bytesBucket = new TokenBucket(limits.bytesPerSecond, limits.bytesPerSecond * 2)
      socket.data.presenceBucket = new TokenBucket(limits.presencePerSecond, limits.presencePerSecond)
      next()
    } catch (err) {
      const ze = err instanceof ZyncError ? err : new ZyncError('UNAUTHENTICATED', `[zync] authentication failed: ${(err as Error)?.message ?? err}`)
      const e = new Error(ze.message) as Error & { data: WireError }
      e.data = toWireError(ze)
      metrics?.rejected.inc({ code: ze.code })
      next(e)
    }
  })

  io.on('connection', (socket: Socket) => {
    const data = socket.data as SocketData
    metrics?.connections.inc()
    log.debug('connect', { sid: socket.id, user: data.user.id })
    socket.on('error', (err) => log.warn('socket error', { sid: socket.id, err: String(err) }))

    const handle = <T>(name: string, fn: (payload: unknown) => Promise<T>) => {
      socket.on(name, (payload: unknown, ack?: unknown) => {
        const reply = typeof ack === 'function' ? (ack as (r: unknown) => void) : undefined
        const work = track(
          fn(payload).then(
            (r) => reply?.(r),
            (err) => {
              const w = toWireError(err)
              metrics?.rejected.inc({ code: w.code })
              if (w.code === 'INTERNAL') log.error('handler failed', { event: name, err: String((err as Error)?.stack ?? err) })
              reply?.(w)
            },
          ),
        )
        void work
      })
    }

    handle(EVENTS.join, async (payload): Promise<JoinResponse> => {
      const req = parse(joinSchema, payload)
      if (req.v !== PROTOCOL_VERSION) throw new ZyncError('PROTOCOL_VERSION', `[zync] server speaks protocol ${PROTOCOL_VERSION}, client ${req.v}; upgrade zync on both sides`)
      await allowed(data.user, req.doc, 'read')
      const h = await host(req.doc)
      await socket.join(`doc:${req.doc}`)
      data.docs.add(req.doc)
      const r = await h.since(req.since, shared)
      void presence.sendFull(socket as never, req.doc).catch(() => {})
      return { ok: true, v: PROTOCOL_VERSION, seq: r.seq, changes: r.changes, ...(r.snapshot ? { snapshot: r.snapshot } : {}), serverTime: Date.now() }
    })

    handle(EVENTS.ops, async (payload): Promise<OpsResponse> => {
      const started = performance.now()
      const size = approxSize(payload)
      if (!data.bytesBucket.take(size)) throw new ZyncError('RATE_LIMITED', '[zync] too many bytes per second; slow down', { retryable: true })
      const req = parse(opsSchema, payload)
      if (!data.opsBucket.take(req.ops.length)) throw new ZyncError('RATE_LIMITED', '[zync] too many ops per second; slow down', { retryable: true })
      if (!data.docs.has(req.doc)) throw new ZyncError('NOT_JOINED', `[zync] join ${req.doc} before sending ops`, { retryable: true })
      await allowed(data.user, req.doc, 'write')
      const now = Date.now()
      const accepted = []
      const early: Array<WireError & { id: string }> = []
      for (const op of req.ops) {
        const wall = decodeHlc(op.hlc)!.wall
        if (wall > now + rejectFutureMs) {
          early.push({ ...toWireError(new ZyncError('CLOCK_SKEW', `[zync] op ${op.id} is stamped too far in the future; check the client clock`), op.id), id: op.id })
        } else accepted.push(op)
      }
      const h = await host(req.doc)
      const res = accepted.length > 0 ? await h.submit(accepted, data.user.id, shared) : { results: [], entries: [], seq: h.seq }
      if (res.entries.length > 0) {
        // Broadcast (to the author too: its ordered stream) before acknowledging.
        io.to(`doc:${req.doc}`).emit(EVENTS.changes, { doc: req.doc, changes: res.entries.map(toChange) })
        for (const e of res.entries) metrics?.applied.inc({ status: e.status })
        const conflicts = res.entries.filter((e) => e.status === 'conflict').length
        if (conflicts) metrics?.conflicts.inc(conflicts)
      }
      for (const r of [...res.results, ...early]) if (!r.ok) metrics?.rejected.inc({ code: r.code })
      metrics?.ackLatency.observe((performance.now() - started) / 1000)
      return { ok: true, results: [...res.results, ...early], seq: res.seq }
    })

    handle(EVENTS.history, async (payload): Promise<HistoryResponse> => {
      const req = parse(historySchema, payload)
      await allowed(data.user, req.doc, 'read')
      const h = await host(req.doc)
      const entries = await h.history({ ...(req.path ? { path: req.path } : {}), ...(req.limit ? { limit: req.limit } : {}) })
      return { ok: true, entries: entries.map(toChange) }
    })

    handle(EVENTS.presence, async (payload) => {
      const req = parse(presenceSchema, payload)
      if (!data.docs.has(req.doc)) throw new ZyncError('NOT_JOINED', `[zync] join ${req.doc} before sending presence`)
      if (!data.presenceBucket.take(1)) throw new ZyncError('RATE_LIMITED', '[zync] presence updates are limited per second', { retryable: true })
      if (req.state && approxSize(req.state) > limits.presenceBytes) throw new ZyncError('TOO_LARGE', `[zync] presence state over ${limits.presenceBytes} bytes`)
      await allowed(data.user, req.doc, 'presence')
      presence.update(socket as never, req.doc, data.user, req.state)
      return { ok: true }
    })

    handle(EVENTS.leave, async (payload) => {
      const req = parse(leaveSchema, payload)
      data.docs.delete(req.doc)
      await socket.leave(`doc:${req.doc}`)
      presence.leave(socket as never, req.doc)
      return { ok: true }
    })

    const known = new Set<string>(Object.values(EVENTS))
    socket.onAny((event: unknown, ...args: unknown[]) => {
      if (typeof event === 'string' && known.has(event)) return
      metrics?.rejected.inc({ code: 'UNKNOWN_EVENT' })
      const ack = args[args.length - 1]
      if (typeof ack === 'function') (ack as (r: unknown) => void)(toWireError(new ZyncError('UNKNOWN_EVENT', `[zync] unknown event ${String(event).slice(0, 64)}`)))
    })

    socket.on('disconnect', () => {
      metrics?.connections.dec()
      for (const doc of data.docs) presence.leave(socket as never, doc)
    })
  })

  // Slow consumers are dropped with a reason instead of buffering without bound.
  const slowTimer = setInterval(() => {
    let backlog = 0
    for (const s of io.of('/').sockets.values()) {
      const buffered = (s.conn as unknown as { writeBuffer?: unknown[] }).writeBuffer?.length ?? 0
      backlog += buffered
      if (buffered > limits.maxBufferedPackets) {
        log.warn('dropping slow consumer', { sid: s.id, buffered })
        s.emit('zync:error', { ok: false, code: 'RATE_LIMITED', message: '[zync] disconnected: too slow to keep up', retryable: true })
        s.disconnect(true)
      }
    }
    metrics?.backlog.set(backlog)
  }, 1000)
  slowTimer.unref()

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject)
    httpServer.listen(options.port ?? 4000, options.host ?? '127.0.0.1', () => resolve())
  })
  const addr = httpServer.address() as AddressInfo
  const hostName = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address
  const url = `http://${hostName}:${addr.port}`
  log.info('zync server listening', { url, storage: storage.kind, redis: Boolean(options.redis) })

  return {
    url,
    port: addr.port,
    io: io as unknown as Server,
    httpServer,
    storage,
    doc: host,
    history: async (doc, query = {}) => (await (await host(doc)).history(query)).map(toChange),
    metrics: () => (metrics ? metrics.render() : Promise.resolve('')),
    close: async () => {
      if (closing) return
      closing = true
      clearInterval(slowTimer)
      presence.destroy()
      // Stop accepting, let in-flight writes finish and be acknowledged, then disconnect everyone.
      httpServer.close()
      while (inflight.size > 0) await Promise.allSettled([...inflight])
      io.disconnectSockets(true)
      await new Promise<void>((resolve) => io.close(() => resolve()))
      for (const c of redisClients) {
        try {
          await (c.quit?.() ?? c.disconnect?.())
        } catch {
          // already closed
        }
      }
      for (const h of hosts.values()) {
        try {
          await (await h).flushSnapshot()
        } catch {
          // storage may be gone; the log is authoritative anyway
        }
      }
      await storage.close()
      log.info('zync server closed', { url })
    },
  }
}
