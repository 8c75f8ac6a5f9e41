import type { WireError } from './errors'
import type { Path } from './path'
import type { VersionVector } from './vector-clock'

/**
 * Bumped on any incompatible change to the messages below. See docs/PROTOCOL.md. 3: the join answer
 * comes as bytes (UTF-8 JSON), not as an object.
 */
export const PROTOCOL_VERSION = 3
/** The oldest version the server still answers, in that version's form (a join answer as an object). */
export const OLDEST_PROTOCOL_VERSION = 2

/** How concurrent writes to one field are settled. Custom functions travel as 'custom'. */
export type WirePolicy = 'lww' | 'local' | 'remote' | 'manual' | 'counter' | 'set' | 'custom'

/** One field-level change made by a client. */
export interface Op {
  /** Globally unique op id (the dedupe key). */
  id: string
  /** The client that made the op. */
  client: string
  /** Per-client counter, strictly increasing; with `client` it is the op's dot in version vectors. */
  n: number
  /** Hybrid logical clock timestamp (see hlc.ts). */
  hlc: string
  /** JSON-patch style operation at `path` (at most 3 segments: collection, record, field). */
  op: 'add' | 'replace' | 'remove'
  path: Path
  value?: unknown
  /** The entity's version vector this op was based on. */
  base: VersionVector
  /** Policy of the path, chosen by the client's config. Default 'lww'. */
  policy?: WirePolicy
  /** 'counter': the increment this op adds. */
  delta?: number
  /** 'set': elements added and removed relative to the base. */
  added?: unknown[]
  removed?: unknown[]
  /** Id-keyed arrays: the key of the element identity (e.g. 'id'). */
  idKey?: string
  /** Id-keyed arrays: ids removed relative to the base. */
  removedIds?: Array<string | number>
  /** The value the client saw before its change (for conflict display). */
  prev?: unknown
  /** Marks an op that settles a conflict (it is causally after both sides). */
  resolves?: string
}

/** What the server did with an op. */
export type OpStatus = 'applied' | 'superseded' | 'conflict'

/** An entry of the document's log, as stored and broadcast. */
export interface Change {
  seq: number
  opId: string
  client: string
  user?: string
  n: number
  hlc: string
  entity: string
  path: Path
  /** Resulting state at `path` after the server applied the op: 'set' with value, or 'delete'. */
  kind: 'set' | 'delete'
  value?: unknown
  /** Value at `path` before the op (audit). */
  before?: unknown
  status: OpStatus
  policy: WirePolicy
  /** For conflicts: the op's proposed value and what it was based on. */
  proposed?: unknown
  prev?: unknown
  resolves?: string
  /** For 'superseded' and 'conflict': who wrote the value that stayed. */
  winner?: { client: string; user?: string; hlc: string; at: number }
  at: number
}

/** Per-op answer in an ops acknowledgement. */
export type OpResult =
  | { id: string; ok: true; seq: number; status: OpStatus; change?: Change; duplicate?: boolean }
  | (WireError & { id: string })

export interface Snapshot {
  seq: number
  state: Record<string, unknown>
  /** Version vector of every entity. */
  vv: Record<string, VersionVector>
  /** Last writer of every field: key is entity + '\u0000' + field. */
  fields: Record<string, FieldMeta>
}

export interface FieldMeta {
  client: string
  n: number
  hlc: string
  user?: string
  seq: number
  at: number
}

// ---- client → server -------------------------------------------------------------------------

export interface JoinRequest {
  v: number
  doc: string
  client: string
  /** Last sequence number the client applied; 0 for none. */
  since: number
  /**
   * The op id of the change at `since` (the last one the client applied), when it knows it. A server
   * whose log holds another op there (restored from a backup, then written to) answers with its state
   * as a snapshot and `rewound`, not with the changes after `since`, which would leave the client with
   * a mix of two histories.
   */
  at?: string
}

