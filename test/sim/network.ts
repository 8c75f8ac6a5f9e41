/**
 * The simulated network: an in-process `Transport` for the real SyncEngine and a small in-process
 * server that does what src/server/connection.ts does for join, ops and history (schema checks, clock
 * check, DocHost.submit, broadcast to the room before the ack) over the real DocHost/DocState.
 *
 * Weather, all decided by the seeded PRNG on virtual time:
 * - every message is delayed by a random latency, so messages overtake each other (reordering);
 * - a message may be delivered twice (duplication; socket.io retries do that);
 * - a message may be lost; as with TCP that kills the connection: the server notices at once, the
 *   client only after a detection delay (a heartbeat timeout), and requests in flight time out;
 * - a client can be partitioned (nothing gets through and it cannot reconnect) and healed;
 * - the transport reconnects by itself with a random delay, like socket.io.
 * Messages are JSON-copied on the way: no two sides share an object.
 */
import { ZyncError, toWireError, type WireError } from '../../src/core/errors'
import {
  PROTOCOL_VERSION,
  type HistoryRequest,
  type HistoryResponse,
  type JoinRequest,
  type JoinResponse,
  type Op,
  type OpsRequest,
  type OpsResponse,
  type PresenceUpdate,
} from '../../src/core/protocol'
import type { Transport, TransportHandlers } from '../../src/core/transport'
import type { DocHost } from '../../src/server/doc-host'
import { toChange, toWire } from '../../src/server/doc-state'
import {
  decodeChangesMessage,
  decodeJoinResponse,
  decodeOpsResponse,
  encodeChangesMessage,
  encodeCompactOpsResponse,
  encodeJoinResponse,
  encodeOpsRequest,
  encodeOpsResponse,
  type WireChangesMessage,
  type WireCompactOpsResponse,
  type WireOpsResponse,
} from '../../src/core/wire'
import { ackResult, inRequestOrder, splitOps } from '../../src/server/ops-batch'
import { historySchema, joinSchema, parse, parseOpsEnvelope } from '../../src/server/schema'
import type { Rng, VirtualScheduler } from './scheduler'

export interface Weather {
  /** One-way latency range (ms). */
  latency: [number, number]
  /** Probability that a message is delivered twice. */
  dup: number
  /** Probability that a message is lost (and its connection with it). */
  drop: number
  /** How long a client takes to notice a dead connection (ms). */
  detect: [number, number]
  /** Delay before the transport tries to reconnect (ms). */
  reconnect: [number, number]
  /**
   * Probability that the server refuses a whole ops batch with a retryable error, applying none of it
   * (as it does over its rate limits), while the batches around it may be applied.
   */
  refuse: number
}

export const CALM: Weather = { latency: [1, 20], dup: 0, drop: 0, detect: [200, 1000], reconnect: [50, 500], refuse: 0 }

/** Counters of what the network did, for the run summary. */
export interface NetStats {
  /** Joins answered with a snapshot (the client was too far behind for the log tail). */
  snapshots: number
  messages: number
  dropped: number
  duplicated: number
  connections: number
  broken: number
}

class Connection {
  alive = true
  readonly docs = new Set<string>()
  constructor(
    readonly id: number,
    readonly client: SimTransport,
  ) {}
}

/**
 * What serialization does to a message: each receiver gets (and owns) its own copy, with JSON's rules
 * (undefined properties vanish, undefined in arrays and non-finite numbers become null). A direct
 * recursive copy: several times faster than a JSON round trip, which matters at millions of messages.
 */
function copyJson(v: unknown): unknown {
  if (v === null || typeof v !== 'object') {
    if (typeof v === 'number' && !Number.isFinite(v)) return null
    return v
  }
  if (Array.isArray(v)) {
    const out = new Array<unknown>(v.length)
    for (let i = 0; i < v.length; i++) {
      const x = v[i]
      out[i] = x === undefined || typeof x === 'function' ? null : copyJson(x)
    }
    return out
  }
  const out: Record<string, unknown> = {}
  for (const k of Object.keys(v)) {
    const x = (v as Record<string, unknown>)[k]
    if (x === undefined || typeof x === 'function') continue
    out[k] = copyJson(x)
  }
  return out
}

