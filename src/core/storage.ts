import type { WireError } from './errors'
import type { Change, Op } from './protocol'
import type { Conflict, Priority } from './types'
import type { VersionVector } from './vector-clock'

/** A row of the client outbox. */
export interface OutboxRow {
  /** = op.id */
  id: string
  doc: string
  /** Client instance (tab) that owns the row and sends it. Rows of a closed tab are adopted. */
  owner: string
  /** Local insertion order (monotonic per database). */
  order: number
  lane: Priority
  entity: string
  op: Op
  createdAt: number
  attempts: number
  nextAt: number
  lastError?: Pick<WireError, 'code' | 'message'>
  /** Refused for good by the server: kept for the app to retry or discard. */
  dead?: boolean
  /**
   * The `user.id` of the store that made the edit, when it named one. Another user's store on this
   * device (a shared computer) does not send it as theirs: it becomes a dead letter (CLIENT_MISMATCH).
   */
  by?: string
  /** The server (URL) of the store that made it: a store on another server never delivers it for it (see orphanedDocs). */
  to?: string
  /**
   * The counter of the first op folded into this row, when later ones were (coalescing gives the row
   * the newest op's `n`): a base that names the first one is covered by this row.
   */
  n0?: number
}

/** The last server state this client knows, saved so a reload starts from it. */
export interface DocMeta {
  doc: string
  confirmed: Record<string, unknown>
  vv: Record<string, VersionVector>
  seq: number
  savedAt: number
  /** Ids of conflicts settled on this device (the newest 1,000): resolving one again says CONFLICT_RESOLVED. */
  resolved?: string[]
  /** The server (URL) it came from: a store of another server does not start from it. */
  to?: string
  /** The op id of the change at `seq` (see JoinRequest.at). */
  at?: string
  /** The highest counter this store's client id had used (a reused `clientId` continues after it). */
  n?: number
}

export interface StoredConflict extends Conflict {
  doc: string
  opId: string
  /** Log position of the conflicting op: only writes after it make the conflict moot. */
  seq?: number
}

export interface LoadedDoc {
  rows: OutboxRow[]
  meta?: DocMeta
  conflicts: StoredConflict[]
  nextOrder: number
  /**
   * Ids of rows no other tab may have seen: taken in from `spill` (a page that closed before writing
   * them), or adopted from a tab that closed (its write landed, its announcement did not).
   */
  unannounced?: string[]
  /** Ids of rows that are only in spills, not written (a read-only load): the engine writes them. */
  unwritten?: string[]
  /**
   * The server changes closing pages had applied after the confirmed state they last wrote (saved by
   * `spillTail`): the engine applies those that continue from `meta.seq`.
   */
  tails?: SpilledTail[]
}

/**
 * Changes applied after the confirmed state last written, in seq order (see OutboxStorage.spillTail): the
 * confirmed state is written lazily, about once a second, and a page closing within that second left
 * the next page, offline, showing what the server had already changed (a deleted record back).
 */
export interface SpilledTail {
  changes: Change[]
  /** The server they came from (the `endpoint` option), as DocMeta's `to`. */
  to?: string
}

/** One atomic write: all of it lands or none of it does. */
export interface StorageBatch {
  put?: OutboxRow[]
  delete?: string[]
  meta?: DocMeta
  putConflicts?: StoredConflict[]
  deleteConflicts?: string[]
}

/**
 * Where the client outbox lives. Contract (checked by test/storage-conformance):
 * - `write` is atomic and durable when it resolves; a failed write changes nothing.
 * - `load` returns rows in `order`, including rows owned by other tabs.
 * - `adopt` atomically moves rows of owners whose heartbeat is older than `staleBefore` to `owner`,
 *   so two tabs never both take the same row.
 * - Errors: a full disk rejects with a ZyncError 'STORAGE_FULL'.
 * - The engine hands `write` rows it never mutates afterwards (fresh row and op objects; paths,
 *   values and vectors are replaced, never changed in place), so a storage may keep them as given.
 */
export interface OutboxStorage {
  readonly kind: string
  open(): Promise<void>
  /**
   * `adopt`: the engine is about to adopt for this owner. A storage may do it while loading (rows of
   * closed tabs come back with `owner` set, exactly as `adopt` would have moved them), saving a second
   * read of every row; the engine calls `adopt` afterwards either way.
   */
  /**
   * `readOnly` (the disk is full): write nothing. A storage that can still adopts, in memory only, and
   * returns rows held only in spills, listed in `unwritten` (the engine writes them once space frees).
   */
  load(doc: string, adopt?: { owner: string; staleBefore: number }, readOnly?: boolean): Promise<LoadedDoc>
  write(batch: StorageBatch): Promise<void>
  heartbeat(doc: string, owner: string, now: number): Promise<void>
  adopt(doc: string, owner: string, staleBefore: number): Promise<OutboxRow[]>
  /**
   * Optional: synchronously saves rows a dying page could not write in time (called on pagehide), and
   * the conflicts not written yet. `load` must import them. Dexie uses localStorage; memory storage has
   * nothing to save them to.
   */
  spill?(doc: string, owner: string, rows: OutboxRow[], conflicts?: StoredConflict[]): void
  /**
   * Optional: synchronously saves the changes this owner applied since the confirmed state was last
   * written (on pagehide, after `spill`, and apart from it: rows never wait for it or share its room),
   * or drops them (`tail` undefined). `load` returns them as `LoadedDoc.tails`. Best effort.
   */
  spillTail?(doc: string, owner: string, tail?: SpilledTail): void
  /** Optional: drops the owner's spilled rows once they are safely written. */
  unspill?(doc: string, owner: string): void
  /**
   * Optional: calls `listener` when what was written may be gone (the database deleted under the page:
   * "Clear site data", or deleteDatabase in another tab), so the engine writes everything it holds
   * again. Returns the unsubscribe function.
   */
  onReset?(listener: () => void): () => void
  /** Releases the owner's heartbeat (tab closing). */
  release(doc: string, owner: string): Promise<void>
  /**
   * Optional: the documents other than `except` with rows waiting that no live tab or store holds (a
   * store destroyed, a page closed, before they were sent), dead letters left out. A store that is
   * online delivers them (see the middleware's recovery), so an edit never waits for its document to
   * be opened again. Only documents whose orphaned rows were all made for `endpoint` (or say no server).
   */
  orphanedDocs?(except: string, staleBefore: number, endpoint?: string): Promise<string[]>
  close(): void
}
