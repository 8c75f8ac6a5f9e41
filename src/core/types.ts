import type { ZyncError } from './errors'
import type { Path } from './path'
import type { Change, Op, WirePolicy } from './protocol'

/** Outbox lanes: higher lanes are sent first; ops on one entity are never reordered. */
export type Priority = 'critical' | 'high' | 'medium' | 'low'
export const PRIORITIES: readonly Priority[] = ['critical', 'high', 'medium', 'low']

export type ConnectionState = 'connecting' | 'online' | 'offline'

/** Pending ops per outbox lane (sent in this order of priority). */
export interface LaneCounts {
  critical: number
  high: number
  medium: number
  low: number
}

/** Every lane at zero (frozen: copy it to count). */
export const EMPTY_LANES: Readonly<LaneCounts> = Object.freeze({ critical: 0, high: 0, medium: 0, low: 0 })

/** A snapshot of the sync state. Keeps its identity until something in it changes. */
export interface SyncStatus {
  /** 'online' (joined), 'connecting' (trying; see `error` for why not yet) or 'offline' (disconnect(), no network, or refused for good). */
  connection: ConnectionState
  /**
   * Ops of this device persisted locally and not yet acknowledged by the server: every tab of the
   * browser that shares the outbox counts the same rows (each tab sends its own; a closed tab's are
   * adopted by another).
   */
  pending: number
  /** Ops captured but not yet persisted (in memory only; lost if the tab dies now). */
  unpersisted: number
  /** Pending ops per lane. */
  lanes: LaneCounts
  /** Open conflicts in the inbox. */
  conflicts: number
  /** Ops the server refused for good; see `deadLetters()`. */
  deadLetters: number
  /** True while a batch is in flight. */
  syncing: boolean
  /** Local outbox and snapshot loaded. */
  ready: boolean
  /**
   * The server refuses this user's edits to this document (its `authorize` says no to `write`): learnt
   * when the store joins, and from a refused batch. Edits made anyway are refused for good (dead letters
   * with FORBIDDEN), so show the document read-only while it is true. Back to false when a join or a
   * batch says the user may write. Default false (and false until the server has answered).
   */
  readOnly: boolean
  /** Age in ms of the oldest pending op, when there is one. */
  oldestPendingAge?: number
  /**
   * Highest attempt count among this tab's pending ops (the ones it sends): failed sends of an op, not
   * connection attempts (reconnecting does not count; `connection` is 'connecting' meanwhile).
   */
  attempts: number
  /** When the next retry of a failed op is scheduled (epoch ms). */
  nextRetryAt?: number
  /** Last time the outbox was empty and everything was acknowledged (epoch ms). */
  lastSyncedAt?: number
  /**
   * The error that still applies, if any: a failed local write first (`STORAGE_FULL`,
   * `STORAGE_UNAVAILABLE`: edits are kept in memory only until a write succeeds), else the last
   * connection or server error, else a refused local change (`BAD_REQUEST` with its path).
   */
  error?: ZyncError | undefined
  /** The last server sequence number applied. */
  seq: number
}

/** An op waiting in the outbox, oldest first. */
/** One change waiting in the outbox (`pendingOperations()`), oldest first. */
export interface PendingOperation {
  /** The op id: the server's dedupe key, the same across retries and reloads. */
  id: string
  /** What it writes: collection, record, field (one to three segments). */
  path: Path
  /** 'add' / 'replace' write `value`; 'remove' deletes the path. */
  op: Op['op']
  /** The value it writes (for a 'counter' field: the count shown after it; `delta` is what is sent). */
  value?: unknown
  /** For a 'counter' field: the increment sent, which adds to other devices' increments. */
  delta?: number
  /** The outbox lane it goes in: critical, high, medium (the default) or low. */
  priority: Priority
  /** When it was made (ms since the epoch). */
  createdAt: number
  /** Sends that failed so far (0 until one does). */
  attempts: number
  /** After a failure: when it is tried again (ms since the epoch). */
  nextAttemptAt?: number
  /** After a failure: the last error's code and message. */
  lastError?: { code: string; message: string }
  /** Written to IndexedDB (false for a few ms after set(): a crash then loses it). */
  persisted: boolean
  /** Sent and not yet answered. */
  inFlight: boolean
}

