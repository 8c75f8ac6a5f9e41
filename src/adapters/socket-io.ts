import { io, type Socket } from 'socket.io-client'
import { REFUSAL_CODES, ZyncError, fromWireError, toWireError, type WireError } from '../core/errors'
import {
  EVENTS,
  type ChangesMessage,
  type HistoryRequest,
  type HistoryResponse,
  type JoinRequest,
  type JoinResponse,
  type OpsRequest,
  type OpsResponse,
  type PresenceMessage,
  type PresenceUpdate,
  type RefusedNotice,
} from '../core/protocol'
import type { Transport, TransportHandlers } from '../core/transport'
import { decodeChangesMessage, decodeJoinResponse, decodeOpsResponse, encodeOpsRequest } from '../core/wire'

/** How long the first connection attempt after a loss may take before it is retried (socket.io's own default: 20 s). */
const FIRST_CONNECT_TIMEOUT_MS = 10_000

export interface SocketTransportOptions {
  /**
   * Server URL, e.g. 'http://127.0.0.1:4000'. Or the URLs of several nodes of one cluster (sharing
   * storage and Redis): a failed attempt or a lost connection moves on to the next URL, round robin,
   * with backoff (the first retry after ~100 ms, then 250 ms doubling to 5 s, jittered). The engine
   * catches up from the log on each node. Give `url` or `socket`.
   */
  url?: string | string[] | undefined
  /** Or a socket.io-client Socket you created (zync will not close it, nor manage its reconnection). */
  socket?: Socket | undefined
  /**
   * Sent in socket.io's `auth` on every (re)connection. A function is called each time, so it can
   * hand over a fresh token: `(cb) => cb({ token: getToken() })`. Default: none.
   */
  auth?: Record<string, unknown> | ((cb: (data: object) => void) => void) | undefined
  /** Timeout for join and history requests in ms. Default 10000. */
  requestTimeout?: number
}

function wire(code: WireError['code'], message: string, retryable: boolean): WireError {
  return { ok: false, code, message, retryable }
}

/**
 * Transport over socket.io. Delivery is the engine's job (durable outbox, op ids, server dedupe),
 * so this uses plain emits with acks and never relies on connection-state recovery.
 *
 * Reconnection of a socket it owns is its own, not socket.io's: socket.io does not reconnect after a
 * refusal by a server middleware or a server-side disconnect, and cannot move to another URL.
 *
 *   open ──► connecting ──connect──► connected ──lost / server disconnect──► wait (backoff) ──► next URL
 *               │  ▲                                                              │
 *               │  └──────────────────────────────────────────────────────────────┘
 *               └──connect_error: auth refused ──► report, stay down until open() again
 */
/**
 * The transports that joined each document on a socket the app shares between stores: the socket
 * leaves a document (`zync:leave`) when the last of them closes. The server keeps one room and one
 * presence entry per socket and document, so a store leaving must not take a sibling's away.
 */
const SHARED_JOINS = new WeakMap<Socket, Map<string, Set<SocketIoTransport>>>()

export class SocketIoTransport implements Transport {
  private socket: Socket | undefined
  /** The document this transport joined (on a shared socket: left again on close and destroy). */
  private doc: string | undefined
  private readonly owned: boolean
  private readonly urls: string[]
  private urlIndex = 0
  private failures = 0
  private wanted = false
  /** The server offered the short form of own changes in acks (its join answer's `shortAcks`). */
  private shortAcks = false
  private retryTimer: ReturnType<typeof setTimeout> | undefined
  private handlers: TransportHandlers | undefined

  constructor(private readonly o: SocketTransportOptions) {
    this.urls = o.url === undefined ? [] : Array.isArray(o.url) ? [...o.url] : [o.url]
    if (!o.socket && this.urls.length === 0) throw new ZyncError('BAD_REQUEST', '[zync] sync() needs `url` (one or several) or `socket`')
    this.owned = !o.socket
    this.socket = o.socket
    if (o.socket) this.bind(o.socket)
  }

  /** On a shared socket: connected while this store wants to be (its close() leaves the document, not the socket). */
  get connected(): boolean {
    return (this.socket?.connected ?? false) && (this.owned || this.wanted)
  }

  link(): [object, string | undefined] | undefined {
    return this.owned || !this.socket ? undefined : [this.socket, this.socket.id]
  }

  /** The URL of the node this transport uses (or tries) now. */
  get url(): string | undefined {
    return this.owned ? this.urls[this.urlIndex] : undefined
  }

  open(handlers: TransportHandlers): void {
    this.handlers = handlers
    this.wanted = true
    if (!this.socket) this.socket = this.create(this.urls[this.urlIndex]!)
    if (this.socket.connected) handlers.onConnect()
    else if (!this.retryTimer) this.dial()
  }

