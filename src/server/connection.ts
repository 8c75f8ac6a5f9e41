/*
 * One client connection: the events it may send and the checks each one passes, in order:
 *
 *   packet ─► messages/s and bytes/s buckets ─► schema (zod) ─► joined? ─► authorize(user, doc, action)
 *          ─► per-op checks (clock, history, client owner) ─► durable append ─► broadcast ─► ack
 *
 * Every refusal is a typed answer `{ ok: false, code, message, retryable, opId? }` and applies nothing.
 */
import type { Server, Socket } from 'socket.io'
import type { z } from 'zod'
import { ZyncError, toWireError, type WireError } from '../core/errors'
import { EVENTS, OLDEST_PROTOCOL_VERSION, PROTOCOL_VERSION, type HistoryResponse } from '../core/protocol'
import { encodeChangesMessage, encodeCompactOpsResponse, encodeJoinResponse, encodeOpsResponse, type WireCompactOpsResponse, type WireJoinResponse, type WireOpsResponse } from '../core/wire'
import type { Change } from '../core/protocol'
import { vvGet } from '../core/vector-clock'
import { entryBytes, type DocHost } from './doc-host'
import type { LogEntry } from './storage/types'
import { toChange, toWire } from './doc-state'
import { jsonBytesYielding } from './json-bytes'
import { jsonBytes, sizeOf, type ServerLimits } from './limits'
import type { Logger } from './logger'
import type { Metrics } from './metrics'
import { publicUser, type PresenceHub } from './presence-hub'
import { TokenBucket } from '../core/token-bucket'
import { historySchema, joinSchema, leaveSchema, parse, parseOpsEnvelope, presenceSchema } from './schema'
import { ackResult, inRequestOrder, splitOps } from './ops-batch'
import type { Action, ZyncUser } from './server'

export interface SocketData {
  user: ZyncUser
  /** Flood limits, created on first use (an idle connection holds none of them). */
  opsBucket?: TokenBucket
  bytesBucket?: TokenBucket
  messageBucket?: TokenBucket
  presenceBucket?: TokenBucket
  joinBucket?: TokenBucket
  historyBucket?: TokenBucket
  /** Joins of this socket under way (counted with its rooms against docsPerSocket). */
  joining?: number
  /** Requests of this socket in progress. */
  pending: number
  presence?: Record<string, unknown>
  /** The zync client (store) that last joined on this socket: a reconnection of it replaces this socket's presence. */
  client?: string
  /** When this socket was last told of a refused presence update (see `notice`). */
  noticeAt?: number
}

/** Refusals that say a client is malformed or flooding (not access, history or an outage): see `misbehaved`. */
const MISBEHAVIOUR: ReadonlySet<string> = new Set(['BAD_REQUEST', 'UNKNOWN_EVENT', 'UNSAFE_PATH', 'TOO_DEEP', 'TOO_LARGE', 'BAD_VECTOR', 'RATE_LIMITED'])

export interface ConnectionContext {
  io: Server
  limits: ServerLimits
  log: Logger
  metrics: Metrics | undefined
  presence: PresenceHub
  /** True when several nodes share the storage: catch up from it before every read and write. */
  shared: boolean
  /** The server has an `authenticate`: the join answer tells the client who it is (`user`). */
  authenticated: boolean
  rejectFutureMs: number
  host(doc: string): Promise<DocHost>
  allowed(user: ZyncUser, doc: string, action: Action): Promise<void>
  /** authorize()'s answer as a boolean (true without authorize); throws only a retryable ZyncError. */
  may(user: ZyncUser, doc: string, action: Action): Promise<boolean>
  track<T>(p: Promise<T>): Promise<T>
  closing(): boolean
}

export function initSocketData(data: SocketData, user: ZyncUser): void {
  data.user = user
  data.pending = 0
}

const KNOWN_EVENTS = new Set<string>([EVENTS.join, EVENTS.ops, EVENTS.history, EVENTS.presence, EVENTS.leave])

/** Changes per coalesced broadcast before it is sent without waiting for the end of the loop turn. */
const MAX_COALESCED = 2000

const ROOM_PREFIX = 'doc:'
const room = (doc: string) => ROOM_PREFIX + doc
/** The socket's joined documents are its rooms: no second set to keep per connection. */
const joined = (socket: Socket, doc: string) => socket.rooms.has(room(doc))