/** An op the server refused for good: kept until `retry(id)` or `discard(id)`. */
export interface DeadLetter extends PendingOperation {
  /** Why: the server's (or this client's) error code and message. */
  error: { code: string; message: string }
}

/** Who wrote one side of a conflict, and when. */
export interface ConflictSide {
  /** The writing store's client id. */
  clientId: string
  /** The writer's user id, when known. */
  userId?: string
  /** When it was written (ms since the epoch, from its timestamp). */
  time: number
}

/** A conflict waiting for a decision (policy 'manual'). */
export interface Conflict {
  /** Pass it to `resolve(id, ...)`. */
  id: string
  /** The field in conflict: collection, record, field. */
  path: Path
  /**
   * Its record, as `collection/record` (a top-level key: the key). `%`, NUL, and `/` in the collection,
   * are written `%25`, `%00` and `%2F`, so no two records share a name; read `path` for the keys as they are.
   */
  entity: string
  /** Its field name ('' for a whole record). */
  field: string
  /** What this device saw before its edit ("Before"). */
  base: unknown
  /** This device's value ("Mine"). */
  local: unknown
  /** The value the server kept ("Theirs"). */
  remote: unknown
  localMeta: ConflictSide
  remoteMeta: ConflictSide
  /** The field's policy on the wire: 'manual', or 'custom' for an app function that could not settle it. */
  policy: WirePolicy
  /** Set when both sides are arrays merged element by element: the id key of their elements (`conflicts.idKey`, default `'id'`). */
  idKey?: string
  /** When it reached this device's inbox (ms since the epoch). */
  createdAt: number
}

/** 'local' keeps mine, 'remote' keeps theirs (objects and id-keyed arrays merged, the clashing parts from that side), `{ value }` writes a merged value. */
export type Resolution = 'local' | 'remote' | { value: unknown }

export type HistoryEntry = Change

/** Who a store's user is, as others see them (from `authenticate`, or the `user` option in development). */
export interface PresenceUser {
  /** Stable user id. */
  id: string
  /** Display name (avatars show its initials). Default: the id. */
  name?: string | undefined
  /** Avatar colour, a hex colour such as '#7c3aed' (initials get black or white, whichever reads). Default: the --zync-avatar-bg CSS variable (slate). */
  color?: string | undefined
  /** Picture shown instead of initials. Default: none. */
  avatarUrl?: string | undefined
}

export interface Presence<P = Record<string, unknown>> {
  /** This store's clientId for its own entry; for a peer, its connection's id (one per tab connection, given by the server). */
  clientId: string
  /** Who: for peers, the user the server authenticated (see the `user` option). */
  user: PresenceUser
  /** What the peer last set with setPresence(); `{}` for a client that watches presence and set nothing. */
  state: P
  /** When that state reached the server (epoch ms). */
  updatedAt: number
  /** True for this store's own entry. */
  self: boolean
}