  private create(url: string): Socket {
    const s = io(url, {
      autoConnect: false,
      reconnection: false,
      forceNew: true,
      transports: ['websocket'],
      auth: this.o.auth ?? {},
    })
    this.bind(s)
    return s
  }

  private readonly listeners: Record<string, (...args: never[]) => void> = {
    connect: () => {
      this.failures = 0
      // A shared socket's events reach every store on it, and an owned one may finish opening after
      // close() (see hangUp): a store that closed stays out.
      if (this.wanted) this.handlers?.onConnect()
    },
    disconnect: (reason: string) => {
      // The server forgot the socket's rooms with it: a reconnection joins afresh.
      if (!this.owned && this.socket) SHARED_JOINS.delete(this.socket)
      if (!this.owned && !this.wanted) return
      this.handlers?.onDisconnect(String(reason))
      // 'io client disconnect' is our own close(); everything else (lost transport, a server that
      // shut down or dropped us) deserves another attempt.
      if (reason !== 'io client disconnect') this.retry()
    },
    connect_error: (err: Error & { data?: { code?: string; message?: string; retryable?: boolean } }) => {
      const code = (err.data?.code as WireError['code'] | undefined) ?? 'DISCONNECTED'
      const final = REFUSAL_CODES.has(code)
      this.handlers?.onError(new ZyncError(code, err.data?.message ?? `[zync] cannot connect to ${this.url ?? 'the server'}: ${err.message}`, { retryable: !final }))
      if (!final) this.retry()
    },
    [EVENTS.changes]: (msg: unknown) => {
      if (!this.owned && !this.wanted) return
      let decoded: ChangesMessage
      try {
        decoded = decodeChangesMessage(msg)
      } catch (err) {
        this.handlers?.onError(err as ZyncError)
        return
      }
      this.handlers?.onChanges(decoded)
    },
    [EVENTS.presence]: (msg: PresenceMessage) => {
      if (this.owned || this.wanted) this.handlers?.onPresence(msg)
    },
    [EVENTS.resume]: () => {
      if (this.owned || this.wanted) this.handlers?.onResume?.()
    },
    [EVENTS.refused]: (msg: RefusedNotice) => {
      if ((this.owned || this.wanted) && msg?.event === EVENTS.presence && typeof msg.error?.code === 'string') this.handlers?.onPresenceRefused?.(msg.doc, fromWireError(msg.error))
    },
  }

  private bind(s: Socket): void {
    for (const [ev, fn] of Object.entries(this.listeners)) s.on(ev, fn as (...args: unknown[]) => void)
  }

  private unbind(s: Socket): void {
    for (const [ev, fn] of Object.entries(this.listeners)) s.off(ev, fn as (...args: unknown[]) => void)
  }