type Bucket = 'opsBucket' | 'bytesBucket' | 'messageBucket' | 'presenceBucket' | 'joinBucket' | 'historyBucket'

const RATE_OF: Record<Bucket, keyof ServerLimits> = {
  opsBucket: 'opsPerSecond',
  bytesBucket: 'bytesPerSecond',
  messageBucket: 'messagesPerSecond',
  presenceBucket: 'presencePerSecond',
  joinBucket: 'joinsPerSecond',
  historyBucket: 'historyPerSecond',
}

/** Takes `n` tokens from the socket's bucket: undefined when admitted, else the milliseconds until it would be. */
function limited(data: SocketData, which: Bucket, n: number, limits: ServerLimits): number | undefined {
  const rate = limits[RATE_OF[which]]
  // Bursts of twice the rate, except presence (one second's worth).
  const burst = which === 'presenceBucket' ? rate : rate * 2
  const bucket = (data[which] ??= new TokenBucket(burst))
  if (bucket.take(n, rate, burst)) return undefined
  const wait = bucket.wait(n, rate, burst)
  return Number.isFinite(wait) ? Math.max(1, wait) : Math.ceil((n / rate) * 1000)
}

/** The RATE_LIMITED refusal, with how long until the same request would be admitted. */
function rateLimited(message: string, retryAfter: number): ZyncError {
  return new ZyncError('RATE_LIMITED', message, { retryable: true, retryAfter })
}

/** Handlers of one server, registered on each of its sockets: one set of functions, not one per connection. */
export interface ConnectionHandlers {
  attach(socket: Socket): void
  /** Sends changes to this node's clients of `doc` only (what a lost Redis broadcast did not bring them). */
  announce(doc: string, entries: LogEntry[]): void
}

/**
 * Builds the event handlers once per server. Every socket gets the same function objects (socket.io
 * calls them with `this` bound to the socket), so an idle connection costs socket.io's own structures
 * and its `SocketData`, not a set of closures.
 */
