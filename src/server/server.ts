import { createServer, type IncomingMessage, type Server as HttpServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Server, type Socket } from 'socket.io'
import { ZyncError, toWireError, type WireError } from '../core/errors'
import { EVENTS, PROTOCOL_VERSION } from '../core/protocol'
import { createHandlers, initSocketData, type SocketData } from './connection'
import { DocHost } from './doc-host'
import { toChange } from './doc-state'
import { DEFAULT_LIMITS, type ServerLimits } from './limits'
import { corsProblem } from './cors'
import { createLogger, type LogLevel, type Logger } from './logger'
import { createMetrics, type Metrics } from './metrics'
import { importPeer } from './peer'
import { PresenceHub } from './presence-hub'
import { redactedUrl } from './redact'
import { createStorage, type StorageOptions } from './storage/index'
import { guardStorage } from './storage/guard'
import type { ServerStorage } from './storage/types'

/** Who a connection is, as `authenticate` returns it. Shown to others in presence and conflicts. */
export interface ZyncUser {
  /** Stable user id. Required. */
  id: string
  /** Display name. Default: none (components show the id). */
  name?: string | undefined
  /** Avatar colour, a CSS colour ('#4f46e5'). Default: none (a neutral grey). */
  color?: string | undefined
  /** Avatar picture URL. Default: none (initials). */
  avatarUrl?: string | undefined
  /** Any other fields the app needs in `authorize`. */
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
  port?: number | undefined
  /** Interface to listen on. Default '127.0.0.1'. */
  host?: string | undefined
  /** Where documents live. Default `{ kind: 'sqlite', file: './zync.db' }`. */
  storage?: StorageOptions | ServerStorage | undefined
  /**
   * Fan out across several server processes through Redis (socket.io Redis adapter): every node
   * broadcasts to the clients of every other node. `key` prefixes the channels, so several clusters
   * can share one Redis. `connectTimeoutMs` bounds the first connection (default 10000): an unreachable
   * Redis at start fails createSyncServer. Later outages are survived: the clients reconnect, broadcasts
   * lost meanwhile are logged, and once Redis is back each node catches up its loaded documents from
   * storage and sends its own clients what they missed. `key` defaults to 'zync'. Default: none (one process).
   */
  redis?: { url: string; key?: string | undefined; connectTimeoutMs?: number | undefined } | undefined
  /**
   * Turns the handshake (socket.io `auth`, headers) into a user, or throws to refuse the connection
   * (the client gets connect_error with `data.code` 'UNAUTHENTICATED'). Runs on every connection and
   * reconnection. Default (development only): trusts the client, `auth.userId` (else 'anonymous') and
   * the display fields `auth.name`, `auth.color`, `auth.avatarUrl` (the client's `user` option sends them).
   */
  authenticate?: ((handshake: Handshake) => ZyncUser | Promise<ZyncUser>) | undefined
  /**
   * May `user` do `action` on `doc`? Asked on every join (so again after every reconnect) and history
   * request ('read'), every ops batch ('write') and every presence update ('presence'), and for each
   * open connection's documents every `reauthorizeMs`. A throw or anything but `true` refuses with
   * FORBIDDEN, except a ZyncError thrown with `retryable: true` (your database is down), which refuses
   * for now (the client tries again); a throw during the periodic check keeps the connection.
   * Default: everything is allowed.
   */
  authorize?: ((user: ZyncUser, doc: string, action: Action) => boolean | Promise<boolean>) | undefined
  /**
   * How often the access of every open connection is checked again (ms): `authenticate` on its
   * handshake (an expired token, a deleted user) and `authorize(user, doc, 'read')` for each document
   * it has joined (revoked access). A connection that fails either is disconnected; its client
   * reconnects and is refused as on any connection (UNAUTHENTICATED or FORBIDDEN). A ZyncError thrown
   * with `retryable: true` (your identity provider is down) keeps the connection. 0 turns it off: read
   * access is then checked only when a document is joined. Call `reauthorize()` to check at once.
   * Default 60000.
   */
  reauthorizeMs?: number | undefined
  /**
   * Allowed browser origins. Default: only http(s)://localhost, 127.0.0.1 and [::1] on any port, which
   * closes cross-site WebSocket hijacking. '*' allows any. Clients that send no Origin (Node) are allowed.
   */
  cors?: string[] | '*' | undefined
  /** Per-socket limits; see ServerLimits for each default. */
  limits?: Partial<ServerLimits> | undefined
  /** Timestamps further ahead than this are clamped for last-writer-wins (ms). Default 5000. */
  maxDriftMs?: number | undefined
  /** Timestamps further ahead than this are refused with CLOCK_SKEW (ms). Default 86400000 (1 day). */
  rejectFutureMs?: number | undefined
  /**
   * Snapshot each document every N ops. Default: every 2000 ops, or every half as many ops as the
   * document has fields once it has more than 4000 (a snapshot copies the whole document; this bounds
   * its cost per write, also for a document whose every op adds a field); by default also once the ops
   * since the last snapshot wrote 16 MB of values (large values: a long text edited per keystroke).
   */
  snapshotEvery?: number | undefined
  /** Compact the log to this many entries behind the newest snapshot. Default: never compact. */
  keepLog?: number | undefined
  /** Unload a document from memory when no client of this node has had it open for this long (ms). Default 300000. */
  unloadIdleMs?: number | undefined
  /**
   * Documents loaded on this node beyond which those no client of the node has open are unloaded at once,
   * least recently used first (down to 90% of it), instead of after `unloadIdleMs`: memory stays bounded
   * when clients join many documents and leave them. Documents open on the node are never unloaded.
   * Default 10000.
   */
  maxDocuments?: number | undefined
  /** Presence entry lifetime (ms). Default 30000. */
  presenceTtl?: number | undefined
  /**
   * Serve Prometheus metrics at /metrics (prom-client). Default: on when prom-client is installed (a
   * warning says so when it is not); `true` requires it, `false` turns it off.
   */
  metrics?: boolean | undefined
  /** How long close() waits for in-flight writes before closing anyway (ms). Default 10000. */
  shutdownTimeoutMs?: number | undefined
  /** Log level. Default 'info'. */
  logLevel?: LogLevel | undefined
  /** Structured logger; default: JSON lines on stderr at `logLevel`. */
  logger?: Logger | undefined
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
  /**
   * The document's log, newest first: `path` (an array, or a dotted string as on the client,
   * 'cards.c1') keeps the entries at or below it; `limit` defaults to 100.
   */
  history(doc: string, query?: { path?: Array<string | number> | string; limit?: number }): Promise<ReturnType<typeof toChange>[]>
  metrics(): Promise<string>
  /**
   * Checks the access of open connections again now, as `reauthorizeMs` does periodically: all of them,
   * or those of `user` (its id), or those that joined `doc`. Call it after revoking access or signing a
   * user out. With `redis`, every node checks its own connections. Resolves to the number this node
   * disconnected.
   */
  reauthorize(filter?: { user?: string; doc?: string }): Promise<number>
  /** Stop accepting, finish in-flight writes, close sockets and storage. */
  close(): Promise<void>
}

