/*
 * One client connection: the events it may send and the checks each one passes, in order:
 *
 *   packet ─► messages/s and bytes/s buckets ─► schema (zod) ─► joined? ─► authorize(user, doc, action)
 *          ─► per-op checks (clock, history, client owner) ─► durable append ─► broadcast ─► ack
 *
 * Every refusal is a typed answer `{ ok: false, code, message, retryable, opId? }` and applies nothing.
 */
import type { Server, Socket } from 'socket.io'
import { ZyncError, toWireError, type WireError } from '../core/errors'
import { EVENTS, PROTOCOL_VERSION, type HistoryResponse, type JoinResponse, type OpsResponse } from '../core/protocol'
import type { DocHost } from './doc-host'
import { toChange, toWire } from './doc-state'
import { jsonBytes, sizeOf, type ServerLimits } from './limits'
import type { Logger } from './logger'
import type { Metrics } from './metrics'
import type { PresenceHub } from './presence-hub'
import { TokenBucket } from './rate-limit'
import { historySchema, joinSchema, leaveSchema, opsEnvelopeSchema, parse, presenceSchema } from './schema'
import { ackResult, splitOps } from './ops-batch'
import type { Action, ZyncUser } from './server'

export interface SocketData {
  user: ZyncUser
  docs: Set<string>
  opsBucket: TokenBucket
  bytesBucket: TokenBucket
  messageBucket: TokenBucket
  presenceBucket: TokenBucket
  /** Requests of this socket in progress. */
  pending: number
  presence?: Record<string, unknown>
}

export interface ConnectionContext {
  io: Server
  limits: ServerLimits
  log: Logger
  metrics: Metrics | undefined
  presence: PresenceHub
  /** True when several nodes share the storage: catch up from it before every read and write. */
  shared: boolean
  rejectFutureMs: number
  host(doc: string): Promise<DocHost>
  allowed(user: ZyncUser, doc: string, action: Action): Promise<void>
  track<T>(p: Promise<T>): Promise<T>
  closing(): boolean
}

export function initSocketData(data: SocketData, user: ZyncUser, limits: ServerLimits): void {
  data.user = user
  data.docs = new Set()
  data.opsBucket = new TokenBucket(limits.opsPerSecond, limits.opsPerSecond * 2)
  data.bytesBucket = new TokenBucket(limits.bytesPerSecond, limits.bytesPerSecond * 2)
  data.messageBucket = new TokenBucket(limits.messagesPerSecond, limits.messagesPerSecond * 2)
  data.presenceBucket = new TokenBucket(limits.presencePerSecond, limits.presencePerSecond)
  data.pending = 0
}

const KNOWN_EVENTS = new Set<string>([EVENTS.join, EVENTS.ops, EVENTS.history, EVENTS.presence, EVENTS.leave])