/** Typed events of `store.sync.on(event, fn)`. */
export interface SyncEvents {
  /**
   * This store's own edits, field by field, as captured (`prev`: the value before, undefined where there
   * was none; what an undo writes back to `path`, see docs/CONFLICTS.md, Modelling for merges).
   */
  'change:local': { patches: Array<{ path: Path; op: Op['op']; value?: unknown; prev?: unknown }> }
  'change:remote': { changes: Change[] }
  /** Edits another tab of this browser made (mirrored through the shared outbox), now shown here. */
  'change:tab': { patches: Array<{ entity: string; path: Path; op: Op['op']; value?: unknown }> }
  /**
   * What the store shows changed other than by this tab's own set(): each record (or top-level key) the
   * engine wrote into the store, with its new value (`kind` 'delete' where it is gone now). Emitted for
   * every such write, after it, with why: 'remote' (server changes), 'snapshot' (the server's whole state,
   * sent to a device far behind or after a rewound server), 'tab' (another tab's edits, reported as
   * `change:tab` too), 'resolved' (a conflict's settled value), 'outbox' (an edit of this device
   * discarded, refused, retried, answered with a conflict or acknowledged with another value, in this
   * tab or another), 'load' (what this device had saved, at start-up). The narrower events
   * (`change:remote`, `change:tab`, `sync:resolved`) say more about some of these, not all.
   */
  'change:shown': { source: ShownSource; patches: ShownPatch[] }
  'sync:queued': { ops: PendingOperation[] }
  /**
   * Ops of this tab the server has in its log: from its answer, or, when the answer was lost (a dropped
   * connection, a page closed with a batch in flight), from the log's change when it arrives.
   */
  'sync:acked': { ids: string[]; seq: number }
  /**
   * Ops of this tab dropped before they were sent: an edit put back, while it waited, to what the server
   * has (a typo typed and fixed, a tag added and removed). Never sent, never acknowledged.
   */
  'sync:cancelled': { ids: string[] }
  /** `path`: a local change refused before it became an op (not JSON, an unsafe key, too large), which stays local. */
  'sync:failed': { error: ZyncError; ids: string[]; willRetry: boolean; retryAt?: number; path?: Path }
  'sync:conflict': { conflict: Conflict }
  'sync:resolved': { conflict: Conflict; resolution: Resolution; value: unknown }
  'sync:dead-letter': { deadLetter: DeadLetter }
  'network:online': Record<string, never>
  'network:offline': { reason?: string }
  'storage:error': { error: ZyncError }
  'presence:change': { peers: Presence[] }
  /**
   * The server refused this store's presence (`FORBIDDEN` from its `authorize`, `RATE_LIMITED`,
   * `TOO_LARGE`): others do not see it. Told at most once a second.
   */
  'presence:error': { error: ZyncError }
  /**
   * The server's log ends before what this device had already applied from it (`seq` > `serverSeq`): the
   * server lost acknowledged writes (restored from a backup, its data replaced). The store now shows the
   * server's state; this device's pending edits are still sent and applied (rebased onto what the
   * server still has).
   */
  'server:rewound': { seq: number; serverSeq: number }
}

export type SyncEventName = keyof SyncEvents

/** Why the store's shown state changed (`change:shown`). */
export type ShownSource = 'remote' | 'snapshot' | 'tab' | 'resolved' | 'outbox' | 'load'

/** A record (or top-level key) the engine wrote into the store (`change:shown`). */
export interface ShownPatch {
  /** The entity (`collection/id`, or a top-level key). */
  entity: string
  path: Path
  kind: 'set' | 'delete'
  /** The value the store shows at `path` now (absent for 'delete'). */
  value?: unknown
}