class Wire<T> {
  private readonly v: unknown
  constructor(v: T) {
    // Taken at send time: later changes by the sender do not travel.
    this.v = copyJson(v)
  }
  copy(): T {
    return copyJson(this.v) as T
  }
}

const wire = <T>(v: T): T => copyJson(v) as T

export class SimNetwork {
  weather: Weather
  readonly stats: NetStats = { snapshots: 0, messages: 0, dropped: 0, duplicated: 0, connections: 0, broken: 0 }
  private readonly partitioned = new Set<string>()
  private nextConn = 1
  server!: SimServer

  constructor(
    readonly sched: VirtualScheduler,
    private readonly rng: Rng,
    weather: Weather,
  ) {
    this.weather = weather
  }

  /** Whether the server refuses this ops batch (no draw when the weather never refuses). */
  refuses(): boolean {
    return this.weather.refuse > 0 && this.rng.chance(this.weather.refuse)
  }

  isPartitioned(device: string): boolean {
    return this.partitioned.has(device)
  }

  /** Cuts a device off: its connection dies and it cannot reconnect until `heal`. */
  partition(client: SimTransport): void {
    this.partitioned.add(client.device)
    client.breakConnection()
  }

  heal(device: string): void {
    this.partitioned.delete(device)
  }

  healAll(): void {
    this.partitioned.clear()
  }

  latency(): number {
    const [lo, hi] = this.weather.latency
    return this.rng.int(lo, hi)
  }

  range([lo, hi]: [number, number]): number {
    return this.rng.int(lo, hi)
  }

  open(client: SimTransport): Connection {
    this.stats.connections++
    return new Connection(this.nextConn++, client)
  }

  /** Sends one message over `conn`; `deliver` runs at the far end if the connection still lives then. */
  send(conn: Connection, deliver: () => void): void {
    if (!conn.alive) return
    this.stats.messages++
    if (this.partitioned.has(conn.client.device) || this.rng.chance(this.weather.drop)) {
      this.stats.dropped++
      this.kill(conn)
      return
    }
    const at = this.latency()
    this.sched.after(at, () => {
      if (conn.alive) deliver()
    })
    if (this.rng.chance(this.weather.dup)) {
      this.stats.duplicated++
      this.sched.after(at + this.latency(), () => {
        if (conn.alive) deliver()
      })
    }
  }

  /** The connection dies: the server forgets it now, the client notices after a detection delay. */
  kill(conn: Connection): void {
    if (!conn.alive) return
    conn.alive = false
    this.stats.broken++
    this.server.drop(conn)
    this.sched.after(this.range(this.weather.detect), () => conn.client.lost(conn))
  }
}

type Pending = { resolve: (r: unknown) => void; timer: ReturnType<typeof setTimeout>; ops?: readonly Op[] }

/** The client end: what SocketIoTransport is over socket.io, here over SimNetwork. */
export class SimTransport implements Transport {
  private handlers: TransportHandlers | undefined
  private conn: Connection | undefined
  private want = false
  private dialing = false
  private destroyed = false
  private nextReq = 1
  private readonly pending = new Map<number, Pending>()
  /** The server offered the short form of own changes in acks, as the socket.io adapter reads it. */
  private shortAcks = false
  /** Every ops request sent, for the checker: op id → the op as last sent. */
  readonly sent = new Map<string, Op>()
  /** Op ids the server acknowledged to this client (ok results). */
  readonly acked = new Set<string>()

  constructor(
    readonly clientId: string,
    readonly user: string,
    private readonly net: SimNetwork,
    /** The machine it runs on: partitions cut off the device, whichever client id it has now. */
    readonly device: string = clientId,
  ) {}

  get connected(): boolean {
    return this.conn !== undefined
  }

  open(handlers: TransportHandlers): void {
    this.handlers = handlers
    this.want = true
    if (this.conn) {
      handlers.onConnect()
      return
    }
    this.dial()
  }