export function handleConnection(socket: Socket, ctx: ConnectionContext): void {
  const data = socket.data as SocketData
  const { limits, metrics, log } = ctx
  const room = (doc: string) => `doc:${doc}`
  const refuse = (ack: unknown, err: ZyncError) => {
    metrics?.rejected.inc({ code: err.code })
    if (typeof ack === 'function') (ack as (r: WireError) => void)(toWireError(err))
  }

  // Clients may emit 'error' (not reserved by the parser): without a listener it would throw.
  socket.on('error', (err) => log.debug('socket error', { sid: socket.id, err: String(err) }))

  // Runs before any handler, for every event: flood limits, and no new writes once shutting down.
  socket.use((packet, next) => {
    const ack = packet[packet.length - 1]
    if (!data.messageBucket.take(1)) return refuse(ack, new ZyncError('RATE_LIMITED', '[zync] too many messages per second; slow down', { retryable: true }))
    if (data.pending >= limits.maxPending) return refuse(ack, new ZyncError('RATE_LIMITED', `[zync] over ${limits.maxPending} requests in progress; wait for answers`, { retryable: true }))
    const cap = limits.bytesPerSecond * 2
    if (!data.bytesBucket.take(sizeOf(packet, cap + 1))) return refuse(ack, new ZyncError('RATE_LIMITED', '[zync] too many bytes per second; slow down', { retryable: true }))
    if (ctx.closing() && packet[0] === EVENTS.ops) {
      return refuse(ack, new ZyncError('DISCONNECTED', '[zync] server is shutting down; retry on another node', { retryable: true }))
    }
    // Counted here, not in the handler: packets that arrive together all pass this check before
    // the first handler runs. The handler gives it back when it has answered.
    if (typeof packet[0] === 'string' && KNOWN_EVENTS.has(packet[0])) data.pending++
    next()
  })

  // Unknown events get a typed answer (when they ask for one) and nothing else.
  socket.onAny((event: unknown, ...args: unknown[]) => {
    if (typeof event === 'string' && KNOWN_EVENTS.has(event)) return
    refuse(args[args.length - 1], new ZyncError('UNKNOWN_EVENT', `[zync] unknown event ${JSON.stringify(String(event).slice(0, 64))}`))
  })

  const handle = <T>(name: string, fn: (payload: unknown) => Promise<T>) => {
    socket.on(name, (...args: unknown[]) => {
      const reply = typeof args[args.length - 1] === 'function' ? (args.pop() as (r: unknown) => void) : undefined
      const run = args.length === 1 ? fn(args[0]) : Promise.reject(new ZyncError('BAD_REQUEST', `[zync] ${name} takes exactly one argument, got ${args.length}`))
      void ctx.track(
        run.finally(() => data.pending--).then(
          (r) => reply?.(r),
          (err: unknown) => {
            const w = toWireError(err)
            metrics?.rejected.inc({ code: w.code })
            if (!(err instanceof ZyncError)) log.error('handler failed', { event: name, err: String((err as Error)?.stack ?? err) })
            reply?.(w)
          },
        ),
      )
    })
  }

  handle(EVENTS.join, async (payload): Promise<JoinResponse> => {
    const req = parse(joinSchema, payload)
    if (req.v !== PROTOCOL_VERSION) throw new ZyncError('PROTOCOL_VERSION', `[zync] server speaks protocol ${PROTOCOL_VERSION}, client ${req.v}; upgrade zync on both sides`)
    await ctx.allowed(data.user, req.doc, 'read')
    const h = await ctx.host(req.doc)
    // Join the room before reading the tail: nothing committed in between is missed (the client
    // drops what it gets twice by seq).
    await socket.join(room(req.doc))
    data.docs.add(req.doc)
    const r = await h.since(req.since, ctx.shared)
    void ctx.presence.sendFull(socket, req.doc).catch(() => {})
    return { ok: true, v: PROTOCOL_VERSION, seq: r.seq, changes: r.changes, ...(r.snapshot ? { snapshot: r.snapshot } : {}), serverTime: Date.now() }
  })

  handle(EVENTS.ops, async (payload): Promise<OpsResponse> => {
    const started = performance.now()
    const req = parse(opsEnvelopeSchema, payload)
    if (!data.opsBucket.take(req.ops.length)) throw new ZyncError('RATE_LIMITED', '[zync] too many ops per second; slow down', { retryable: true })
    if (!data.docs.has(req.doc)) throw new ZyncError('NOT_JOINED', `[zync] join ${req.doc} before sending ops`, { retryable: true })
    await ctx.allowed(data.user, req.doc, 'write')
    const { accepted, refused } = splitOps(req.ops, Date.now(), ctx.rejectFutureMs)
    const h = await ctx.host(req.doc)
    const res = accepted.length > 0 ? await h.submit(accepted, data.user.id, ctx.shared) : { results: [], entries: [], seq: h.seq }
    if (res.entries.length > 0) {
      // Broadcast (to the author too: its ordered stream) before acknowledging.
      ctx.io.to(room(req.doc)).emit(EVENTS.changes, { doc: req.doc, changes: res.entries.map(toWire) })
      for (const e of res.entries) metrics?.applied.inc({ status: e.status })
      const conflicts = res.entries.filter((e) => e.status === 'conflict').length
      if (conflicts) metrics?.conflicts.inc(conflicts)
    }
    const results = [...res.results.map(ackResult), ...refused]
    for (const r of results) if (!r.ok) metrics?.rejected.inc({ code: r.code })
    metrics?.ackLatency.observe((performance.now() - started) / 1000)
    return { ok: true, results, seq: res.seq }
  })

  handle(EVENTS.history, async (payload): Promise<HistoryResponse> => {
    const req = parse(historySchema, payload)
    await ctx.allowed(data.user, req.doc, 'read')
    const h = await ctx.host(req.doc)
    const entries = await h.history({ ...(req.path ? { path: req.path } : {}), ...(req.limit ? { limit: req.limit } : {}) })
    return { ok: true, entries: entries.map(toChange) }
  })

  handle(EVENTS.presence, async (payload) => {
    const req = parse(presenceSchema, payload)
    if (!data.docs.has(req.doc)) throw new ZyncError('NOT_JOINED', `[zync] join ${req.doc} before sending presence`)
    if (!data.presenceBucket.take(1)) throw new ZyncError('RATE_LIMITED', '[zync] presence updates are limited per second', { retryable: true })
    if (req.state && jsonBytes(req.state) > limits.presenceBytes) throw new ZyncError('TOO_LARGE', `[zync] presence state over ${limits.presenceBytes} bytes`)
    await ctx.allowed(data.user, req.doc, 'presence')
    ctx.presence.update(socket, req.doc, data.user, req.state)
    return { ok: true }
  })

  handle(EVENTS.leave, async (payload) => {
    const req = parse(leaveSchema, payload)
    data.docs.delete(req.doc)
    await socket.leave(room(req.doc))
    ctx.presence.leave(socket, req.doc)
    return { ok: true }
  })

  socket.on('disconnect', (reason) => {
    metrics?.connections.dec()
    metrics?.disconnects.inc({ reason: String(reason).replace(/[^\w ]/g, '').slice(0, 40) })
    for (const doc of data.docs) ctx.presence.leave(socket, doc)
    log.debug('disconnect', { sid: socket.id, user: data.user.id, reason })
  })
}

/** Checks of one op that need no document state. */