export function createHandlers(ctx: ConnectionContext): ConnectionHandlers {
  const { limits, metrics, log } = ctx
  // A presence update comes without an ack (one per cursor move): refused, it would be refused in
  // silence. Its sender is told on 'zync:refused' instead, at most once a second (clients that do not
  // listen for it ignore it).
  const notice = (socket: Socket, event: string, payload: unknown, w: WireError) => {
    if (event !== EVENTS.presence) return
    const data = socket.data as SocketData
    const now = Date.now()
    if (now - (data.noticeAt ?? 0) < 1000) return
    data.noticeAt = now
    const doc = (payload as { doc?: unknown } | null | undefined)?.doc
    socket.emit(EVENTS.refused, { event, ...(typeof doc === 'string' && doc.length <= 256 ? { doc } : {}), error: w })
  }
  // A client sending malformed requests or flooding is worth an operator's look: logged at warn with who
  // and from where, at most once a minute per address and user, with the count since the last line (an
  // operator trial: 33 malformed messages, 5,000 unknown events and a 5 MB frame left no line at the
  // default level; then, counted per connection, a client reconnecting 300 times wrote 300 lines).
  // Refusals in the ordinary course (access, conflicts of history, an outage) stay at debug.
  const misbehavers = new Map<string, { at: number; since: number }>()
  const misbehaved = (socket: Socket, event: string, code: string, message: string): void => {
    if (!MISBEHAVIOUR.has(code)) return
    const data = socket.data as SocketData
    const address = socket.handshake.address
    const key = `${address} ${data.user?.id}`
    const now = Date.now()
    let seen = misbehavers.get(key)
    if (!seen) {
      // Bounded: a botnet of addresses cannot grow it for good (at worst a line more per address).
      if (misbehavers.size >= 10_000) misbehavers.clear()
      misbehavers.set(key, (seen = { at: -Infinity, since: 0 }))
    }
    seen.since++
    if (now - seen.at < 60_000) return
    log.warn('client request refused', { code, event, user: data.user?.id, address, sid: socket.id, message: message.slice(0, 200), refusedSinceLastLine: seen.since, note: 'logged once a minute per address and user; zync_ops_rejected_total counts each' })
    seen.at = now
    seen.since = 0
  }
  const refuse = (socket: Socket, event: string, ack: unknown, err: ZyncError, payload?: unknown) => {
    metrics?.rejected.inc({ code: err.code })
    misbehaved(socket, event, err.code, err.message)
    log.debug('request refused', { event, code: err.code, sid: socket.id, user: (socket.data as SocketData).user?.id, message: err.message })
    if (typeof ack === 'function') (ack as (r: WireError) => void)(toWireError(err))
    else notice(socket, event, payload, toWireError(err))
  }

  // Runs before the handler, synchronously on arrival, for every known event: flood limits, and no
  // new writes once shutting down. `pending` is counted here (and given back when answered), so
  // packets that arrive together all see each other.
  const admit = (socket: Socket, event: string, args: unknown[]): boolean => {
    const data = socket.data as SocketData
    const ack = args[args.length - 1]
    let wait = limited(data, 'messageBucket', 1, limits)
    if (wait !== undefined) {
      refuse(socket, event, ack, rateLimited('[zync] too many messages per second; slow down', wait), args[0])
      return false
    }
    if (data.pending >= limits.maxPending) {
      refuse(socket, event, ack, new ZyncError('RATE_LIMITED', `[zync] over ${limits.maxPending} requests in progress; wait for answers`, { retryable: true }), args[0])
      return false
    }
    const cap = limits.bytesPerSecond * 2
    wait = limited(data, 'bytesBucket', sizeOf([event, ...args], cap + 1), limits)
    if (wait !== undefined) {
      refuse(socket, event, ack, rateLimited('[zync] too many bytes per second; slow down', wait), args[0])
      return false
    }
    if (ctx.closing() && event === EVENTS.ops) {
      refuse(socket, event, ack, new ZyncError('DISCONNECTED', '[zync] server is shutting down; retry on another node', { retryable: true }))
      return false
    }
    data.pending++
    return true
  }

  // Broadcasts are coalesced per document for one turn of the event loop: batches from many writers that
  // land together reach each reader as one message (in seq order: batches of a document commit one
  // after another), instead of one message per batch per reader. Each batch's acknowledgement waits
  // for the message that carries its changes, so the author gets its changes before its ack. When all
  // the changes of a message come from one zync client (a lone writer, or its pipelined batches), that
  // client gets them in its acks instead (one message less per write); `sent` resolves to true then.
  const outgoing = new Map<string, { changes: Change[]; sent: Array<(inAck: boolean) => void>; authors: Set<string>; everyone: boolean }>()
  const flush = (doc: string) => {
    const o = outgoing.get(doc)
    if (!o) return
    outgoing.delete(doc)
    const msg = encodeChangesMessage({ doc, changes: o.changes })
    const only = !o.everyone && o.authors.size === 1 ? [...o.authors][0]! : undefined
    if (only !== undefined) ctx.io.to(room(doc)).except(only).emit(EVENTS.changes, msg)
    else ctx.io.to(room(doc)).emit(EVENTS.changes, msg)
    for (const done of o.sent) done(only !== undefined)
  }
  /** `author`: the socket id of a compact (zync client) request, which can take its changes in its ack. */
  const broadcast = (doc: string, changes: Change[], author: string | undefined): Promise<boolean> => {
    let o = outgoing.get(doc)
    if (!o) {
      outgoing.set(doc, (o = { changes: [], sent: [], authors: new Set(), everyone: false }))
      setImmediate(flush, doc)
    }
    for (const c of changes) o.changes.push(c)
    if (author === undefined) o.everyone = true
    else o.authors.add(author)
    const box = o
    const sent = new Promise<boolean>((resolve) => box.sent.push(resolve))
    // Bounded messages: a burst of big batches goes out in pieces rather than one huge frame.
    if (o.changes.length >= MAX_COALESCED) flush(doc)
    return sent
  }

  const handle = <T>(name: string, fn: (socket: Socket, data: SocketData, payload: unknown) => Promise<T>) =>
    function (this: Socket, ...args: unknown[]): void {
      const data = this.data as SocketData
      if (!admit(this, name, args)) return
      const reply = typeof args[args.length - 1] === 'function' ? (args.pop() as (r: unknown) => void) : undefined
      const run = args.length === 1 ? fn(this, data, args[0]) : Promise.reject(new ZyncError('BAD_REQUEST', `[zync] ${name} takes exactly one argument, got ${args.length}`))
      void ctx.track(
        run.finally(() => data.pending--).then(
          (r) => reply?.(r),
          (err: unknown) => {
            const w = toWireError(err)
            metrics?.rejected.inc({ code: w.code })
            misbehaved(this, name, w.code, w.message)
            if (!(err instanceof ZyncError)) log.error('handler failed', { event: name, err: String((err as Error)?.stack ?? err) })
            else log.debug('request refused', { event: name, code: w.code, sid: this.id, user: data.user.id, message: w.message })
            if (reply) reply(w)
            else notice(this, name, args[0], w)
          },
        ),
      )
    }

  const onJoin = handle(EVENTS.join, async (socket, data, payload): Promise<WireJoinResponse | Buffer> => {
    const req = parse(joinSchema, payload)
    if (req.v !== PROTOCOL_VERSION && req.v !== OLDEST_PROTOCOL_VERSION) throw new ZyncError('PROTOCOL_VERSION', `[zync] server speaks protocol ${PROTOCOL_VERSION}, client ${req.v}; upgrade zync on both sides`)
    if (!joined(socket, req.doc)) {
      // Each new document costs memory on the server for as long as it stays loaded: bounded per socket.
      const wait = limited(data, 'joinBucket', 1, limits)
      if (wait !== undefined) throw rateLimited(`[zync] too many documents joined per second (limits.joinsPerSecond ${limits.joinsPerSecond}); slow down`, wait)
      let docs = data.joining ?? 0
      for (const r of socket.rooms) if (r.startsWith(ROOM_PREFIX)) docs++
      if (docs >= limits.docsPerSocket) throw rateLimited(`[zync] this connection has ${docs} documents joined (limits.docsPerSocket ${limits.docsPerSocket}); leave one (destroy or disconnect its store) to join another`, 5000)
      data.joining = (data.joining ?? 0) + 1
      try {
        return await joinDoc(socket, data, req)
      } finally {
        data.joining--
      }
    }
    return joinDoc(socket, data, req)
  })

  const joinDoc = async (socket: Socket, data: SocketData, req: z.infer<typeof joinSchema>): Promise<WireJoinResponse | Buffer> => {
    await ctx.allowed(data.user, req.doc, 'read')
    // Whether this user may write here, told with the answer so the app can show the document read-only
    // before an edit is refused (each ops batch is still authorized on its own). Asked alongside the rest
    // of the join; an authorize() that is down for now (a retryable throw) leaves the hint out.
    const writable = ctx.may(data.user, req.doc, 'write').catch(() => true)
    const h = await ctx.host(req.doc)
    // Join the room before reading the tail: nothing committed in between is missed (the client
    // drops what it gets twice by seq).
    await socket.join(room(req.doc))
    // The same store on a new connection (its old one half-open, after a network change, say): its old
    // presence entry goes now, not when that socket times out (~20 s of a frozen ghost cursor). Client ids
    // are public (every change record names its writer's): only the same authenticated user's old
    // connection counts, or anyone could clear anyone's presence by joining with their id.
    data.client = req.client
    for (const id of ctx.io.sockets.adapter.rooms.get(room(req.doc)) ?? []) {
      const old = id !== socket.id ? ctx.io.sockets.sockets.get(id) : undefined
      const od = old?.data as SocketData | undefined
      if (old && od!.client === req.client && od!.user.id === data.user.id) ctx.presence.leave(old, req.doc)
    }
    const r = await h.since(req.since, ctx.shared, req.at)
    const n = vvGet(h.current().clientMax, req.client)
    void ctx.presence.sendFull(socket, req.doc).catch(() => {})
    const answer = encodeJoinResponse({ ok: true, v: req.v, seq: r.seq, changes: r.changes, ...(r.snapshot ? { snapshot: r.snapshot } : {}), ...(r.rewound ? { rewound: true as const } : {}), ...(n ? { n } : {}), ...((await writable) ? {} : { readOnly: true as const }), ...(ctx.authenticated ? { user: publicUser(data.user) } : {}), serverTime: Date.now(), shortAcks: true, maxPayload: limits.maxPayload, opsPerSecond: limits.opsPerSecond, messagesPerSecond: limits.messagesPerSecond, presenceTtl: ctx.presence.ttl, presenceBytes: limits.presenceBytes, presencePerSecond: limits.presencePerSecond })
    // Protocol 3: the answer as UTF-8 JSON bytes, serialized in slices between which the node serves its
    // other clients (a big document's answer took the event loop for seconds: socket.io walked every
    // node of it looking for binary parts, then stringified it in one go). Protocol 2 clients get the
    // object, as before.
    return req.v === OLDEST_PROTOCOL_VERSION ? answer : jsonBytesYielding(answer)
  }

  const onOps = handle(EVENTS.ops, async (socket, data, payload): Promise<WireOpsResponse | WireCompactOpsResponse> => {
    const started = performance.now()
    const req = parseOpsEnvelope(payload)
    const wait = limited(data, 'opsBucket', 'o' in req ? req.o.length : req.ops.length, limits)
    if (wait !== undefined) throw rateLimited(`[zync] too many ops per second (limits.opsPerSecond ${limits.opsPerSecond}); slow down`, wait)
    if (!joined(socket, req.doc)) throw new ZyncError('NOT_JOINED', `[zync] join ${req.doc} before sending ops`, { retryable: true })
    await ctx.allowed(data.user, req.doc, 'write')
    const compact = 'o' in req
    const { accepted, refused, refusedAt } = compact ? splitOps(req.o, Date.now(), ctx.rejectFutureMs, req.k) : splitOps(req.ops, Date.now(), ctx.rejectFutureMs)
    const h = await ctx.host(req.doc)
    const res = accepted.length > 0 ? await h.submit(accepted, data.user.id, ctx.shared) : { results: [], entries: [], seq: h.seq }
    let inAck: Change[] | undefined
    if (res.entries.length > 0) {
      for (const e of res.entries) metrics?.applied.inc({ status: e.status })
      const conflicts = res.entries.filter((e) => e.status === 'conflict').length
      if (conflicts) metrics?.conflicts.inc(conflicts)
      // Broadcast before acknowledging: the author's ordered stream gets these changes first, in the
      // broadcast or (a lone zync writer) in this very ack.
      const changes = res.entries.map(toWire)
      if (await broadcast(req.doc, changes, compact ? socket.id : undefined)) inAck = changes
    }
    const results = inRequestOrder(res.results.map(ackResult), refused, refusedAt)
    for (const r of results) {
      if (r.ok) continue
      metrics?.rejected.inc({ code: r.code })
      misbehaved(socket, EVENTS.ops, r.code, r.message)
      log.debug('op refused', { doc: req.doc, op: r.id, code: r.code, sid: socket.id, user: data.user.id, message: r.message })
    }
    metrics?.ackLatency.observe((performance.now() - started) / 1000)
    // Answered in the form asked: positionally for compact requests.
    return compact ? encodeCompactOpsResponse({ ok: true, results, seq: res.seq, ...(inAck ? { changes: inAck } : {}) }, req.s === 1 ? accepted : undefined) : encodeOpsResponse({ ok: true, results, seq: res.seq })
  })

  const onHistory = handle(EVENTS.history, async (_socket, data, payload): Promise<HistoryResponse> => {
    const req = parse(historySchema, payload)
    // Priced by the entries asked for: an answer of 1000 entries costs the server what 1000 ops do.
    const wait = limited(data, 'historyBucket', req.limit ?? 100, limits)
    if (wait !== undefined) throw rateLimited(`[zync] too many history entries asked for per second (limits.historyPerSecond ${limits.historyPerSecond}); slow down`, wait)
    await ctx.allowed(data.user, req.doc, 'read')
    const h = await ctx.host(req.doc)
    const entries = await h.history({ ...(req.path ? { path: req.path } : {}), ...(req.limit ? { limit: req.limit } : {}) })
    // The newest entries up to a quarter of the send buffer: 100 edits of a 200 KB text were a 40 MB
    // answer, over `maxBufferedBytes`, so the asker was dropped as a slow consumer at every retry.
    const budget = Math.floor(limits.maxBufferedBytes / 4)
    let bytes = 0
    let kept = entries.length
    for (let i = 0; i < entries.length; i++) {
      bytes += entryBytes(entries[i]!, budget, true)
      if (bytes > budget && i > 0) {
        kept = i
        break
      }
    }
    return { ok: true, entries: entries.slice(0, kept).map(toChange), ...(kept < entries.length ? { truncated: true as const } : {}) }
  })

  const onPresence = handle(EVENTS.presence, async (socket, data, payload) => {
    const req = parse(presenceSchema, payload)
    if (!joined(socket, req.doc)) throw new ZyncError('NOT_JOINED', `[zync] join ${req.doc} before sending presence`, { retryable: true })
    const wait = limited(data, 'presenceBucket', 1, limits)
    if (wait !== undefined) throw rateLimited('[zync] presence updates are limited per second', wait)
    if (req.state && jsonBytes(req.state) > limits.presenceBytes) throw new ZyncError('TOO_LARGE', `[zync] presence state over ${limits.presenceBytes} bytes`)
    await ctx.allowed(data.user, req.doc, 'presence')
    ctx.presence.update(socket, req.doc, data.user, req.state)
    return { ok: true }
  })

  const onLeave = handle(EVENTS.leave, async (socket, _data, payload) => {
    const req = parse(leaveSchema, payload)
    await socket.leave(room(req.doc))
    ctx.presence.leave(socket, req.doc)
    return { ok: true }
  })

  // Clients may emit 'error' (not reserved by the parser): without a listener it would throw.
  function onError(this: Socket, err: unknown): void {
    log.debug('socket error', { sid: this.id, err: String(err) })
  }

  // Unknown events get a typed answer (when they ask for one) and nothing else.
  function onAny(this: Socket, event: unknown, ...args: unknown[]): void {
    if (typeof event === 'string' && KNOWN_EVENTS.has(event)) return
    const data = this.data as SocketData
    // Unknown events still count against the flood limits, and over them are refused (and counted) as known ones are.
    const wait = limited(data, 'messageBucket', 1, limits) ?? limited(data, 'bytesBucket', sizeOf([event, ...args], limits.bytesPerSecond * 2 + 1), limits)
    if (wait !== undefined) {
      refuse(this, String(event).slice(0, 64), args[args.length - 1], rateLimited('[zync] too many messages per second; slow down', wait))
      return
    }
    refuse(this, String(event).slice(0, 64), args[args.length - 1], new ZyncError('UNKNOWN_EVENT', `[zync] unknown event ${JSON.stringify(String(event).slice(0, 64))}`))
  }

  // 'disconnecting': the socket is still in its rooms, which say which documents it had joined.
  function onDisconnecting(this: Socket): void {
    for (const r of this.rooms) if (r.startsWith(ROOM_PREFIX)) ctx.presence.leave(this, r.slice(ROOM_PREFIX.length))
  }

  function onDisconnect(this: Socket, reason: unknown, description?: unknown): void {
    const data = this.data as SocketData
    // A frame over maxPayload closes the connection in engine.io, before any handler: said here.
    if (reason === 'transport error' && /payload/i.test(String((description as Error | undefined)?.message))) {
      misbehaved(this, 'frame', 'TOO_LARGE', `a frame over maxPayload (${limits.maxPayload} bytes) closed the connection`)
    }
    metrics?.connections.dec()
    metrics?.disconnects.inc({ reason: String(reason).replace(/[^\w ]/g, '').slice(0, 40) })
    log.debug('disconnect', { sid: this.id, user: data.user.id, reason })
  }

  return {
    announce(doc: string, entries: LogEntry[]): void {
      for (let i = 0; i < entries.length; i += MAX_COALESCED) {
        ctx.io.local.to(room(doc)).emit(EVENTS.changes, encodeChangesMessage({ doc, changes: entries.slice(i, i + MAX_COALESCED).map(toWire) }))
      }
    },
    attach(socket: Socket): void {
      socket.on('error', onError)
      socket.onAny(onAny)
      socket.on(EVENTS.join, onJoin)
      socket.on(EVENTS.ops, onOps)
      socket.on(EVENTS.history, onHistory)
      socket.on(EVENTS.presence, onPresence)
      socket.on(EVENTS.leave, onLeave)
      socket.on('disconnecting', onDisconnecting)
      socket.on('disconnect', onDisconnect)
    },
  }
}