const LOCAL_ORIGIN = /^https?:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/

/**
 * The origin check the server applies to WebSocket connections, for routes of your own: `'*'` allows
 * every origin; a list allows those origins exactly; undefined (the default `cors`) allows localhost,
 * 127.0.0.1 and [::1] on any port (http or https); a list matches case-insensitively. A request without an Origin header (not a browser) is allowed.
 */
export function isOriginAllowed(origin: string | undefined, cors: string[] | '*' | undefined): boolean {
  if (origin === undefined) return true
  if (cors === '*') return true
  if (!cors) return LOCAL_ORIGIN.test(origin)
  // Scheme and host are case-insensitive, and browsers send them in lower case: an entry written
  // 'https://App.Example.com' still matches.
  const o = origin.toLowerCase()
  return cors.some((c) => c.toLowerCase() === o)
}

/** `work`'s result, or `late` when it has not settled within `ms`; the timer is cleared either way. */
async function within<T, L>(work: Promise<T>, ms: number, late: L): Promise<T | L> {
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    return await Promise.race([work, new Promise<L>((r) => (timer = setTimeout(() => r(late), ms)))])
  } finally {
    clearTimeout(timer)
  }
}

export async function createSyncServer(options: SyncServerOptions = {}): Promise<SyncServer> {
  const log = options.logger ?? createLogger(options.logLevel ?? 'info')
  const port = options.port ?? 4000
  const hostOpt = options.host ?? '127.0.0.1'
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ZyncError('BAD_REQUEST', `[zync] createSyncServer: port must be an integer from 0 to 65535 (got ${JSON.stringify(options.port)})`)
  const badCors = corsProblem(options.cors)
  if (badCors) throw new ZyncError('BAD_REQUEST', `[zync] createSyncServer: ${badCors}`)
  for (const [k, v] of Object.entries(options.limits ?? {})) {
    if (!(k in DEFAULT_LIMITS)) throw new ZyncError('BAD_REQUEST', `[zync] createSyncServer: limits.${k} is not a limit (${Object.keys(DEFAULT_LIMITS).join(', ')})`)
    if (typeof v !== 'number' || !(v > 0)) throw new ZyncError('BAD_REQUEST', `[zync] createSyncServer: limits.${k} must be a positive number (got ${JSON.stringify(v)})`)
  }
  // One server per SQLite file: the storage holds `<file>.lock` until close().
  const storage = await createStorage(options.storage ?? { kind: 'sqlite', file: './zync.db' }, { lock: true })
  const metrics: Metrics | undefined = options.metrics === false ? undefined : await createMetrics(options.metrics === true, log).catch(async (err: unknown) => {
    await storage.close()
    throw err
  })
  metrics?.storageWritable.set(1)
  metrics?.storageUp.set(1)
  // Documents read and write through the guard: storage failures are STORAGE_UNAVAILABLE (retryable) and
  // logged; a failed append makes the node not ready (/readyz) until a write succeeds.
  // During a storage outage the node checks every second whether it is over, and then tells its clients
  // (EVENTS.resume): their refused batches wait out a backoff of up to 30 s, and idle ones sent their edits
  // up to 18 s after PostgreSQL was back (an operator trial). Set once the socket.io server exists.
  let onStorageBack = () => {}
  let clusterTimer: ReturnType<typeof setInterval> | undefined
  let recoveryTimer: ReturnType<typeof setInterval> | undefined
  const watchRecovery = (healthy: boolean) => {
    clearInterval(recoveryTimer)
    recoveryTimer = undefined
    if (healthy) return onStorageBack()
    // The /readyz check (a read, then a write probe while writes fail): its success ends the outage.
    recoveryTimer = setInterval(() => {
      if (closing) return clearInterval(recoveryTimer)
      void probeStorage()
    }, 1000)
    recoveryTimer.unref?.()
  }
  const guarded = guardStorage(storage, log, {
    onWritable: (ok) => metrics?.storageWritable.set(ok ? 1 : 0),
    onHealthy: (ok) => {
      metrics?.storageUp.set(ok ? 1 : 0)
      watchRecovery(ok)
    },
  })
  // Another process may append to the same documents: catch up from storage before reads and writes.
  const shared = options.redis !== undefined || storage.kind === 'postgres'
  const limits: ServerLimits = { ...DEFAULT_LIMITS, ...options.limits }
  const rejectFutureMs = options.rejectFutureMs ?? 86_400_000
  const hosts = new Map<string, Promise<DocHost>>()
  const lastUsed = new Map<string, number>()
  const inflight = new Set<Promise<unknown>>()
  let closing = false

  const refusedOrigins = new Map<string, number>()
  const httpServer = createServer((req, res) => {
    const path = req.url?.split('?')[0]
    if (path === '/metrics' && metrics) {
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
    if (path === '/healthz') {
      res.writeHead(closing ? 503 : 200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ ok: !closing, protocol: PROTOCOL_VERSION }))
      return
    }
    if (path === '/readyz') {
      void readiness().then((r) => {
        res.writeHead(r.ok ? 200 : 503, { 'content-type': 'application/json' })
        res.end(JSON.stringify(r))
      })
      return
    }
    // socket.io answers everything under /socket.io/ before this handler runs.
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
    // No connectionStateRecovery: a recovered session would skip the auth middleware, and delivery
    // never depends on it (clients catch up from the log).
    cors: { origin: (origin, cb) => cb(null, isOriginAllowed(origin, options.cors)) },
    allowRequest: (req, cb) => {
      const ok = isOriginAllowed(req.headers.origin, options.cors)
      if (!ok) {
        metrics?.rejected.inc({ code: 'FORBIDDEN' })
        // Once a minute per origin: a hostile page retrying must not flood the log (the metric counts each).
        const origin = String(req.headers.origin).slice(0, 200)
        const now = Date.now()
        if ((refusedOrigins.get(origin) ?? 0) < now - 60_000) {
          if (refusedOrigins.size >= 1000) refusedOrigins.clear()
          refusedOrigins.set(origin, now)
          log.warn('origin refused', { origin, note: 'logged once a minute per origin; zync_ops_rejected_total{code="FORBIDDEN"} counts each' })
        }
      }
      cb(ok ? null : 'origin not allowed', ok)
    },
  })
  onStorageBack = () => {
    io.local.emit(EVENTS.resume, {})
  }
  io.engine.on('connection_error', (err: { code?: number; message?: string }) => {
    // engine.io's FORBIDDEN (4) is allowRequest's refusal of an origin, counted there already.
    if (err.code !== 4) metrics?.rejected.inc({ code: 'BAD_REQUEST' })
    log.debug('engine.io connection error', { code: err.code, message: err.message })
  })

  // redis 5 and 6 close with close() and destroy(); redis 4 (also supported) with quit() and disconnect().
  let redisClients: Array<{ close?: () => Promise<unknown>; quit?: () => Promise<unknown>; destroy?: () => void; disconnect?: () => Promise<unknown> }> = []
  const redisDown = { pub: false, sub: false }
  /**
   * After a Redis outage: every document loaded here catches up with what other nodes appended
   * meanwhile, and this node's clients get those changes now, not at the document's next write.
   */
  const resync = async () => {
    let docs = 0
    let changes = 0
    for (const [doc, h] of hosts) {
      try {
        const entries = await (await h).refresh()
        if (entries.length === 0) continue
        handlers.announce(doc, entries)
        docs++
        changes += entries.length
      } catch (err) {
        log.warn('resync after a Redis outage failed; clients catch up at the next change', { doc, err: String((err as Error)?.message ?? err) })
      }
    }
    log.info('caught up after a Redis outage', { docs, changes })
  }
  /**
   * Whether this node can serve writes now, for a load balancer: not closing, the storage answers a
   * read within 2 s and takes writes. Redis (when configured) is reported, not required. Writes count as failing
   * from a failed append until a write succeeds: meanwhile the storage's probeWrite (when it has one)
   * is tried here, within the same 2 s. /healthz only says the process is up.
   */
  type Probe = 'up' | 'down' | 'slow' | 'unwritable'
  // Requests that come while a check is under way share it: 400 load-balancer probes at once were 400
  // storage queries, and the writes' acknowledgements waited behind them (an operator trial: p50 4.5 ms
  // to 228 ms).
  let probing: Promise<Probe> | undefined
  const probeStorage = (): Promise<Probe> => {
    if (probing) return probing
    const read = guarded.head('__readyz').then(() => 'up' as const, () => 'down' as const)
    probing = within(
      guarded.unwritable && guarded.probeWrite
        ? read.then((r) => (r === 'up' ? guarded.probeWrite!().then(() => 'up' as const, () => 'unwritable' as const) : r))
        : read.then((r) => (r === 'up' && guarded.unwritable ? ('unwritable' as const) : r)),
      2000,
      'slow' as const,
    ).finally(() => {
      probing = undefined
    })
    return probing
  }
  const readiness = async (): Promise<{ ok: boolean; storage: Probe; reason?: string; redis: 'up' | 'down' | 'off'; closing: boolean }> => {
    const probe = await probeStorage()
    const redis = !options.redis ? 'off' : redisDown.pub || redisDown.sub ? 'down' : 'up'
    const reason = probe === 'unwritable' ? `writes fail: ${guarded.writeError ?? 'unknown error'}` : undefined
    // Redis down does not make the node unready: with the one Redis every node shares, a load balancer
    // would take them all out at once (an operator trial), while each goes on serving its own clients
    // and catches up on the others' changes when Redis is back. The body says so.
    return { ok: !closing && probe === 'up', storage: probe, ...(reason !== undefined ? { reason } : {}), redis, closing }
  }
  // A polite close waits for Redis; during an outage it would wait forever: destroy after a second.
  const closeRedis = async () => {
    for (const c of redisClients) {
      // With redis 4 the missing close() left both connections open, and the CLI exited only by its 3 s fallback.
      const closed = await within(Promise.resolve(c.close ? c.close() : c.quit?.()).then(() => true, () => false), 1000, false)
      if (!closed) {
        if (c.destroy) c.destroy()
        else void c.disconnect?.().catch(() => {})
      }
    }
  }
  if (options.redis) {
    const { createClient } = await importPeer(() => import('redis'), 'redis', 'Scaling out with Redis (redis)')
    const { createAdapter } = await importPeer(() => import('@socket.io/redis-adapter'), '@socket.io/redis-adapter', 'Scaling out with Redis (redis)')
    // Publishes fail at once while Redis is down (no offline queue): a broadcast is lost for certain,
    // logged, and made up for when Redis is back (resync below), instead of flushed late or not at all
    // depending on which client reconnects first.
    const pub = createClient({ url: options.redis.url, disableOfflineQueue: true })
    const sub = pub.duplicate({ disableOfflineQueue: false })
    // The clients reconnect by themselves; say so once per outage, not on every attempt.
    const down = redisDown
    let lastRedisError: string | undefined
    let refusedByRedis: (() => void) | undefined
    const refused = new Promise<'refused'>((resolve) => {
      refusedByRedis = () => resolve('refused')
    })
    for (const [name, c] of [['pub', pub], ['sub', sub]] as const) {
      c.on('error', (err: Error) => {
        lastRedisError = err.message
        // Credentials Redis refuses will not work on a retry: the start fails now, not after the timeout.
        if (/WRONGPASS|NOAUTH|NOPERM/.test(err.message)) refusedByRedis?.()
        if (!down[name]) log.warn('redis unreachable; reconnecting', { client: name, err: err.message })
        down[name] = true
        metrics?.redisUp.set(0)
      })
      c.on('ready', () => {
        if (!down[name]) return
        if (!down[name === 'pub' ? 'sub' : 'pub']) metrics?.redisUp.set(1)
        log.info('redis reachable again', { client: name, ...(name === 'pub' && lost > 0 ? { broadcastsLost: lost } : {}) })
        if (name === 'pub') lost = 0
        down[name] = false
        // Broadcasts other nodes made meanwhile were lost: catch up from storage and tell our clients.
        if (!down.pub && !down.sub) void resync()
      })
    }
    // The adapter publishes and (un)subscribes without awaiting: during an outage a command that fails
    // would be an unhandled rejection and end the process. A lost broadcast is logged (once per outage,
    // with how many were lost when Redis is back); the other nodes resync their clients then.
    let lost = 0
    const guard = (c: object, method: string, what: string) => {
      const target = c as Record<string, (...a: unknown[]) => Promise<unknown>>
      const original = target[method]!.bind(c)
      target[method] = (...args: unknown[]) =>
        original(...args).catch((err: Error) => {
          if (method === 'publish') metrics?.broadcastsLost.inc()
          if (method !== 'publish' || lost++ === 0) log.warn(what, { err: err.message })
          return undefined
        })
    }
    guard(pub, 'publish', 'redis publish failed: a broadcast to other nodes was lost (their clients get it when Redis is back)')
    for (const m of ['subscribe', 'pSubscribe', 'unsubscribe', 'pUnsubscribe']) guard(sub, m, `redis ${m} failed`)
    redisClients = [pub as never, sub as never]
    // Bounded: an unreachable Redis at start is an error, not a process that waits forever.
    const ms = options.redis.connectTimeoutMs ?? 10_000
    try {
      const connected = await within(Promise.race([Promise.all([pub.connect(), sub.connect()]), refused]), ms, 'late' as const)
      if (connected === 'late' || connected === 'refused') {
        // The URL without its password; the reason (a wrong password, say) was only in a warning before.
        throw new ZyncError('BAD_REQUEST', `[zync] cannot connect to Redis at ${redactedUrl(options.redis.url)}${connected === 'late' ? ` within ${ms} ms` : ''}${lastRedisError ? `: ${lastRedisError}` : ''}`)
      }
      refusedByRedis = undefined
      if (storage.clusterId) clusterTimer = await claimCluster(pub as unknown as RedisCommands, await storage.clusterId(), options.redis.key ?? 'zync', redactedUrl(options.redis.url))
    } catch (err) {
      for (const c of [pub, sub]) await Promise.resolve(c.destroy?.()).catch(() => {})
      await storage.close()
      throw err
    }
    metrics?.redisUp.set(1)
    io.adapter(createAdapter(pub, sub, { key: options.redis.key ?? 'zync' }))
  }

  const presence = new PresenceHub(io as never, { ttl: options.presenceTtl ?? 30_000, onCount: (n) => metrics?.presence.set(n) })

  const unloadIdleMs = options.unloadIdleMs ?? 300_000
  const maxDocuments = options.maxDocuments ?? 10_000
  const isOpen = (doc: string) => (io.of('/').adapter.rooms.get(`doc:${doc}`)?.size ?? 0) > 0
  /** Forgets a loaded document (its snapshot saved first). A request racing it loads it again. */
  function unload(doc: string): void {
    const h = hosts.get(doc)
    if (!h) return
    hosts.delete(doc)
    lastUsed.delete(doc)
    void track(h.then((x) => x.flushSnapshot())).catch((err: unknown) => log.warn('snapshot on unload failed', { doc, err: String(err) }))
  }
  /** Over maxDocuments: the documents nobody here has open go, least recently used first (not those of the last second, still being joined). */
  function unloadIdle(): void {
    const now = Date.now()
    const idle = [...hosts.keys()].filter((d) => !isOpen(d) && now - (lastUsed.get(d) ?? 0) >= 1000).sort((a, b) => (lastUsed.get(a) ?? 0) - (lastUsed.get(b) ?? 0))
    let excess = hosts.size - Math.floor(maxDocuments * 0.9)
    for (const doc of idle) {
      if (excess-- <= 0) break
      unload(doc)
    }
    metrics?.documents.set(hosts.size)
  }

  function host(doc: string): Promise<DocHost> {
    lastUsed.set(doc, Date.now())
    let h = hosts.get(doc)
    if (!h) {
      h = DocHost.load(doc, guarded, {
        ...(options.snapshotEvery !== undefined ? { snapshotEvery: options.snapshotEvery } : {}),
        ...(options.keepLog !== undefined ? { keepLog: options.keepLog } : {}),
        ...(options.maxDriftMs !== undefined ? { maxDriftMs: options.maxDriftMs } : {}),
        // A join's tail stays well inside the connection's send buffer (a quarter: 8 MB by default).
        maxTailBytes: Math.floor(limits.maxBufferedBytes / 4),
        onRetry: () => metrics?.appendRetries.inc(),
        onError: (err) => log.warn('snapshot failed', { doc, err: String((err as Error)?.message ?? err) }),
      })
      hosts.set(doc, h)
      if (hosts.size > maxDocuments) unloadIdle()
      h.catch(() => {
        hosts.delete(doc)
        metrics?.documents.set(hosts.size)
      })
      metrics?.documents.set(hosts.size)
    }
    return h
  }

  async function allowed(user: ZyncUser, doc: string, action: Action): Promise<void> {
    if (!(await may(user, doc, action))) throw new ZyncError('FORBIDDEN', `[zync] ${user.id} may not ${action} ${doc}`)
  }

  /** authorize()'s answer: anything but `true` is no; a retryable ZyncError it throws is thrown on. */
  async function may(user: ZyncUser, doc: string, action: Action): Promise<boolean> {
    if (!options.authorize) return true
    try {
      return (await options.authorize(user, doc, action)) === true
    } catch (err) {
      // Your database is down, say: a retryable ZyncError is a refusal for now (the client tries again).
      if (err instanceof ZyncError && err.retryable) throw err
      log.warn('authorize() threw; refusing', { user: user.id, doc, action, err: String((err as Error)?.message ?? err) })
      return false
    }
  }

  function track<T>(p: Promise<T>): Promise<T> {
    inflight.add(p)
    void p.finally(() => inflight.delete(p)).catch(() => {})
    return p
  }

  /** What authenticate() gets: socket.io's `auth` (an object, whatever the client sent), headers, address. */
  const handshakeOf = (socket: Socket): Handshake => {
    const raw = socket.handshake.auth as unknown
    const auth = (raw !== null && typeof raw === 'object' && !Array.isArray(raw) ? raw : {}) as Record<string, unknown>
    return { auth, headers: socket.handshake.headers, address: socket.handshake.address }
  }
  /** An error authenticate() threw, as the refusal the client gets. */
  const refusal = (err: unknown): ZyncError =>
    err instanceof ZyncError ? err : new ZyncError('UNAUTHENTICATED', `[zync] authentication failed: ${String((err as Error)?.message ?? err).slice(0, 200)}`)

  // Authentication runs on every connection and reconnection.
  io.use(async (socket, next) => {
    try {
      if (closing) throw new ZyncError('DISCONNECTED', '[zync] server is shutting down; retry', { retryable: true })
      const h = handshakeOf(socket)
      const user = options.authenticate ? await options.authenticate(h) : trustedUser(h.auth)
      if (!user || typeof user.id !== 'string' || user.id.length === 0) throw new ZyncError('UNAUTHENTICATED', '[zync] authenticate() must return a user with an id')
      initSocketData(socket.data as SocketData, user)
      next()
    } catch (err) {
      const ze = refusal(err)
      const e = new Error(ze.message) as Error & { data: WireError }
      e.data = toWireError(ze)
      metrics?.rejected.inc({ code: ze.code })
      log.info('connection refused', { code: ze.code, address: socket.handshake.address })
      next(e)
    }
  })

  /** The handshake's user now, or the error that refuses it (a retryable ZyncError: none, keep it). */
  async function stillAuthenticated(socket: Socket): Promise<ZyncError | undefined> {
    if (!options.authenticate) return
    try {
      const user = await options.authenticate(handshakeOf(socket))
      if (user?.id !== (socket.data as SocketData).user.id) return new ZyncError('UNAUTHENTICATED', '[zync] the credentials now name another user')
    } catch (err) {
      const ze = refusal(err)
      return ze.retryable ? undefined : ze
    }
  }

  /** Checks one connection's access again; disconnects it when refused. True when it was disconnected. */
  async function recheck(socket: Socket, filter: { user?: string; doc?: string }): Promise<boolean> {
    const data = socket.data as SocketData
    if (filter.user !== undefined && data.user.id !== filter.user) return false
    const docs = [...socket.rooms].filter((r) => r.startsWith('doc:')).map((r) => r.slice(4))
    if (filter.doc !== undefined && !docs.includes(filter.doc)) return false
    let why = await stillAuthenticated(socket)
    for (const doc of docs) {
      if (why || !options.authorize) break
      let ok: unknown
      try {
        ok = await options.authorize(data.user, doc, 'read')
      } catch (err) {
        // Cannot tell now (its database is down, say): the connection stays until the next check.
        log.warn('authorize() threw while checking an open connection; keeping it', { user: data.user.id, doc, err: String((err as Error)?.message ?? err) })
        continue
      }
      if (ok !== true) why = new ZyncError('FORBIDDEN', `[zync] ${data.user.id} may not read ${doc}`)
    }
    if (!why || !socket.connected) return false
    log.info('access revoked; disconnecting', { sid: socket.id, user: data.user.id, code: why.code, message: why.message })
    metrics?.disconnects.inc({ reason: 'access revoked' })
    // The transport is closed, not the socket.io session: the client sees a lost connection and reconnects
    // (an app's shared socket too, which socket.io leaves down after a server-side disconnect()), and
    // that connection and its joins are refused, or admitted, as any other.
    socket.conn.close(true)
    return true
  }

  async function reauthorizeLocal(filter: { user?: string; doc?: string } = {}): Promise<number> {
    let n = 0
    const all = [...io.of('/').sockets.values()] as unknown as Socket[]
    // A few at a time: a pass over many connections with a slow authenticate() stays near reauthorizeMs.
    for (let i = 0; i < all.length; i += 16) {
      for (const out of await Promise.all(all.slice(i, i + 16).map((s) => recheck(s, filter)))) if (out) n++
    }
    return n
  }

  // Other nodes of a cluster ask this one to check its connections too.
  const REAUTHORIZE = 'zync:reauthorize'
  if (options.redis) io.on(REAUTHORIZE, (filter: { user?: string; doc?: string }) => void track(reauthorizeLocal(filter)).catch(() => {}))

  const reauthorizeMs = options.reauthorizeMs ?? 60_000
  let rechecking = false
  const reauthorizeTimer =
    reauthorizeMs > 0 && (options.authenticate || options.authorize)
      ? setInterval(() => {
          if (rechecking) return
          rechecking = true
          void reauthorizeLocal()
            .catch((err: unknown) => log.warn('reauthorization failed', { err: String(err) }))
            .finally(() => (rechecking = false))
        }, reauthorizeMs)
      : undefined
  reauthorizeTimer?.unref()

  const handlers = createHandlers({
    io: io as unknown as Server,
    limits,
    log,
    metrics,
    presence,
    shared,
    authenticated: options.authenticate !== undefined,
    rejectFutureMs,
    host,
    allowed,
    may,
    track,
    closing: () => closing,
  })

  io.on('connection', (socket: Socket) => {
    metrics?.connections.inc()
    log.debug('connect', { sid: socket.id, user: (socket.data as SocketData).user.id })
    handlers.attach(socket)
  })

  // Documents nobody on this node has open are unloaded (snapshot first) to bound memory. A request
  // racing the unload at worst loads a second host; storage's append arbitrates between them.
  const unloadTimer = setInterval(
    () => {
      for (const doc of hosts.keys()) if (!isOpen(doc) && Date.now() - (lastUsed.get(doc) ?? 0) >= unloadIdleMs) unload(doc)
      metrics?.documents.set(hosts.size)
    },
    Math.max(50, Math.min(60_000, unloadIdleMs / 2)),
  )
  unloadTimer.unref()

  // Slow consumers are dropped with a reason instead of buffering without bound.
  const slowTimer = setInterval(() => {
    let backlog = 0
    for (const s of io.of('/').sockets.values()) {
      const conn = s.conn as unknown as { writeBuffer?: Array<{ data?: unknown }>; transport?: { socket?: { bufferedAmount?: number; terminate?: () => void } } }
      const packets = conn.writeBuffer?.length ?? 0
      // What the WebSocket holds, plus what engine.io queues while the transport cannot take more: a
      // reader that stopped reading kept ~100 MB per socket there, under the packet limit (adversarial trial).
      let bytes = conn.transport?.socket?.bufferedAmount ?? 0
      for (let i = 0; i < packets && bytes <= limits.maxBufferedBytes; i++) {
        const d = conn.writeBuffer![i]!.data
        bytes += typeof d === 'string' ? d.length : d instanceof Uint8Array ? d.byteLength : d instanceof ArrayBuffer ? d.byteLength : 0
      }
      backlog += packets
      if (packets > limits.maxBufferedPackets || bytes > limits.maxBufferedBytes) {
        const user = (s.data as SocketData).user?.id
        log.warn('dropping slow consumer', { sid: s.id, user, packets, bytes, reason: 'too slow to keep up: reconnect and catch up from the log' })
        metrics?.disconnects.inc({ reason: 'slow consumer' })
        // Drop the connection now: a polite close would queue behind the data it cannot read. The
        // client sees a lost connection, reconnects and catches up from the log.
        const ws = conn.transport?.socket
        if (typeof ws?.terminate === 'function') ws.terminate()
        else s.conn.close(true)
      }
    }
    metrics?.backlog.set(backlog)
  }, 500)
  slowTimer.unref()

  try {
    await new Promise<void>((resolve, reject) => {
      httpServer.once('error', reject)
      httpServer.listen(port, hostOpt, () => resolve())
    })
  } catch (err) {
    // Nothing was served: release what was opened (storage, timers, Redis) and say why in plain words.
    clearInterval(slowTimer)
    clearInterval(unloadTimer)
    clearInterval(reauthorizeTimer)
    presence.destroy()
    await new Promise<void>((resolve) => io.close(() => resolve()))
    await closeRedis()
    await storage.close()
    const why = (err as { code?: string }).code === 'EADDRINUSE' ? 'the port is in use (another server?)' : (err as Error).message
    throw new ZyncError('BAD_REQUEST', `[zync] cannot listen on ${hostOpt}:${port}: ${why}`, { cause: err })
  }
  const addr = httpServer.address() as AddressInfo
  const hostName = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address
  const url = `http://${hostName}:${addr.port}`
  log.info('zync server listening', { url, storage: storage.kind, redis: Boolean(options.redis), cors: options.cors ?? 'localhost' })
  if (!options.authenticate) {
    const loopback = ['127.0.0.1', '::1', 'localhost'].includes(options.host ?? '127.0.0.1')
    const how = 'pass authenticate to createSyncServer (zync-server: export authenticate from the --auth module)'
    // authorize() alone decides on the identity a client claims: it protects nothing against one that lies.
    if (options.authorize) log.warn(`authorize() is configured without authenticate(): the user it decides on is whoever the client says it is (auth.userId), so any client can claim any user; ${how}`)
    else log[loopback ? 'info' : 'warn'](`no authenticate() configured: clients are trusted to say who they are (auth.userId); for production ${how}`)
  }

  let closed: Promise<void> | undefined
  const close = async () => {
    closing = true
    clearInterval(recoveryTimer)
    clearInterval(clusterTimer)
    clearInterval(slowTimer)
    clearInterval(unloadTimer)
    clearInterval(reauthorizeTimer)
    // Stop accepting connections; new writes on open sockets are refused (retryable) so the drain ends.
    httpServer.close()
    const deadline = Date.now() + (options.shutdownTimeoutMs ?? 10_000)
    // Drain until nothing is in flight for a quiet moment: requests clients already sent (read in a
    // later turn of the event loop) get an answer too, a refusal for writes, instead of a dropped socket.
    for (;;) {
      // within() clears its timer once the writes settle: left running it kept the process alive until the deadline.
      while (inflight.size > 0 && Date.now() < deadline) await within(Promise.allSettled([...inflight]), Math.max(1, deadline - Date.now()), undefined)
      await new Promise((r) => setTimeout(r, 5))
      if (inflight.size === 0 || Date.now() >= deadline) break
    }
    if (inflight.size > 0) log.warn('closing with requests still in flight', { n: inflight.size })
    presence.destroy()
    // io.close() closes the transports without a namespace DISCONNECT: clients see a lost
    // connection and reconnect (to another node), which is what a restart or failover needs.
    const engineClients = Object.values((io.engine as unknown as { clients?: Record<string, { transport?: { socket?: { terminate?: () => void } } }> }).clients ?? {})
    const ioClosed = new Promise<void>((resolve) => io.close(() => resolve()))
    if ((await within(ioClosed.then(() => 'done' as const), Math.max(1, Math.min(1000, deadline - Date.now())), 'late' as const)) === 'late') {
      // A half-open client (a phone that lost its link) never answers the WebSocket closing handshake,
      // which ws waits 30 s for: one such client held every restart for 30 s. Cut what is left.
      for (const c of engineClients) c.transport?.socket?.terminate?.()
      httpServer.closeAllConnections?.()
      await within(ioClosed, 1000, undefined)
    }
    await closeRedis()
    // Storage that hangs (a PostgreSQL that accepts connections but never answers) must not hold the
    // shutdown forever: snapshots and the storage's own close get until the deadline (at least 1 s).
    const bounded = async (what: string, work: () => Promise<unknown>) => {
      const r = await within(work().then(() => 'done' as const, () => 'failed' as const), Math.max(1000, deadline - Date.now()), 'late' as const)
      if (r === 'late') log.warn(`shutdown: ${what} did not finish in time; closing anyway`, {})
    }
    await bounded('saving snapshots', async () => {
      for (const h of hosts.values()) {
        try {
          await (await h).flushSnapshot()
        } catch {
          // storage may be gone; the log is authoritative anyway
        }
      }
    })
    await bounded('closing the storage', () => storage.close())
    log.info('zync server closed', { url })
  }

  return {
    url,
    port: addr.port,
    io: io as unknown as Server,
    httpServer,
    storage,
    doc: host,
    history: async (doc, { path, limit } = {}) =>
      (await (await host(doc)).history({ ...(path !== undefined ? { path: typeof path === 'string' ? path.split('.') : path } : {}), ...(limit !== undefined ? { limit } : {}) })).map(toChange),
    metrics: () => (metrics ? metrics.render() : Promise.resolve('')),
    reauthorize: async (filter = {}) => {
      if (options.redis) io.serverSideEmit(REAUTHORIZE, filter)
      return reauthorizeLocal(filter)
    },
    close: () => (closed ??= close()),
  }
}

