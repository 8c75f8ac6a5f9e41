import type { ZyncError } from './errors'
import type {
  ChangesMessage,
  HistoryRequest,
  HistoryResponse,
  JoinRequest,
  JoinResponse,
  OpsRequest,
  OpsResponse,
  PresenceMessage,
  PresenceUpdate,
} from './protocol'

export interface TransportHandlers {
  onConnect(): void
  onDisconnect(reason: string): void
  /** Connection refused or failed (auth errors arrive here). */
  onError(error: ZyncError): void
  onChanges(msg: ChangesMessage): void
  onPresence(msg: PresenceMessage): void
  /** The server refused a presence update of `doc` (sent without an ack, so told apart). */
  onPresenceRefused?(doc: string | undefined, error: ZyncError): void
  /** The server's storage works again after an outage (EVENTS.resume): batches it refused may go now. */
  onResume?(): void
}

/**
 * How the engine talks to a sync server. Implemented over socket.io (adapters/socket-io.ts) and
 * in-process for tests and the simulation. Requests never reject: failures resolve to a WireError,
 * so a promise nobody awaits never becomes an unhandled rejection.
 */
export interface Transport {
  readonly connected: boolean
  /** Start connecting (and keep reconnecting) with these handlers. */
  open(handlers: TransportHandlers): void
  /** Go offline on purpose; `open` again to reconnect. */
  close(): void
  join(req: JoinRequest): Promise<JoinResponse>
  send(req: OpsRequest, timeoutMs: number): Promise<OpsResponse>
  history(req: HistoryRequest): Promise<HistoryResponse>
  presence(update: PresenceUpdate): void
  /**
   * The connection this transport shares with other stores' transports (a socket given to several
   * stores) and its session (it changes on a reconnection). The server limits a connection's rate as a
   * whole, so stores on one link pace themselves together. Undefined when the connection is its own.
   */
  link?(): [connection: object, session: string | undefined] | undefined
  /**
   * This node cannot serve the client (it refused the join for good: another protocol version, during a
   * server upgrade): move on to the next node now. `tried` counts the nodes that refused in a row; false
   * (nothing done) when every node has, or there is no other.
   */
  skip?(tried: number): boolean
  /** Release everything; the transport is not used again. */
  destroy(): void
}