  private dial(): void {
    if (this.dialing || this.destroyed) return
    this.dialing = true
    this.net.sched.after(this.net.latency() * 2, () => {
      this.dialing = false
      if (!this.want || this.conn || this.destroyed) return
      if (this.net.isPartitioned(this.device)) {
        this.handlers?.onError(new ZyncError('DISCONNECTED', '[zync] cannot connect: network unreachable', { retryable: true }))
        this.redial()
        return
      }
      this.conn = this.net.open(this)
      this.net.server.accept(this.conn)
      this.handlers?.onConnect()
    })
  }

  private redial(): void {
    this.net.sched.after(this.net.range(this.net.weather.reconnect), () => {
      if (this.want && !this.conn) this.dial()
    })
  }

  close(): void {
    this.want = false
    const c = this.conn
    if (!c) return
    this.conn = undefined
    this.net.kill(c)
    this.handlers?.onDisconnect('io client disconnect')
  }

  /** Network trouble on our connection (partition). */
  breakConnection(): void {
    if (this.conn) this.net.kill(this.conn)
  }

  /** Called once we notice `conn` died. */
  lost(conn: Connection): void {
    if (this.conn !== conn) return
    this.conn = undefined
    this.handlers?.onDisconnect('transport close')
    if (this.want) this.redial()
  }

  private request<T>(kind: 'join' | 'ops' | 'history', payload: unknown, timeout: number, ops?: readonly Op[]): Promise<T | WireError> {
    const conn = this.conn
    if (!conn) return Promise.resolve({ ok: false, code: 'DISCONNECTED', message: '[zync] not connected', retryable: true })
    const id = this.nextReq++
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id)
        resolve({ ok: false, code: 'TIMEOUT', message: `[zync] no answer to ${kind} within ${timeout} ms`, retryable: true })
      }, timeout)
      this.pending.set(id, { resolve: resolve as (r: unknown) => void, timer, ...(ops ? { ops } : {}) })
      const body = new Wire(payload)
      this.net.send(conn, () =>
        this.net.server.handle(conn, kind, body.copy(), (res) => {
          const answer = new Wire(res)
          this.net.send(conn, () => this.reply(id, kind, answer.copy()))
        }),
      )
    })
  }

  private reply(id: number, kind: string, res: unknown): void {
    const p = this.pending.get(id)
    if (!p) return // duplicate or late answer
    this.pending.delete(id)
    clearTimeout(p.timer)
    // Answers travel in the wire form (core/wire.ts) and are decoded as the socket.io adapter does.
    const decoded = kind === 'ops' ? decodeOpsResponse(res, p.ops) : kind === 'join' ? decodeJoinResponse(res) : res
    if (kind === 'join' && (decoded as JoinResponse).ok) this.shortAcks = (decoded as Extract<JoinResponse, { ok: true }>).shortAcks === true
    if (kind === 'ops') {
      const r = decoded as OpsResponse
      if (r.ok) for (const x of r.results) if (x.ok) this.acked.add(x.id)
    }
    p.resolve(decoded)
  }

  join(req: JoinRequest): Promise<JoinResponse> {
    return this.request<JoinResponse>('join', req, 10_000)
  }

  send(req: OpsRequest, timeoutMs: number): Promise<OpsResponse> {
    for (const op of req.ops) this.sent.set(op.id, wire(op))
    return this.request<OpsResponse>('ops', encodeOpsRequest(req, this.shortAcks), timeoutMs, req.ops)
  }

  history(req: HistoryRequest): Promise<HistoryResponse> {
    return this.request<HistoryResponse>('history', req, 10_000)
  }

  presence(_update: PresenceUpdate): void {}

  deliverChanges(msg: WireChangesMessage): void {
    this.handlers?.onChanges(decodeChangesMessage(msg))
  }

  destroy(): void {
    this.destroyed = true
    this.close()
    for (const p of this.pending.values()) clearTimeout(p.timer)
    this.pending.clear()
  }
}