/** The default authenticate (development only): the user the client says it is, within sane lengths. */
function trustedUser(auth: Record<string, unknown>): ZyncUser {
  const str = (v: unknown, max: number): v is string => typeof v === 'string' && v.length > 0 && v.length <= max
  const user: ZyncUser = { id: str(auth.userId, 256) ? auth.userId : 'anonymous' }
  for (const k of ['name', 'color', 'avatarUrl'] as const) if (str(auth[k], 512)) user[k] = auth[k]
  return user
}

/** The Redis commands the cluster check uses (node-redis 4 to 6). */
interface RedisCommands {
  set(key: string, value: string, options: { NX?: boolean; EX: number }): Promise<unknown>
  get(key: string): Promise<string | null>
}

const CLUSTER_TTL_S = 60

/**
 * Nodes fanning out through one Redis channel must share one storage, and nodes on one storage one
 * channel: a node on a mistyped schema served documents of its own under the same seqs, and one on
 * another channel kept its clients from the others' changes, both in silence (an operator trial). Each
 * node claims, for a minute at a time, the channel for its storage's id and the storage id for its
 * channel; a node whose claim meets another refuses to start. Returns the timer renewing the claims.
 */
async function claimCluster(redis: RedisCommands, storageId: string, key: string, url: string): Promise<ReturnType<typeof setInterval>> {
  const claims: Array<[string, string, (other: string) => string]> = [
    [`${key}#storage`, storageId, () => `nodes on the Redis channel "${key}" at ${url} keep their documents in another storage (another PostgreSQL database or schema): every node of a cluster needs the same --postgres and --schema. A cluster moved to another storage: wait ${CLUSTER_TTL_S} s after stopping the old nodes`],
    [`zync#channel#${storageId}`, key, (other) => `nodes on this storage fan out on the Redis channel "${other}" at ${url}, not "${key}": every node of a cluster needs the same --redis-key`],
  ]
  for (const [k, value, problem] of claims) {
    if ((await redis.set(k, value, { NX: true, EX: CLUSTER_TTL_S })) !== null) continue
    const other = await redis.get(k)
    if (other !== null && other !== value) throw new ZyncError('BAD_REQUEST', `[zync] ${problem(other)}`)
    await redis.set(k, value, { EX: CLUSTER_TTL_S })
  }
  const timer = setInterval(() => {
    for (const [k, value] of claims) void redis.set(k, value, { EX: CLUSTER_TTL_S }).catch(() => {})
  }, (CLUSTER_TTL_S * 1000) / 3)
  timer.unref?.()
  return timer
}