/** The API hung on the store as `store.sync`. */
export interface SyncApi<S = unknown> {
  /** Resolves once the local outbox and snapshot are loaded; nothing flushes before it. */
  readonly ready: Promise<void>
  /** The document id (the `name` option). */
  readonly name: string
  /** This store's client id: random per page load unless the `clientId` option sets it. */
  readonly clientId: string
  /** Current status; the same object until something in it changes (safe for useSyncExternalStore). */
  status(): SyncStatus
  /** Called on every status change: connection, pending ops, conflicts, dead letters, errors. */
  subscribe(listener: (status: SyncStatus) => void): () => void
  on<K extends SyncEventName>(event: K, fn: (payload: SyncEvents[K]) => void): () => void
  on(event: '*', fn: (payload: { type: SyncEventName } & Record<string, unknown>) => void): () => void
  /**
   * Resolves once every op of this document pending at call time (in any tab of this device) is
   * acknowledged by the server. Other documents' edits are not waited for (see `destroy`).
   */
  flush(options?: { timeout?: number }): Promise<void>
  /** This document's outbox (every tab's pending ops of it), oldest first; the same array until the outbox changes. */
  pendingOperations(): PendingOperation[]
  /**
   * True while edits of this document made on this device (any tab) are not yet acknowledged, dead
   * letters included (shown until `retry()` or `discard()`, never synced meanwhile). Open conflicts are
   * not: the server answered them, and this device's side waits in the inbox (`conflicts()`).
   */
  isDirty(): boolean
  /** Open conflicts, oldest first; the same array until the inbox changes. */
  conflicts(): Conflict[]
  /**
   * Settles a conflict of the inbox with a write every device converges to. Rejects with a `ZyncError`:
   * CONFLICT_NOT_FOUND, CONFLICT_RESOLVED, or INVALID_RESOLUTION (a value not plain JSON, or not the
   * shape of either side).
   */
  resolve(id: string, resolution: Resolution): Promise<void>
  /**
   * The server's log, newest first: the entries at or below `path` and those at its ancestors (a write of
   * the whole record, such as its creation, wrote the field too). `limit` defaults to 100 (at most 1,000).
   * The reference server returns fewer, the newest, when their values pass a quarter of its
   * `maxBufferedBytes` (8 MB by default).
   */
  history(query?: { path?: Path | string; limit?: number }): Promise<HistoryEntry[]>
  /** Ops the server refused for good, oldest first; they stay on screen until retried or discarded. */
  deadLetters(): DeadLetter[]
  /** Sends a dead letter again, stamped anew, as this store's user (and client id, for CLIENT_MISMATCH). */
  retry(id: string): Promise<void>
  /** Drops a dead letter: the screen goes back to the server's value. */
  discard(id: string): Promise<void>
  /** Runs `fn` with every change it makes sent in `priority`'s lane. */
  withPriority<T>(priority: Priority, fn: () => T): T
  /** Everyone present on the document, self first; the same array until presence changes. */
  presence(): Presence[]
  /**
   * This client's presence state (a cursor, a focused field), sent to peers; `null` leaves. A store that
   * watches presence (subscribePresence, usePresence, PresenceAvatars) is present with `{}` until it sets one.
   * Throws a `ZyncError` for a state the server would not take, and keeps the last one: `BAD_REQUEST`
   * (not a plain JSON object: a BigInt, Date, NaN, a cycle), `TOO_DEEP` (nested over 64 levels),
   * `UNSAFE_PATH` (a key such as `__proto__` or `constructor`) or `TOO_LARGE` (over the server's
   * `limits.presenceBytes`, 4 KB by default). Sends are throttled (`presence.throttle`).
   */
  setPresence(state: Record<string, unknown> | null): void
  /**
   * Calls `listener` with the peer list on every presence change; returns the unsubscribe. While one
   * such subscription is open (usePresence and the presence components hold one), this client is
   * present. About a second after the last one closes (a route without presence), it leaves; the
   * first subscription after that makes it present again, even after `setPresence(null)`.
   */
  subscribePresence(listener: (peers: Presence[]) => void): () => void
  /** Goes online again after disconnect() (or a refusal for good). */
  connect(): void
  /** Goes offline on purpose: edits wait in the outbox. On a socket the app passed, only this store leaves its document. */
  disconnect(): void
  /**
   * Stops the store for good: no more sending, receiving or presence (it leaves the document). Edits not
   * acknowledged yet stay in the IndexedDB outbox, and another store of this device that is online
   * delivers them (any document, same database, and the same server URL or socket URL), so leaving a document's page loses
   * nothing. With a memory outbox they are lost (a warning says how many): `await flush()` first.
   * The state stays readable; `set()` on a destroyed store changes it locally only (not synced).
   */
  destroy(): Promise<void>
  /** Internal: the typed state shape marker. */
  readonly __state?: S
}
