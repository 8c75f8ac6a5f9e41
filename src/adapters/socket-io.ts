import { io, type Socket } from 'socket.io-client'
import { ZyncError, type WireError } from '../core/errors'
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
} from '../core/protocol'
import type { Transport, TransportHandlers } from '../core/transport'

export interface SocketTransportOptions {
  /** Server URL, e.g. 'http://127.0.0.1:4000'. */
  url?: string
  /** Or a socket.io-client Socket you created (zync will not close it on destroy). */
  socket?: Socket
  /** Sent in socket.io's `auth` on every (re)connection. */
  auth?: Record<string, unknown>
  /** Timeout for join and history requests in ms. Default 10000. */
  requestTimeout?: number
}

function wire(code: WireError['code'], message: string, retryable: boolean): WireError {
  return { ok: false, code, message, retryable }
}

/**
 * Transport over socket.io. Delivery is the engine's job (durable outbox, op ids, server dedupe),
 * so this uses plain emits with acks and never relies on connection-state recovery.
 */
export class SocketIoTransport implements Transport {
  private socket: Socket | undefined
  private readonly owned: boolean
  private handlers: TransportHandlers | undefined
  private bound = false

  constructor(private readonly o: SocketTransportOptions) {
    if (!o.socket && !o.url) throw new ZyncError('BAD_REQUEST', '[zync] sync() needs `url` or `socket`')
    this.owned = !o.socket
    this.socket = o.socket
  }

  get connected(): boolean {
    return this.socket?.connected ?? false
  }

  open(handlers: TransportHandlers): void {
    this.handlers = handlers
    if (!this.socket) {
      this.socket = io(this.o.url!, {
        autoConnect: false,
        transports: ['websocket'],
        auth: this.o.auth ?? {},
        reconnectionDelay: 250,
        reconnectionDelayMax: 5000,
        randomizationFactor: 0.5,
      })
    }
    if (!this.bound) this.bind(this.socket)
    if (this.socket.connected) handlers.onConnect()
    else this.socket.connect()
  }

  private readonly listeners: Record<string, (...args: never[]) => void> = {
    connect: () => this.handlers?.onConnect(),
    disconnect: (reason: string) => this.handlers?.onDisconnect(String(reason)),
    connect_error: (err: Error & { data?: { code?: string; message?: string } }) => {
      const code = (err.data?.code as WireError['code'] | undefined) ?? 'DISCONNECTED'
      const auth = code === 'UNAUTHENTICATED' || code === 'FORBIDDEN'
      this.handlers?.onError(new ZyncError(code, err.data?.message ?? `[zync] cannot connect: ${err.message}`, { retryable: !auth }))
    },
    [EVENTS.changes]: (msg: ChangesMessage) => this.handlers?.onChanges(msg),
    [EVENTS.presence]: (msg: PresenceMessage) => this.handlers?.onPresence(msg),
  }

  private bind(s: Socket): void {
    this.bound = true
    for (const [ev, fn] of Object.entries(this.listeners)) s.on(ev, fn as (...args: unknown[]) => void)
  }

  close(): void {
    this.socket?.disconnect()
  }

  private async request<T>(event: string, payload: unknown, timeout: number): Promise<T | WireError> {
    const s = this.socket
    if (!s?.connected) return wire('DISCONNECTED', '[zync] not connected', true)
    try {
      return (await s.timeout(timeout).emitWithAck(event, payload)) as T
    } catch {
      return wire('TIMEOUT', `[zync] no answer to ${event} within ${timeout} ms`, true)
    }
  }

  join(req: JoinRequest): Promise<JoinResponse> {
    return this.request<JoinResponse>(EVENTS.join, req, this.o.requestTimeout ?? 10_000)
  }

  send(req: OpsRequest, timeoutMs: number): Promise<OpsResponse> {
    return this.request<OpsResponse>(EVENTS.ops, req, timeoutMs)
  }

  history(req: HistoryRequest): Promise<HistoryResponse> {
    return this.request<HistoryResponse>(EVENTS.history, req, this.o.requestTimeout ?? 10_000)
  }

  presence(update: PresenceUpdate): void {
    if (this.socket?.connected) this.socket.emit(EVENTS.presence, update)
  }

  destroy(): void {
    const s = this.socket
    if (!s) return
    for (const [ev, fn] of Object.entries(this.listeners)) s.off(ev, fn as (...args: unknown[]) => void)
    if (this.owned) s.disconnect()
    this.socket = undefined
  }
}