  /** Next attempt after a backoff, on the next URL when there are several. Sockets we do not own are left alone. */
  private retry(): void {
    if (!this.owned || !this.wanted || this.retryTimer) return
    this.failures += 1
    // The first retry after a lost connection is quick (failover); then 250 ms doubling up to 5 s.
    const base = this.failures === 1 ? 100 : Math.min(5000, 250 * 2 ** Math.min(this.failures - 2, 5))
    const delay = base / 2 + Math.random() * (base / 2)
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined
      if (!this.wanted) return
      if (this.urls.length > 1) this.nextUrl()
      this.dial()
    }, delay)
    ;(this.retryTimer as { unref?: () => void }).unref?.()
  }

  private nextUrl(): void {
    const old = this.socket
    this.urlIndex = (this.urlIndex + 1) % this.urls.length
    this.socket = this.create(this.urls[this.urlIndex]!)
    if (old) {
      this.unbind(old)
      this.hangUp(old)
    }
  }

  skip(tried: number): boolean {
    if (!this.owned || !this.wanted || tried >= this.urls.length) return false
    if (this.retryTimer) clearTimeout(this.retryTimer)
    this.retryTimer = undefined
    this.nextUrl()
    this.dial()
    return true
  }

  /**
   * Connects an owned socket. A WebSocket closed before it opened (a proxy dropping them, say) leaves
   * socket.io waiting for its 20 s connect timeout without a word: that is a failed attempt, said and retried.
   */
  private dial(): void {
    const s = this.socket
    if (!s) return
    // socket.io waits 20 s for a connection that never answers (a link gone half-open). The first
    // attempt after a loss gives up after 10 s (its handshake is three round trips of a few hundred
    // bytes); one that timed out already waits the full 20 s (a link with seconds of latency).
    if (this.owned) s.io.timeout(this.failures <= 1 ? FIRST_CONNECT_TIMEOUT_MS : 20_000)
    s.connect()
    if (!this.owned || s.connected) return
    const engine = s.io.engine
    // socket.io hands packets on a turn later: a refusal (connect_error) read before the close comes after
    // it. Still stuck afterwards means the manager is still 'opening' (its private state; a socket.io-client
    // without it makes this a no-op, and its own connect timeout applies).
    engine?.once('close', (reason: string) =>
      setTimeout(() => {
        const stuck = (s.io as unknown as { _readyState?: string })._readyState === 'opening'
        if (!stuck || s !== this.socket || s.connected || !this.wanted || s.io.engine !== engine) return
        s.disconnect()
        this.handlers?.onError(new ZyncError('DISCONNECTED', `[zync] the connection to ${this.url ?? 'the server'} closed before it was established (${reason}); retrying`, { retryable: true }))
        this.retry()
      }, 20),
    )
  }

  close(): void {
    this.wanted = false
    if (this.retryTimer) clearTimeout(this.retryTimer)
    this.retryTimer = undefined
    // A socket the app passed stays up for its other stores: this one only leaves its document.
    if (this.owned) this.hangUp(this.socket)
    else this.leaveShared()
  }

  /**
   * Disconnects an owned socket. One whose WebSocket is still opening is left to open first: closing a
   * WebSocket before it is established makes browsers log an error for every store destroyed while
   * connecting (quick navigation between documents). It is closed once it opens or fails, unless a
   * connect() took it back meanwhile.
   */
  private hangUp(s: Socket | undefined): void {
    if (!s) return
    if (s.connected || s.io.engine?.readyState !== 'opening') {
      s.disconnect()
      return
    }
    const done = () => {
      s.off('connect', done)
      s.off('connect_error', done)
      if (s !== this.socket || !this.wanted) s.disconnect()
    }
    s.on('connect', done)
    s.on('connect_error', done)
  }

  /** On a shared socket: `zync:leave` once no other store on it has this document joined. */
  private leaveShared(): void {
    const s = this.socket
    const doc = this.doc
    if (this.owned || !s || doc === undefined) return
    const joins = SHARED_JOINS.get(s)?.get(doc)
    if (!joins?.delete(this)) return
    if (joins.size > 0) return
    SHARED_JOINS.get(s)?.delete(doc)
    if (s.connected) s.emit(EVENTS.leave, { doc })
  }

  private async request<T>(event: string, payload: unknown, timeout: number): Promise<T | WireError> {
    const s = this.socket
    if (!s || !this.connected) return wire('DISCONNECTED', '[zync] not connected', true)
    try {
      return (await s.timeout(timeout).emitWithAck(event, payload)) as T
    } catch {
      // socket.io rejects pending acknowledgements when the connection drops: that is no timeout.
      if (!s.connected) return wire('DISCONNECTED', `[zync] connection lost before the answer to ${event}`, true)
      return wire('TIMEOUT', `[zync] no answer to ${event} within ${timeout} ms`, true)
    }
  }

  async join(req: JoinRequest): Promise<JoinResponse> {
    this.doc = req.doc
    const s = this.socket
    const res = decoded(await this.request<unknown>(EVENTS.join, req, this.o.requestTimeout ?? 10_000), decodeJoinResponse)
    if (res.ok) this.shortAcks = res.shortAcks === true
    if (!this.owned && s && res.ok && s === this.socket && s.connected) {
      let docs = SHARED_JOINS.get(s)
      if (!docs) SHARED_JOINS.set(s, (docs = new Map()))
      let joins = docs.get(req.doc)
      if (!joins) docs.set(req.doc, (joins = new Set()))
      joins.add(this)
      // Closed while the join was under way: leave again (unless a sibling store has it joined).
      if (!this.wanted) this.leaveShared()
    }
    return res
  }

  async send(req: OpsRequest, timeoutMs: number): Promise<OpsResponse> {
    return decoded(await this.request<unknown>(EVENTS.ops, encodeOpsRequest(req, this.shortAcks), timeoutMs), (r) => decodeOpsResponse(r, req.ops))
  }

  history(req: HistoryRequest): Promise<HistoryResponse> {
    return this.request<HistoryResponse>(EVENTS.history, req, this.o.requestTimeout ?? 10_000)
  }

  presence(update: PresenceUpdate): void {
    if (this.connected) this.socket!.emit(EVENTS.presence, update)
  }

  destroy(): void {
    this.wanted = false
    if (this.retryTimer) clearTimeout(this.retryTimer)
    this.retryTimer = undefined
    const s = this.socket
    if (!s) return
    this.leaveShared()
    this.unbind(s)
    this.socket = undefined
    if (this.owned) this.hangUp(s)
  }
}

/** Answers carry change records in the compact wire form (core/wire.ts); a malformed one is a typed error. */
function decoded<T>(r: unknown, decode: (r: unknown) => T): T | WireError {
  try {
    return decode(r)
  } catch (err) {
    return toWireError(err)
  }
}