export type JoinResponse =
  | {
      ok: true
      v: number
      seq: number
      changes: Change[]
      snapshot?: Snapshot
      /** The client's `at` is not this server's op at `since`: `snapshot` is the server's state, to take instead of the client's. */
      rewound?: true
      /**
       * The highest counter (`n`) the server has seen from the joining client id in this document: a
       * client that reuses its id (the `clientId` option) continues after it. Vectors do not keep every
       * client's entry (the server keeps each record's last writers only), so they cannot tell it.
       */
      n?: number
      serverTime: number
      /**
       * The server's `authorize` refuses this user `write` on the document: its ops batches will be
       * refused (FORBIDDEN). Absent when the user may write (or the check could not be made now).
       */
      readOnly?: true
      /** The server answers ops requests that ask for it (`s: 1`) with the short form of the client's own changes (core/wire.ts). */
      shortAcks?: true
      /** The server's largest message in bytes (its `limits.maxPayload`): an op that cannot fit is not sent. */
      maxPayload?: number
      /**
       * The server's per-socket limits (`limits.opsPerSecond`, `limits.messagesPerSecond`; bursts of twice
       * that): the client paces its sends to stay under them.
       */
      opsPerSecond?: number
      messagesPerSecond?: number
      /**
       * Who the server's `authenticate` says this connection is, as peers see it in presence (id and
       * display fields): the client shows itself so too. Absent without `authenticate`.
       */
      user?: { id: string; name?: string; color?: string; avatarUrl?: string }
      /** The server's presence TTL in ms (its `presenceTtl`): clients heartbeat at least every half of it. */
      presenceTtl?: number
      /** The server's largest presence state in bytes of JSON (`limits.presenceBytes`): setPresence() refuses a larger one. */
      presenceBytes?: number
      /** Presence updates the server admits per socket and second (`limits.presencePerSecond`): the client's throttle keeps under it. */
      presencePerSecond?: number
    }
  | WireError

export interface OpsRequest {
  doc: string
  ops: Op[]
}

/**
 * `changes`: the batch's own changes, when the server sent them in the ack instead of a broadcast to
 * this client (it was the only writer of that broadcast). They come before the results, in seq order.
 */
export type OpsResponse = { ok: true; results: OpResult[]; seq: number; changes?: Change[] } | WireError

export interface HistoryRequest {
  doc: string
  path?: Path
  limit?: number
}

/** `truncated`: fewer entries than asked for, the newest ones, since their values passed a quarter of the server's `maxBufferedBytes`. */
export type HistoryResponse = { ok: true; entries: Change[]; truncated?: true } | WireError

export interface PresenceUpdate {
  doc: string
  /** App fields; `null` means leaving. The server stamps the user. */
  state: Record<string, unknown> | null
}

// ---- server → client -------------------------------------------------------------------------

export interface ChangesMessage {
  doc: string
  changes: Change[]
}

export interface PresencePeer {
  clientId: string
  user: { id: string; name?: string; color?: string; [k: string]: unknown }
  state: Record<string, unknown>
  updatedAt: number
}

export interface PresenceMessage {
  doc: string
  /** Full list on join, then deltas: a peer with `state: null` has left. */
  peers: Array<PresencePeer | { clientId: string; state: null }>
  full?: boolean
}

/** Server → client ('zync:refused'): a message the client sent without an ack was refused. */
export interface RefusedNotice {
  /** The refused message's event ('zync:presence'). */
  event: string
  doc?: string
  error: WireError
}

/** socket.io event names. */
export const EVENTS = {
  join: 'zync:join',
  ops: 'zync:ops',
  history: 'zync:history',
  presence: 'zync:presence',
  leave: 'zync:leave',
  changes: 'zync:changes',
  /** Server → client: a message sent without an ack (a presence update) was refused. See RefusedNotice. */
  refused: 'zync:refused',
  /**
   * Server → client, no payload: the server's storage works again after an outage. Batches refused as
   * STORAGE_UNAVAILABLE (or INTERNAL, TIMEOUT) may be sent again now rather than after their backoff.
   */
  resume: 'zync:resume',
} as const