/** What connection.ts does for join, ops and history, in process. */
export class SimServer {
  private readonly rooms = new Map<string, Set<Connection>>()
  rejectFutureMs = 86_400_000

  constructor(
    private readonly net: SimNetwork,
    private readonly host: DocHost,
  ) {
    net.server = this
  }

  accept(_conn: Connection): void {}

  drop(conn: Connection): void {
    for (const doc of conn.docs) this.rooms.get(doc)?.delete(conn)
    conn.docs.clear()
  }

  handle(conn: Connection, kind: 'join' | 'ops' | 'history', payload: unknown, reply: (r: unknown) => void): void {
    const run = kind === 'join' ? this.join(conn, payload) : kind === 'ops' ? this.ops(conn, payload) : this.history(payload)
    // Answers are encoded as connection.ts encodes them.
    const encode = (r: unknown) => (kind === 'join' ? encodeJoinResponse(r as JoinResponse) : r)
    void run.then((r) => reply(encode(r)), (err: unknown) => reply(toWireError(err)))
  }

  private async join(conn: Connection, payload: unknown): Promise<JoinResponse> {
    const req = parse(joinSchema, payload)
    if (req.v !== PROTOCOL_VERSION) throw new ZyncError('PROTOCOL_VERSION', '[zync] protocol mismatch')
    if (req.doc !== this.host.doc) throw new ZyncError('FORBIDDEN', '[zync] unknown document')
    // Join the room before reading the tail, as the real server does.
    if (conn.alive) {
      let room = this.rooms.get(req.doc)
      if (!room) this.rooms.set(req.doc, (room = new Set()))
      room.add(conn)
      conn.docs.add(req.doc)
    }
    const r = await this.host.since(req.since, false)
    if (r.snapshot) this.net.stats.snapshots++
    return { ok: true, v: PROTOCOL_VERSION, seq: r.seq, changes: r.changes, ...(r.snapshot ? { snapshot: r.snapshot } : {}), serverTime: this.net.sched.now, shortAcks: true }
  }

  private async ops(conn: Connection, payload: unknown): Promise<WireOpsResponse | WireCompactOpsResponse> {
    const req = parseOpsEnvelope(payload)
    if (!conn.docs.has(req.doc)) throw new ZyncError('NOT_JOINED', `[zync] join ${req.doc} before sending ops`, { retryable: true })
    if (this.net.refuses()) throw new ZyncError('RATE_LIMITED', '[zync] too many ops per second; slow down (simulated)', { retryable: true })
    // The engine's transport sends compact ops (core/wire.ts), as the socket.io adapter does.
    const compact = 'o' in req
    const { accepted, refused, refusedAt } = compact ? splitOps(req.o, this.net.sched.now, this.rejectFutureMs, req.k) : splitOps(req.ops, this.net.sched.now, this.rejectFutureMs)
    const res = accepted.length > 0 ? await this.host.submit(accepted, conn.client.user, false) : { results: [], entries: [], seq: this.host.seq }
    // As connection.ts does for a broadcast with one writer: the others get the changes in a broadcast,
    // the author (a compact request) in its ack.
    const changes = res.entries.map(toWire)
    if (changes.length > 0) {
      const body = new Wire(encodeChangesMessage({ doc: req.doc, changes }))
      for (const c of this.rooms.get(req.doc) ?? []) if (!compact || c !== conn) this.net.send(c, () => c.client.deliverChanges(body.copy()))
    }
    const answer = { ok: true as const, results: inRequestOrder(res.results.map(ackResult), refused, refusedAt), seq: res.seq }
    return compact ? encodeCompactOpsResponse({ ...answer, ...(changes.length > 0 ? { changes } : {}) }, req.s === 1 ? accepted : undefined) : encodeOpsResponse(answer)
  }

  private async history(payload: unknown): Promise<HistoryResponse> {
    const req = parse(historySchema, payload)
    const entries = await this.host.history({ ...(req.path ? { path: req.path } : {}), ...(req.limit ? { limit: req.limit } : {}) })
    return { ok: true, entries: entries.map(toChange) }
  }
}
