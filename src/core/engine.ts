/*
 * The sync engine: framework-agnostic, no I/O of its own (storage and transport are injected).
 *
 *   local set ──► capture (diff, microtask) ──► OutboxIndex (memory) ──► persist (one txn per batch)
 *                                                                          │
 *                   connection loop:  offline ──open──► connecting ──join/catch-up──► online ──► pump
 *                                        ▲                                              │
 *                                        └─────────────── disconnect / error ◄──────────┘
 *
 *   remote changes (seq order, gaps trigger catch-up) ──► confirmed state ──► visible = confirmed
 *   overlaid with conflicts and pending rows, per entity ──► host.applyRemote (never re-captured)
 *
 * Invariants: nothing is sent before `ready`; a row is sent only once persisted (unless storage failed
 * and we run in memory); ops of one entity are sent in order; an op id is settled exactly once.
 */
import { Emitter } from './emitter'
import { REFUSAL_CODES, ZyncError, fromWireError, isQuotaError, type ZyncErrorCode } from './errors'
import { deepEqual, diff, isPlainObject, shapeMismatch, shapeOf, type Patch } from './diff'
import { HybridClock, decodeHlc } from './hlc'
import { idArrayApply, idArrayOrEmpty, idArrayValue, isIdArray, mergeIdArrays, mergeObject, mergesByKey, seedIdArray } from './merge'
import { OutboxIndex, backoffDelay, fieldKeyOf, higherPriority, isRecordLevel, joinCapture, type BackoffOptions, type RowState } from './outbox'
import { assertSafePath, assertSafeValue, entityOf, fieldOf, isUnder, OP_DEPTH, pathKey, pathToString, recordPathOf, type Path } from './path'
import { arrayAlong, getAt, setAt, setAtCow } from './patch'
import { PolicyTable, wirePolicy, type ConflictResolver } from './policies'
import { PROTOCOL_VERSION, type Change, type ChangesMessage, type Op, type OpsResponse, type PresenceMessage } from './protocol'
import type { LoadedDoc, OutboxRow, OutboxStorage, SpilledTail, StoredConflict } from './storage'
import type { Transport } from './transport'
import type {
  Conflict,
  ConnectionState,
  DeadLetter,
  LaneCounts,
  PendingOperation,
  Presence,
  PresenceUser,
  Priority,
  Resolution,
  ShownPatch,
  ShownSource,
  SyncEvents,
  SyncStatus,
} from './types'
import { EMPTY_LANES, PRIORITIES } from './types'
import { vvBump, vvGet, vvMeet, vvMerge, type VersionVector } from './vector-clock'
import { PresenceTracker } from './presence'
import { weakInterval } from './timers'
import { TabChannel, type TabMessage } from './tabs'
import { TokenBucket } from './token-bucket'
import { newId } from './ids'

/** What the engine needs from the store it syncs. */
export interface EngineHost {
  /** The synced part of the current state. */
  read(): Record<string, unknown>
  /** Apply values at paths (remote or hydrated) without them being captured as local changes. */
  apply(patches: Array<{ path: Path; value?: unknown; remove?: boolean }>): void
}

/**
 * The engine's options. The `sync` middleware builds them from its own options (see SyncOptions, where
 * the same names carry the same defaults); the engine is exported for other bindings and for tests.
 */
export interface EngineOptions {
  /** Document id (see SyncOptions.name). Required. */
  doc: string
  /** This client's id, unique per tab and store; it keys the op counters. Required. */
  clientId: string
  /** Who this client is, for presence and conflicts. Default: `{ id: clientId }`. */
  user?: PresenceUser
  /** How ops reach the server (SocketIoTransport, or a test transport). Required. */
  transport: Transport
  /** Where the outbox lives (Dexie, memory, fallback). Required. */
  storage: OutboxStorage
  /** Conflict policies per path. Required. */
  policies: PolicyTable
  /** The state the engine reads and writes (the middleware's store). Required. */
  host: EngineHost
  /** Wall clock in ms, for hybrid logical clocks and retries. Default: Date.now. */
  now?: () => number
  /**
   * Monotonic time in ms, against which `now` is watched for steps back (see the engine's wall()).
   * Default: performance.now. A simulation with a virtual `now` passes the same virtual time here.
   */
  monotonic?: () => number
  /** Random source in [0, 1), for backoff jitter. Default: Math.random. */
  random?: () => number
  /** Retry delays. Default: `{ base: 500, factor: 2, cap: 30000 }`. */
  backoff?: BackoffOptions
  /** Most ops per message. Default: 500. */
  batchSize?: number
  /** Ms to wait for a batch's acknowledgement before retrying it. Default: 10000. */
  ackTimeout?: number
  /** Outbox lane per change, when set() names none. Default: every change 'medium'. */
  priority?: (change: { path: Path; op: Op['op']; value?: unknown }) => Priority
  /** Presence: `ttl` ms without a heartbeat before a peer is dropped (heartbeat at half), `throttle` ms between sends. Default: `{ ttl: 30000, throttle: 50 }`. */
  presence?: { ttl?: number | undefined; throttle?: number | undefined }
  /** Multi-tab coordination through BroadcastChannel. Default true where BroadcastChannel exists. */
  crossTab?: boolean
  /**
   * BroadcastChannel name shared by the tabs of one device. Only stores that share storage may share
   * it: a tab adopts and settles rows through that storage. Default `zync:<doc>`.
   */
  tabChannel?: string
  /** The server this store syncs with (its URL): rows record it, so edits left behind go to it and no other. */
  endpoint?: string
  /** Time after which a silent tab's rows are adopted by another (ms). Default 10000. */
  tabTimeout?: number
  /** Follow navigator.onLine and the online/offline events. Default true where they exist. */
  watchNetwork?: boolean
  /** Connect on start. Default true. */
  autoConnect?: boolean
  /** Non-fatal problems (storage fell back to memory, ...). Default: none (the middleware passes console.warn). */
  onWarning?: (message: string) => void
}

/** How long writes that only speed up a reload may wait (see schedulePersist). */
const LAZY_PERSIST_MS = 1000
/** The page is hidden (a background tab, a minimized window); false outside a browser. */
const documentHidden = (): boolean => (globalThis as { document?: { visibilityState?: string } }).document?.visibilityState === 'hidden'

/** Most changes `tail` keeps: beyond, a closing page leaves them to the server (the next join). */
const TAIL_MAX = 2000

/** A spilled change as the engine wrote it (localStorage may hold anything): applying one that is not fails half way. */
function wellFormed(c: Change): boolean {
  try {
    assertSafePath(c.path)
    return Number.isInteger(c.seq) && Number.isInteger(c.n) && typeof c.client === 'string' && typeof c.hlc === 'string' && c.entity === entityOf(c.path) && (c.kind === 'set' || c.kind === 'delete') && ['applied', 'superseded', 'conflict'].includes(c.status)
  } catch {
    return false
  }
}
/**
 * The confirmed state (the meta) is written at most this share of the time: a write of it that took
 * 200 ms (a document of many MB, cloned by IndexedDB on the main thread) waits 4 s for the next one
 * instead of 1 s. Between LAZY_PERSIST_MS and META_MAX_GAP_MS.
 */
const META_TIME_SHARE = 0.05
const META_MAX_GAP_MS = 30_000
/** Batches sent before the first is answered. More keeps the link busy; overlapping writes keep their order regardless. */
const MAX_IN_FLIGHT = 4
/** How often a row waiting for this device's writes under other client ids looks again (heldForDevice). */
const DEVICE_WAIT_MS = 250
/** How long settled ids are kept for a 'hello' once their delete is written (see recentSettled). */
const SETTLED_KEPT_MS = 60_000
/** Retryable failures of the server as a whole, not of the rows sent: over once another batch is answered. */
const SERVER_WIDE: ReadonlySet<ZyncErrorCode> = new Set<ZyncErrorCode>(['STORAGE_UNAVAILABLE', 'INTERNAL', 'TIMEOUT'])
/** A difference from the server's clock under this (ms) is measurement noise, not skew (see onJoined). */
const SKEW_NOISE_MS = 1000
/** A step of the wall clock against monotonic time beyond this (ms) is a clock set back, not jitter. */
const CLOCK_STEP_MS = 1000
/** Settled conflict ids remembered across reloads. */
const MAX_RESOLVED = 1000

export class SyncEngine {
  readonly doc: string
  readonly clientId: string
  readonly ready: Promise<void>
  readonly events = new Emitter<SyncEvents & Record<string, unknown>>()

  private readonly o: EngineOptions
  private readonly clock: HybridClock
  private readonly now: () => number
  private readonly random: () => number
  private readonly backoff: Required<BackoffOptions>
  private readonly outbox = new OutboxIndex()
  private readonly presenceTracker: PresenceTracker
  private readonly tabs: TabChannel | undefined

  private isReady = false
  private destroyed = false
  private wantOnline: boolean
  private networkUp = true
  private connection: ConnectionState = 'offline'
  private joined = false
  /**
   * The local storage's failure while it lasts (set by storageFailed, cleared by the next write that
   * succeeds): the store is degraded, and status().error shows it again once server errors clear.
   */
  private localError: ZyncError | undefined
  private joining = false
  private lastError: ZyncError | undefined
  /** Nodes that refused the join for another protocol version in a row (the transport's `skip`). */
  private versionRefusals = 0
  /** A batch failed with a SERVER_WIDE error since the last answered one: see resumeAfterFailure. */
  private serverFailed = false
  /** The server refuses this user's writes here: from the join answer, a refused batch, an accepted one. */
  private readOnly = false
  private lastSyncedAt: number | undefined

  private confirmed: Record<string, unknown> = {}
  /**
   * Copy-on-write epoch of `confirmed`'s root and its direct children (collections), kept across
   * remote batches: those containers never reach the store (it receives records, entity paths two
   * deep), so a change to one record of a large collection does not copy the collection again per
   * batch. Renewed when one of them is handed out (the persisted meta, a read of a one-segment path).
   */
  private confirmedEpoch = new WeakSet<object>()
  private vv: Record<string, VersionVector> = {}
  private seq = 0
  private n = 0
  private order = 0
  private baseline: Record<string, unknown>
  private captureScheduled = false
  /** The last state refused for not being an object (warned about once). */
  private refusedState: unknown
  private lanePriority: Priority | undefined

  private readonly conflictsById = new Map<string, StoredConflict>()
  /** Conflicts settled on this device (newest MAX_RESOLVED), saved with the doc meta across reloads. */
  private readonly resolvedIds = new Set<string>()
  /** A conflict was settled since the meta was last written: the next write carries the meta. */
  private resolvedChanged = false
  private readonly deleted = new Set<string>()
  /**
   * Rows dropped before they were sent (undone): deleted by the next write, not with the lazy deletes of
   * acknowledged rows. Left in IndexedDB for that second, a reload or another tab sent the edit the user
   * had put back (a model trial's re-run).
   */
  private readonly undoneIds = new Set<string>()
  private readonly putConflicts = new Map<string, StoredConflict>()
  /** The conflicts of the write under way (spilled with the rows while it has not landed). */
  private conflictsWriting: StoredConflict[] = []
  /**
   * Local changes refused as not syncable (a Date in a new record, say), by path, until a later write
   * there is taken: `status().error` shows the first, so the badge does not say "Synced" for them.
   */
  private readonly refused = new Map<string, { path: Path; error: ZyncError }>()
  private readonly deleteConflicts = new Set<string>()
  private metaDirty = false
  /** How long the last write carrying the meta took, and when it ended (monotonic ms). */
  private metaCostMs = 0
  private metaWrittenAt = -Infinity
  private persistQueued = false
  private lazyPersistTimer: ReturnType<typeof setTimeout> | undefined
  private pumpQueued = false
  private persisting: Promise<void> | undefined
  private pumpTimer: ReturnType<typeof setTimeout> | undefined
  /** While an ops answer is handled (its own 'sync:acked' reports its rows). */
  private answering = false
  /** When pumpTimer fires (performance.now() time). */
  private pumpAt = 0
  /**
   * The server's per-socket limits as learned on join, with buckets mirroring its own (refilled from the
   * join): a long queue goes out at the pace the server admits, not refused and backed off.
   */
  private pace: Pace | undefined
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined
  /** Batches sent and not yet answered (pipelined up to MAX_IN_FLIGHT; overlapping rows are never in flight together). */
  private inFlight = 0
  /** Estimated bytes of the batches in flight (opBytes). */
  private inFlightBytes = 0
  /**
   * Bytes that may be in flight: about LINK_SECONDS of what the link delivered lately (measured from
   * the answers), so a slow uplink is not handed megabytes at once: its acknowledgements would time out
   * and the heartbeat answers queue behind the upload, so the connection dropped and it all went again.
   */
  private linkWindow = INITIAL_LINK_WINDOW
  private linkMeasured = false
  /** The pace: bytes answered over the time batches were in flight (`busyMs` of stretches ended, and the one since `busyStart`). */
  private busyStart = 0
  private busyMs = 0
  private busyBytes = 0
  /** Bumped on disconnect: answers to batches sent before it no longer count against the pipeline. */
  private sendEpoch = 0
  /** Joins started; an answer to any but the newest is stale (see catchUp). */
  private joinGen = 0
  private early: Change[] = []
  /** Highest seq the server is known to have reached (from broadcasts and acks). */
  private serverSeq = 0
  /** The op id of the change at `seq`, when known (sent with joins: see JoinRequest.at). */
  private atOp: string | undefined
  /** Server time minus local time, learned on join: keeps our HLC near the server's clock. */
  private skew = 0
  private readonly mono: () => number
  /** The wall clock and monotonic time at the last reading (see wall()). */
  private lastWall: number
  private lastMono: number
  /** The server's largest message (bytes), from its join answer; 4 MB (the server's default) until then. */
  private maxPayload = 4_000_000
  private flushWaiters: Array<{ ids: Set<string>; resolve: () => void; reject: (e: Error) => void }> = []

  private statusCache: SyncStatus | undefined
  private pendingCache: PendingOperation[] | undefined
  private conflictsCache: Conflict[] | undefined
  private deadCache: DeadLetter[] | undefined
  private readonly statusListeners = new Set<(s: SyncStatus) => void>()
  private cleanupNetwork: (() => void) | undefined

  constructor(options: EngineOptions) {
    this.o = options
    this.doc = options.doc
    this.clientId = options.clientId
    this.now = options.now ?? Date.now
    this.random = options.random ?? Math.random
    this.clock = new HybridClock(options.clientId, () => this.wall() + this.skew)
    this.mono = options.monotonic ?? (() => performance.now())
    this.lastWall = this.now()
    this.lastMono = this.mono()
    this.backoff = { base: options.backoff?.base ?? 500, factor: options.backoff?.factor ?? 2, cap: options.backoff?.cap ?? 30_000 }
    const first = options.host.read() as unknown
    this.baseline = isPlainObject(first) ? first : {}
    this.wantOnline = options.autoConnect ?? true
    // Until hydration opens the transport, a store that will connect says 'connecting', not 'offline'
    // (which UIs show as "You're offline" for the first moments of every page load).
    const nav = (globalThis as { navigator?: { onLine?: unknown } }).navigator
    if (this.wantOnline && (options.watchNetwork === false || nav?.onLine !== false)) this.connection = 'connecting'
    this.presenceTracker = new PresenceTracker({
      clientId: options.clientId,
      user: options.user ?? { id: options.clientId },
      ttl: options.presence?.ttl ?? 30_000,
      throttle: options.presence?.throttle ?? 50,
      now: this.now,
      send: (state) => {
        if (this.joined) options.transport.presence({ doc: this.doc, state })
      },
    })
    this.presenceTracker.subscribe((peers) => this.events.emit('presence:change', { peers }))
    const canBroadcast = typeof BroadcastChannel !== 'undefined'
    this.tabs = (options.crossTab ?? canBroadcast) && canBroadcast ? new TabChannel(options.tabChannel ?? `zync:${this.doc}`, this.clientId, (m) => this.onTabMessage(m)) : undefined
    // From the start: edits made before hydration finishes must survive a reload too.
    this.watchPageLifecycle()
    this.ready = this.hydrate()
    this.ready.catch(() => {})
  }

  // ---- hydration -------------------------------------------------------------------------------

  private async hydrate(): Promise<void> {
    const storage = this.o.storage
    let unannounced: string[] | undefined
    let adoptedAtLoad: string[] = []
    let full: unknown
    try {
      await storage.open()
      let loaded: LoadedDoc
      try {
        // Alive (a heartbeat) before taking closed tabs' rows, which a storage may do while loading.
        this.lastBeat = this.now()
        await storage.heartbeat(this.doc, this.clientId, this.lastBeat)
        loaded = await storage.load(this.doc, { owner: this.clientId, staleBefore: this.staleBefore() })
      } catch (err) {
        // A full disk: even the heartbeat cannot be written. What is stored is still shown and sent (a
        // lifecycle trial: a reload with the quota exhausted showed none of its pending edits, nor the
        // ones its spill held, and sent none, until space freed and the page loaded again).
        if (!isQuotaError(err)) throw err
        full = err
        this.lastBeat = 0
        loaded = await storage.load(this.doc, { owner: this.clientId, staleBefore: this.staleBefore() }, true)
      }
      if (this.destroyed) return
      // A snapshot of this document from another server (an app switched servers on one database) says
      // nothing of this one: its seq made the join skip this server's changes up to it.
      const meta = loaded.meta && (loaded.meta.to === undefined || this.o.endpoint === undefined || loaded.meta.to === this.o.endpoint) ? loaded.meta : undefined
      if (meta) {
        this.confirmed = meta.confirmed
        this.vv = meta.vv
        this.seq = meta.seq
        this.atOp = meta.at
        if (meta.n) this.n = Math.max(this.n, meta.n)
        for (const id of meta.resolved ?? []) this.resolvedIds.add(id)
      }
      // Rows captured before hydration finished keep their order after the stored ones.
      const early = this.outbox.ordered().slice()
      this.order = Math.max(loaded.nextOrder, this.order)
      for (const s of early) {
        s.row.order = ++this.order
        s.dirty = true
      }
      this.outbox.changed()
      const toWrite = new Set(loaded.unwritten)
      for (const row of loaded.rows) {
        if (this.outbox.rows.has(row.id)) continue
        const s = this.outbox.addStored(row)
        // Only in a spill (the disk is full): written when space frees.
        if (toWrite.has(row.id)) {
          s.persisted = false
          s.dirty = true
        }
        this.n = Math.max(this.n, row.op.client === this.clientId ? row.op.n : 0)
        this.clock.receive(row.op.hlc)
      }
      // A client id used before (the clientId option) must not spend a counter value twice: two ops
      // with one dot would let other clients' vectors claim to have seen an op they never saw.
      for (const v of Object.values(this.vv)) this.n = Math.max(this.n, vvGet(v, this.clientId))
      for (const s of early) if (s.row.op.client === this.clientId) s.row.op = { ...s.row.op, n: ++this.n }
      unannounced = loaded.unannounced
      // Not one resolved since (a closing page's spill may hold it).
      for (const c of loaded.conflicts) if (!this.resolvedIds.has(c.id)) this.conflictsById.set(c.id, c)
      // conflicts() may have been read (and cached, empty) before the inbox was loaded.
      this.conflictsCache = undefined
      this.replayTails(loaded.tails)
      if (full === undefined) adoptedAtLoad = await this.adoptOrphans()
    } catch (err) {
      this.storageFailed(err, true)
    }
    if (full !== undefined && !this.destroyed) this.storageFailed(full, true)
    if (this.destroyed) return
    this.captureNow()
    this.refreshAll(undefined, 'load')
    this.isReady = true
    this.invalidate()
    this.schedulePersist()
    this.heartbeatTimer = weakInterval(this, (e) => void e.heartbeat(), Math.max(1000, (this.o.tabTimeout ?? 10_000) / 3))
    const self = new WeakRef(this)
    this.offReset = this.o.storage.onReset?.(() => self.deref()?.storageReset())
    this.watchNetwork()
    // Rows another tab settled but has not deleted yet (it deletes lazily) were loaded as pending: ask.
    this.tabs?.post({ type: 'hello' })
    // Edits of a page that closed (a reload right after a burst) may have reached no other tab: spilled,
    // or written with the page gone before it announced them. Announced now, as written rows are, so
    // every tab shows them before the server has them (a tab that had them already changes nothing).
    this.announce([...(unannounced ?? []), ...adoptedAtLoad])
    if (this.wantOnline) this.openTransport()
    if (this.adoptWhenReady) void this.heartbeat()
  }

  /** A store was destroyed while this one loaded (see the 'gone' message): its rows are adopted once ready. */
  private adoptWhenReady = false

  private async heartbeat(): Promise<void> {
    if (this.destroyed || this.localError) return
    try {
      const at = this.now()
      // Overdue (a frozen tab resuming runs this first): stop coalescing before the beat looks fresh again.
      this.sealIfStale(at)
      await this.o.storage.heartbeat(this.doc, this.clientId, at)
      this.lastBeat = at
      if ((await this.adoptOrphans()).length > 0) this.schedulePump(0)
    } catch {
      // Heartbeats are best effort; persistence errors surface through writes.
    }
  }

  private offReset: (() => void) | undefined

  /**
   * The database was deleted under the page ("Clear site data", deleteDatabase in another tab): the rows,
   * the confirmed state and the conflicts it held are gone. All of it is written again at once (a
   * lifecycle trial: the status still called the rows saved, and a reload before the next sync lost them).
   */
  private storageReset(): void {
    if (this.destroyed || !this.isReady) return
    for (const s of this.outbox.rows.values()) {
      if (s.done || s.row.owner !== this.clientId) continue
      s.dirty = true
      s.persisted = false
    }
    for (const c of this.conflictsById.values()) this.putConflicts.set(c.id, c)
    this.metaDirty = true
    this.resolvedChanged = true // the confirmed state goes with the next write, not the lazy one
    this.invalidate()
    this.schedulePersist()
    void this.heartbeat()
  }

  /** When this tab last wrote its heartbeat (0: not yet). */
  private lastBeat = 0

  /**
   * Our heartbeat is older than tabTimeout (the tab was frozen, or its thread stalled): another tab may
   * have adopted our rows and sent them. A row it sent must not absorb a newer write, which would go out
   * under an op id the server already has and be dropped as a duplicate: stop coalescing into them.
   * True when it sealed (the caller beats again unless it is the heartbeat itself).
   */
  private sealIfStale(now: number): boolean {
    if (this.lastBeat === 0 || now - this.lastBeat <= (this.o.tabTimeout ?? 10_000)) return false
    for (const st of this.outbox.rows.values()) if (st.row.owner === this.clientId) this.outbox.seal(st)
    this.lastBeat = 0
    return true
  }

  private staleBefore(): number {
    return this.now() - (this.o.tabTimeout ?? 10_000)
  }

  /** Take over rows of tabs that closed or froze, so their ops are still delivered (once: op ids). */
  /** Takes closed tabs' rows; returns their ids (announced here once ready, by hydrate before that). */
  private async adoptOrphans(): Promise<string[]> {
    await this.o.storage.heartbeat(this.doc, this.clientId, this.now())
    const adopted = await this.o.storage.adopt(this.doc, this.clientId, this.staleBefore())
    // Rows this tab had never seen (their tab closed before announcing them): shown once adopted.
    const touched = new Map<string, Path>()
    const patches: SyncEvents['change:tab']['patches'] = []
    let settled = false
    for (const row of adopted) {
      // This tab's next rows come after the rows it adopts, as after rows it is told of (onTabMessage): a
      // closed page's rows never announced (taken from its spill) may be ahead of this tab's count, and an
      // edit of the same record made after adopting them, ranked before them, waited for them while they
      // waited behind it (a six-tab trial: 423 counter increments pending for good).
      if (row.order > this.order) this.order = row.order
      const s = this.outbox.rows.get(row.id)
      if (s?.done) {
        // Settled already (its tab said so): only the closed page's lazy delete was missing. Deleted now;
        // adopted as it was, it was never sent nor deleted, and every page loaded later showed it pending
        // for good (a trial with six tabs: "Syncing 51 pending").
        this.deleted.add(row.id)
        settled = true
      } else if (s) {
        this.outbox.seal(s)
        // A row changed here and not yet written (retried, say) keeps its content: the stored copy is older.
        if (s.dirty) s.row.owner = row.owner
        else s.row = row
      } else {
        this.outbox.addStored(row)
        touched.set(row.entity, entityPath(row.op.path))
        if (!row.dead) patches.push(tabPatch(row))
      }
    }
    if (settled) this.schedulePersist(true)
    const ids = adopted.filter((r) => !this.deleted.has(r.id)).map((r) => r.id)
    if (adopted.length > 0) {
      this.outbox.changed()
      // At hydration the whole screen is drawn once ready, and hydrate announces these with the load's own.
      if (this.isReady) {
        if (touched.size > 0) this.showTabEdits(touched, patches)
        this.announce(ids)
      }
    }
    return ids
  }

  /** Shows other tabs' edits (rows this tab was told of, or adopted) and reports them as `change:tab`. */
  private showTabEdits(touched: Map<string, Path>, patches: SyncEvents['change:tab']['patches']): void {
    this.captureNow()
    // Records an edit is reported for (change:tab) are shown as 'tab'; the others touched (a row of
    // another tab refused there, say) as 'outbox', so that change:shown's listeners hear of them.
    const edited = new Set(patches.map((p) => p.entity))
    const tab = new Map<string, Path>()
    const rest = new Map<string, Path>()
    for (const [entity, path] of touched) (edited.has(entity) ? tab : rest).set(entity, path)
    this.refreshEntities(tab, 'tab')
    this.refreshEntities(rest, 'outbox')
    if (patches.length > 0) this.events.emit('change:tab', { patches })
    this.invalidate()
  }

  /** Posts these rows (those still pending) to the other tabs, as a write does. */
  private announce(ids: string[]): void {
    if (!this.tabs) return
    const rows: OutboxRow[] = []
    for (const id of ids) {
      const s = this.outbox.rows.get(id)
      if (s && !s.done) rows.push(s.row)
    }
    if (rows.length > 0) this.tabs.post({ type: 'rows', rows })
  }

  // ---- local capture ---------------------------------------------------------------------------

  private warnedDestroyed = false
  /** Called synchronously after every store change; the diff runs in a microtask, off the set() path. */
  notifyLocalChange(): void {
    if (this.destroyed) {
      if (!this.warnedDestroyed) this.o.onWarning?.(`[zync] set() on the destroyed store of "${this.doc}": the change stays local and is not synced`)
      this.warnedDestroyed = true
      return
    }
    if (this.captureScheduled) return
    this.captureScheduled = true
    queueMicrotask(() => this.captureNow())
  }

  /** Diff the synced state against the last captured one and enqueue what changed. */
  captureNow(): void {
    this.captureScheduled = false
    if (this.destroyed) return
    const cur = this.o.host.read() as unknown
    if (!isPlainObject(cur)) {
      // Only an object's keys can be synced: keep the last object state as the base to diff from.
      if (cur !== this.refusedState) this.refuse(new ZyncError('BAD_REQUEST', `[zync] the synced state must be a plain object (got ${cur === null ? 'null' : Array.isArray(cur) ? 'an array' : typeof cur}); nothing is synced until it is one again`))
      this.refusedState = cur
      return
    }
    this.refusedState = undefined
    const before = this.baseline
    const patches = diff(before, cur)
    this.baseline = cur
    if (patches.length === 0) return
    this.enqueuePatches(this.wholeNewRecords(patches, before, cur), this.lanePriority)
  }

  /**
   * A field write to a record that neither the server nor a pending write of this device has (one that
   * exists only in the store's initial state) goes as a write of the whole record: the field alone
   * would make a partial record on the server, and other tabs and devices would drop the record. Its
   * `prev` is the record as it was, so edits of other fields made elsewhere meanwhile merge by key.
   */
  private wholeNewRecords(patches: Patch[], before: Record<string, unknown>, cur: Record<string, unknown>): Patch[] {
    let out: Patch[] | undefined
    let whole: Map<string, Patch> | undefined
    for (let i = 0; i < patches.length; i++) {
      const p = patches[i]!
      if (p.path.length < OP_DEPTH) {
        const split = p.op === 'add' && p.path.length === OP_DEPTH - 1 ? this.mergeableFields(p) : undefined
        if (split) (out ??= patches.slice(0, i)).push(...split)
        else out?.push(p)
        continue
      }
      const path = p.path.slice(0, 2)
      const key = pathKey(path)
      let rec = whole?.get(key)
      if (!rec) {
        const value = getAt(cur, path)
        if (!isPlainObject(value) || this.hasRecord(path)) {
          out?.push(p)
          continue
        }
        out ??= patches.slice(0, i)
        rec = { op: 'replace', path, value, prev: getAt(before, path) }
        ;(whole ??= new Map()).set(key, rec)
        out.push(rec)
      }
      // Counters and sets keep their own field op after the record (an increment, an add: it merges with
      // the ones other devices make meanwhile); the record carries the field as it was. So does a field
      // under another policy than the record's (a 'manual' title): the record's op merges clashes by the
      // record's policy, the field's own op by the field's.
      if (this.mergesAlone(p.path) || (p.prev !== undefined && this.ownPolicy(p.path))) {
        const v = { ...(rec.value as Record<string, unknown>) }
        const field = String(p.path[2])
        if (p.prev === undefined) delete v[field]
        else v[field] = p.prev
        rec.value = v
        out!.push(p)
      }
    }
    return out ?? patches
  }

  /**
   * A new record's counter and set fields: the record's op writes them at zero (0, []), saying it saw
   * them at zero, and an op of their own follows for what they hold (an increment from 0, the elements
   * added). Two devices that create the same record offline then add up their counts and join their
   * sets, where one record would otherwise replace the other's values. A field under another policy than
   * the record's (a 'manual' title) is left out of the record's op and follows as an op of its own, so
   * two devices that both set it meet under its policy (a conflict), not the record's (the later stamp).
   */
  private mergeableFields(p: Patch): Patch[] | undefined {
    if (!isPlainObject(p.value)) return undefined
    try {
      // A record that cannot be synced is refused whole (enqueuePatches says why): no field of it goes alone.
      assertSafeValue(p.value)
    } catch {
      return undefined
    }
    let rec: Record<string, unknown> | undefined
    const zeros: Record<string, unknown> = {}
    const fields: Patch[] = []
    for (const k of Object.keys(p.value)) {
      const v = p.value[k]
      const path = [...p.path, k]
      const policy = this.mergesAlone(path)
      const zero = policy === 'counter' && typeof v === 'number' ? 0 : policy === 'set' && Array.isArray(v) ? [] : undefined
      if (zero === undefined) {
        if (v === undefined || !this.ownPolicy(path)) continue
        rec ??= { ...p.value }
        delete rec[k]
        fields.push({ op: 'add', path, value: v })
        continue
      }
      rec ??= { ...p.value }
      rec[k] = zeros[k] = zero
      if (!deepEqual(v, zero)) fields.push({ op: 'replace', path, value: v, prev: zero })
    }
    return rec ? [{ ...p, value: rec, prev: zeros }, ...fields] : undefined
  }

  /** A counter or set field: its writes merge as increments and adds, so a whole-record write leaves it to an op of its own. */
  private mergesAlone(path: Path): 'counter' | 'set' | undefined {
    const policy = wirePolicy(this.o.policies.policyFor(path))
    return policy === 'counter' || policy === 'set' ? policy : undefined
  }

  /** A field whose policy is not its record's. */
  private ownPolicy(path: Path): boolean {
    return wirePolicy(this.o.policies.policyFor(path)) !== wirePolicy(this.o.policies.policyFor(path.slice(0, 2)))
  }

  /** The record exists for the server, or will once this device's pending writes land. */
  private hasRecord(rec: Path): boolean {
    let v = getAt(this.confirmed, rec)
    if (isPlainObject(v)) return true
    for (const s of this.outbox.entityRows(entityOf(rec))) v = overlay(v, rec, s.row.op.path, s.row.op)
    return isPlainObject(v)
  }

  /** Paths warned about a value their policy cannot merge (once each). */
  private mismatched = new Set<string>()
  private policyMismatch(path: Path, policy: string, value: unknown): void {
    const key = path.join('.')
    if (this.mismatched.has(key)) return
    this.mismatched.add(key)
    const kind = value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value
    this.o.onWarning?.(`[zync] ${key} has the '${policy}' policy but its value is ${kind} (${policy === 'counter' ? 'a number' : 'an array of primitives'} expected): concurrent writes of it do not merge as a ${policy}`)
  }

  private unrefuse(path: Path): void {
    // The write taken after it invalidates the status.
    for (const [k, r] of this.refused) if (isUnder(r.path, path)) this.refused.delete(k)
  }

  /** A local change that cannot be synced: `sync:failed` with its path, and a warning (console by default). */
  private refuse(error: ZyncError, path?: Path): void {
    if (path) {
      this.refused.set(pathKey(path), { path, error })
      this.invalidate()
    }
    this.events.emit('sync:failed', { error, ids: [], willRetry: false, ...(path ? { path } : {}) })
    this.o.onWarning?.(error.message)
  }

  private enqueuePatches(patches: Patch[], lane: Priority | undefined, resolves?: string): void {
    let count = 0
    // The rows this capture (one set(), or the set() calls of one task) made or folded into: see RowState.capture.
    let first: RowState | undefined
    let capture: RowState[] | undefined
    const touchedConflicts: string[] = []
    for (const p of patches) {
      try {
        assertSafePath(p.path)
        if (p.value !== undefined) assertSafeValue(p.value)
        if (p.path.length < OP_DEPTH) assertSegmentKeys(p.value, p.path.length)
      } catch (err) {
        this.refuse(reworded(err, `${pathToString([...p.path, ...badPart(p.value)])} is not synced`), p.path)
        continue
      }
      // A write taken at or above a refused path replaces what was refused there.
      if (this.refused.size > 0) this.unrefuse(p.path)
      // Inside an open conflict: the write joins it as the author's side, sent when they resolve it.
      if (!resolves && this.holdInConflict(p)) {
        count++
        continue
      }
      const op = this.makeOp(p, !resolves)
      if (resolves) op.resolves = resolves
      let priority = lane ?? this.o.priority?.({ path: p.path, op: p.op, value: p.value }) ?? 'medium'
      if (!PRIORITIES.includes(priority)) {
        this.o.onWarning?.(`[zync] priority() returned ${JSON.stringify(priority)} for ${pathToString(p.path)}: use ${PRIORITIES.join(', ')}; sending it as 'medium'`)
        priority = 'medium'
      }
      const row = this.enqueue(op, priority)
      count++
      if (!resolves) {
        // None when the write put a waiting row back to the server's value (undone).
        if (row) {
          if (!first) first = row
          else (capture ??= [first]).push(row)
        }
        for (const conflict of this.conflictsUnder(op.path)) touchedConflicts.push(conflict.id)
      }
    }
    if (capture) joinCapture(capture)
    // A local write over a conflicted field (its record replaced or removed) settles it: the new write
    // is causally after both.
    for (const id of touchedConflicts) this.dropConflict(id, 'local')
    if (count === 0) return
    if (this.events.has('change:local')) this.events.emit('change:local', { patches: patches.map((p) => ({ path: p.path, op: p.op, value: p.value, prev: p.prev })) })
    this.invalidate()
    // Send first, then start the IndexedDB write: its synchronous part (cloning the rows) would
    // otherwise delay every edit's way to the server.
    this.schedulePump(0)
    this.schedulePersist()
  }

  /**
   * The wall clock, watched against monotonic time: when it was set back (by NTP, or by hand), what
   * this engine takes for the server's time keeps going forward (`skew` takes the step), and retries
   * scheduled on the wall clock are moved back by as much. Otherwise the step would stamp every edit
   * in the past (losing races made earlier) and put backoffs off for as long as the step. A step
   * forward looks like a sleep, which is real time passing: it is trusted (the server clamps what runs ahead).
   */
  private wall(): number {
    const wall = this.now()
    const mono = this.mono()
    // Whole ms: HLC walls are integers (performance.now() is not).
    const back = Math.round(mono - this.lastMono - (wall - this.lastWall))
    this.lastWall = wall
    this.lastMono = mono
    if (back > CLOCK_STEP_MS) {
      this.skew += back
      for (const s of this.outbox.rows.values()) if (s.row.nextAt > 0) s.row.nextAt -= back
    }
    return wall
  }

  /** The newest stamp among this device's pending writes to `entity` made under other client ids (see HybridClock.tickAfter). */
  private foreignFloor(entity: string): string | undefined {
    if (!this.outbox.hasOtherClients(this.clientId)) return undefined
    let floor: string | undefined
    for (const s of this.outbox.entityRowsUnordered(entity)) {
      if (s.row.op.client !== this.clientId && !s.row.dead && (floor === undefined || s.row.op.hlc > floor)) floor = s.row.op.hlc
    }
    return floor
  }

  /**
   * An op's base: the record's confirmed vector, plus this device's writes of it under other client ids
   * (another tab, an earlier load of the page) that it shows: the user saw them, so this write is not
   * concurrent with them (a manual path raised a conflict of the user with themselves). Until the server
   * has them, such an op waits (heldForDevice): a base naming writes it never saw is refused.
   */
  private baseFor(entity: string, path: Path, shown: boolean): VersionVector {
    // While a write of this field is pending the screen shows it, not what others wrote there since: a
    // new write builds on what the earlier one saw (a person typing on after reconnecting has not seen
    // the other side's value; taken as seen, a 'manual' field's conflict was settled by the next key).
    // Only this client's own rows: another tab's (or an earlier page load's) rows go through the
    // device-order rules below, and a base taken from them could name writes this tab never had.
    const newest = shown ? this.outbox.pendingOfField(fieldKeyOf(entity, path)) : undefined
    const pending = newest?.client === this.clientId ? newest : undefined
    const base = pending ? pending.row.op.base : (this.knownVector(entity, path) ?? {})
    if (!this.outbox.hasOtherClients(this.clientId)) return base
    let out: VersionVector | undefined
    for (const s of this.outbox.entityRowsUnordered(entity)) {
      const c = s.row.op.client
      if (c === this.clientId || s.row.dead || s.row.op.n <= vvGet(out ?? base, c)) continue
      ;(out ??= { ...base })[c] = s.row.op.n
    }
    return out ?? base
  }

  /**
   * What this client has seen of an entity, as the server decides concurrency for an op of it: the
   * entity's confirmed vector, and the writes of a whole top-level key that cover its records (the key's
   * vector for a record; for the key, the vectors of the records under it, when it holds a collection).
   */
  private knownVector(entity: string, path: Path): VersionVector | undefined {
    const own = this.vv[entity]
    if (path.length >= 2) {
      const key = this.vv[entity.slice(0, entity.indexOf('/'))]
      return key ? vvMerge(own, key) : own
    }
    if (!isPlainObject(getAt(this.confirmed, path))) return own
    let out = own
    const prefix = entity + '/'
    for (const e in this.vv) if (e.startsWith(prefix)) out = vvMerge(out, this.vv[e])
    return out
  }

  /**
   * Whether a row waits for this device's writes under another client id that its base names (baseFor)
   * and that the server may not have: one of them is still pending. A base naming one that was refused
   * for good (a dead letter) no longer claims it.
   */
  private heldForDevice(s: RowState): boolean {
    const base = s.row.op.base
    const confirmed = this.knownVector(s.row.entity, s.row.op.path)
    for (const c in base) {
      const n = base[c]!
      // The row's own client id: its earlier writes are ordered before it (the server checks no further).
      if (c === this.clientId || c === s.row.op.client || n <= vvGet(confirmed, c)) continue
      let dead = false
      for (const o of this.outbox.entityRowsUnordered(s.row.entity)) {
        // A row that folded later edits in carries their n, but holds the first one's write too.
        if (o.row.op.client !== c || (o.row.n0 ?? o.row.op.n) > n) continue
        // Ranked after this row where it waits behind it (the same field, or a record-level write on either
        // side: see selectBatch), it can never go first: waiting for it would be for good. Its write is
        // claimed no further instead (as for a refused one).
        if (o.row.dead || (!o.done && o.row.order > s.row.order && (o.fieldKey === s.fieldKey || isRecordLevel(s) || isRecordLevel(o)))) dead = true
        else if (!o.done) return true
      }
      if (dead) this.lowerBase(s, c)
    }
    return false
  }

  /**
   * A row's base no longer claims `client`'s writes beyond what the server confirmed (one refused for good,
   * or sent under another client id since). From the base as it is now: a row may be lowered for several.
   */
  private lowerBase(s: RowState, client: string): void {
    s.row.op = { ...s.row.op, base: { ...s.row.op.base, [client]: vvGet(this.knownVector(s.row.entity, s.row.op.path), client) } }
    s.dirty = true
  }

  /** `shown`: an edit of what the screen shows (not a resolution, which has seen both sides). */
  private makeOp(p: Patch, shown: boolean): Op {
    const entity = entityOf(p.path)
    const policy = this.o.policies.policyFor(p.path)
    const wire = wirePolicy(policy)
    this.n += 1
    const op: Op = {
      id: newId(),
      client: this.clientId,
      n: this.n,
      // After this device's pending writes of the record made under other client ids (an earlier load
      // of the page, another tab): the user saw them, so this write comes after them, whatever the clock says.
      hlc: this.clock.tickAfter(this.foreignFloor(entity)),
      op: p.op,
      path: p.path,
      base: this.baseFor(entity, p.path, shown),
    }
    if (p.op !== 'remove') op.value = p.value
    if (wire !== 'lww') op.policy = wire
    if (wire === 'counter' && typeof p.value === 'number') op.delta = p.value - (typeof p.prev === 'number' ? p.prev : 0)
    else if (p.op !== 'remove' && (wire === 'counter' || (wire === 'set' && !Array.isArray(p.value)))) this.policyMismatch(p.path, wire, p.value)
    if (wire === 'set' && Array.isArray(p.value)) {
      const before = Array.isArray(p.prev) ? p.prev : []
      const key = (v: unknown) => JSON.stringify(v)
      const b = new Set(before.map(key))
      const a = new Set(p.value.map(key))
      op.added = p.value.filter((v) => !b.has(key(v)))
      op.removed = before.filter((v) => !a.has(key(v)))
    }
    const idKey = this.o.policies.idKey
    // Both sides must be id arrays (or empty), as the server checks: one with a repeated or missing id is a whole value.
    if (idKey && idArrayOrEmpty(p.value, idKey) && (p.prev === undefined || idArrayOrEmpty(p.prev, idKey)) && (isIdArray(p.value, idKey) || isIdArray(p.prev, idKey) || p.idKey === idKey)) {
      op.idKey = idKey
      op.prev = Array.isArray(p.prev) ? p.prev : []
    }
    // What the author saw: the server merges an object by key against it (concurrent edits of
    // different keys both stand); the inbox of manual and app-function fields shows it as the base.
    if (wire === 'manual' || wire === 'custom') op.prev = p.prev
    if (isPlainObject(p.value) && !op.idKey) {
      // A field, record or (empty) top-level collection created as an object saw nothing there: its base
      // is {} (two devices that create the same one offline merge by key too; a non-empty collection goes
      // as its records, see diff).
      if (p.op === 'replace' && isPlainObject(p.prev)) op.prev = p.prev
      else if (p.op === 'add') op.prev = isPlainObject(p.prev) ? p.prev : {}
    }
    return op
  }

  /**
   * Whether the op's base names a write of this device under another client id (another tab) that the
   * server has not confirmed yet. Such an op is not folded into an older row: the row would then wait
   * for that tab's row while that one waits for it (its base names the row's first op), and neither
   * would ever be sent.
   */
  private namesForeignPending(op: Op): boolean {
    if (!this.outbox.hasOtherClients(this.clientId)) return false
    let known: VersionVector | undefined
    for (const c in op.base) {
      if (c === this.clientId) continue
      known ??= this.knownVector(entityOf(op.path), op.path) ?? {}
      if (op.base[c]! > vvGet(known, c)) return true
    }
    return false
  }

  private enqueue(op: Op, lane: Priority): RowState | undefined {
    if (this.sealIfStale(this.now())) void this.heartbeat()
    const existing = this.outbox.coalescible(this.doc, this.clientId, op.path)
    if (existing && existing.row.op.policy === op.policy && existing.row.op.idKey === op.idKey && !op.resolves && !existing.row.op.resolves && existing.row.by === this.o.user?.id && !this.namesForeignPending(op)) {
      const prev = existing.row.op
      existing.row.n0 ??= prev.n
      const merged: Op = { ...op, id: prev.id }
      if (prev.delta !== undefined && op.delta !== undefined) merged.delta = prev.delta + op.delta
      if (prev.added || op.added) {
        const key = (v: unknown) => JSON.stringify(v)
        const rem = new Set((op.removed ?? []).map(key))
        const add = new Set((op.added ?? []).map(key))
        merged.added = [...(prev.added ?? []).filter((v) => !rem.has(key(v))), ...(op.added ?? [])]
        merged.removed = [...(prev.removed ?? []).filter((v) => !add.has(key(v))), ...(op.removed ?? [])]
      }
      // The merge base stays what the row's first op saw: the server has seen none of the row's writes.
      if ('prev' in prev) merged.prev = prev.prev
      else delete merged.prev
      existing.row.op = merged
      existing.row.lane = higherPriority(existing.row.lane, lane)
      existing.dirty = true
      existing.persisted = false
      if (!this.undone(existing)) return existing
      // Nothing left to send: the row goes as an acknowledged one does (storage, other tabs, flush()).
      this.settle(existing, false)
      this.undoneIds.add(existing.row.id)
      this.events.emit('sync:cancelled', { ids: [existing.row.id] })
      return undefined
    }
    const row: OutboxRow = {
      id: op.id,
      doc: this.doc,
      owner: this.clientId,
      order: ++this.order,
      lane,
      entity: entityOf(op.path),
      op,
      createdAt: this.now(),
      attempts: 0,
      nextAt: 0,
      ...(this.o.user ? { by: this.o.user.id } : {}),
      ...(this.o.endpoint ? { to: this.o.endpoint } : {}),
    }
    return this.outbox.add({ row, persisted: false, inFlight: false, dirty: true, done: false })
  }

  /**
   * Whether a waiting row, folded into, is back to what the server has (an edit and its undo, a tag added
   * and removed, +1 then -1): nothing to send. Sent, it was still a write: a later stamp over someone's
   * concurrent change, a 'manual' conflict between identical values, an element removed over another
   * device's add (a model trial). Only when no other row of the device writes the field, its record or its key
   * (the server's value, as far as this store knows, is then what the row started from).
   */
  private undone(s: RowState): boolean {
    const op = s.row.op
    const whole = isRecordLevel(s)
    for (const other of this.outbox.entityRowsUnordered(s.row.entity)) if (other !== s && (whole || other.fieldKey === s.fieldKey || isRecordLevel(other))) return false
    if (op.path.length > 1 && this.outbox.hasEntity(entityOf(op.path.slice(0, 1)))) return false
    // A counter's or a set's op carries the field's new value too: equal, its delta is 0 and its elements
    // net out (a set put back in another order still goes).
    return deepEqual(op.op === 'remove' ? undefined : op.value, getAt(this.confirmed, op.path))
  }

  withPriority<T>(priority: Priority, fn: () => T): T {
    this.captureNow()
    const prev = this.lanePriority
    this.lanePriority = priority
    try {
      return fn()
    } finally {
      this.captureNow()
      this.lanePriority = prev
    }
  }

  // ---- persistence -----------------------------------------------------------------------------

  // Persist and pump run in a microtask, not setTimeout(0): a timer costs 1 ms in Node and up to 4 ms in
  // browsers on every local edit's way to the server. Batching comes from `persisting` and `inFlight`:
  // whatever arrives while a write or a batch is under way goes out together in the next one.
  //
  // `lazy` is for what only speeds up a reload (deletes of acknowledged rows, the confirmed snapshot, retry
  // counts): written about every LAZY_PERSIST_MS (right after the write under way, if any), instead of one
  // transaction (and a copy of the whole confirmed state) per acknowledgement or remote change. Losing it
  // in a crash costs only a re-send (the server dedupes op ids) and a longer catch-up. Conflict changes
  // are never lazy: a new client id could not raise them again from the log.
  private schedulePersist(lazy = false, delay = LAZY_PERSIST_MS): void {
    if (this.destroyed) return
    if (lazy && this.putConflicts.size === 0 && this.deleteConflicts.size === 0) {
      if (this.lazyPersistTimer || this.persistQueued) return
      this.lazyPersistTimer = setTimeout(() => {
        this.lazyPersistTimer = undefined
        void this.persist()
      }, delay)
      ;(this.lazyPersistTimer as { unref?: () => void }).unref?.()
      return
    }
    if (this.persistQueued) return
    this.persistQueued = true
    queueMicrotask(() => {
      this.persistQueued = false
      void this.persist(false)
    })
  }

  /** Milliseconds until the confirmed state may be written again (0: now); see META_TIME_SHARE. */
  private metaWait(): number {
    const gap = Math.min(META_MAX_GAP_MS, Math.max(LAZY_PERSIST_MS, this.metaCostMs / META_TIME_SHARE))
    return Math.max(0, this.metaWrittenAt + gap - this.mono())
  }

  /**
   * Writes dirty rows and conflict changes in one storage transaction; `full` adds the lazy parts
   * (deletes and the confirmed snapshot), which an urgent write leaves to the lazy timer. The snapshot
   * waits while its last write was recent for what it cost (metaWait), unless `final` (destroy) or a
   * conflict was settled.
   */
  private async persist(full = true, final = false): Promise<void> {
    if (!this.isReady || this.destroyed) return
    if (this.pageHidden) this.spill()
    if (this.persisting) {
      await this.persisting
      // A full write that was due runs right after the current one: put off by the lazy second again, it
      // could wait forever while writes never stop (acknowledged rows would stay and be sent again after
      // a reload). Bounded still: the lazy timer asks for one at most once a second.
      if (full) {
        // destroy()'s last write is awaited, and keeps its `final` (the snapshot goes with it).
        const next = this.persist(true, final)
        if (final) await next
      } else this.schedulePersist(false)
      return
    }
    if (full && this.lazyPersistTimer) {
      clearTimeout(this.lazyPersistTimer)
      this.lazyPersistTimer = undefined
    }
    const put: OutboxRow[] = []
    const written: RowState[] = []
    // A spill after this point holds rows this write does not: it must outlive the write (see below).
    const spillsBefore = this.spills
    for (const s of this.outbox.rows.values()) {
      if (s.dirty && !s.done && s.row.owner === this.clientId) {
        put.push(copyRow(s.row))
        written.push(s)
        s.dirty = false
      }
    }
    // The confirmed state waits (metaWait) while it was written recently; the acknowledged rows' deletes
    // wait with it. Deleted without it, a reload in between showed neither: acknowledged edits seemed gone
    // until the server was reached (a trial reloaded offline 3 s after a sync of 10,000 edits).
    const metaWait = full && !final && !this.resolvedChanged && this.metaDirty ? this.metaWait() : 0
    const withMeta = ((full && metaWait === 0) || this.resolvedChanged) && this.metaDirty
    const del = full && (withMeta || !this.metaDirty) ? [...this.deleted] : []
    if (del.length > 0) this.deleted.clear()
    for (const id of this.undoneIds) {
      if (this.deleted.delete(id)) del.push(id)
    }
    this.undoneIds.clear()
    const putC = [...this.putConflicts.values()]
    this.putConflicts.clear()
    this.conflictsWriting = putC
    const delC = [...this.deleteConflicts]
    this.deleteConflicts.clear()
    // The meta goes with a full write, or with the write that deletes a settled conflict, so that after a
    // reload resolving it again says CONFLICT_RESOLVED (and a catch-up never raises it again).
    const meta = withMeta ? { doc: this.doc, confirmed: this.confirmed, vv: this.vv, seq: this.seq, savedAt: this.now(), resolved: [...this.resolvedIds], ...(this.o.endpoint ? { to: this.o.endpoint } : {}), ...(this.atOp !== undefined ? { at: this.atOp } : {}), n: this.n } : undefined
    if (withMeta) {
      // The storage may clone it after an await: later batches must not write into it.
      this.confirmedEpoch = new WeakSet()
      this.metaDirty = false
      this.resolvedChanged = false
      this.tailWriting = this.tail
      this.tail = []
      this.metaWriting = true
    }
    if (!full && (this.deleted.size > 0 || this.metaDirty)) this.schedulePersist(true)
    else if (metaWait > 0) this.schedulePersist(true, metaWait)
    if (put.length === 0 && del.length === 0 && putC.length === 0 && delC.length === 0 && !meta) return
    this.persisting = (async () => {
      try {
        const started = this.mono()
        try {
          await this.o.storage.write({ put, delete: del, putConflicts: putC, deleteConflicts: delC, ...(meta ? { meta } : {}) })
        } finally {
          if (this.conflictsWriting === putC) this.conflictsWriting = []
        }
        if (meta) {
          this.metaWrittenAt = this.mono()
          this.metaCostMs = this.metaWrittenAt - started
          this.metaWriting = false
          this.tailWriting = undefined
        }
        for (const s of written) if (!s.dirty) s.persisted = true
        if (del.length > 0 && this.recentSettled.size > 0) {
          const at = this.mono()
          for (const id of del) if (this.recentSettled.has(id)) this.recentSettled.set(id, at)
        }
        // 'queued' means in IndexedDB: announced only now, for the rows still pending (an ack that came
        // first announced its rows already: nothing is announced for them, not even an empty list).
        if (written.length > 0 && this.events.has('sync:queued')) {
          const ops = written.filter((w) => !w.done).map((w) => this.toPending(w))
          if (ops.length > 0) this.events.emit('sync:queued', { ops })
        }
        // The spill is dropped only by a write made after it: one under way when the page spilled (an
        // IndexedDB write landing between pagehide and the page's end) holds none of the edits made since,
        // and dropping the spill then lost them (a trial with six tabs closing: three edits made before
        // pagehide were nowhere). Written again instead, with only what is still not in IndexedDB.
        if (this.spilled) {
          if (this.spills === spillsBefore) this.unspill()
          else this.spill()
        }
        // The saved tail (see `tail`) now starts at the state just written: saved again while the page is
        // hidden, else dropped (a visible page saves it when it hides).
        if (meta && this.tailSpilled) this.saveTail(this.pageHidden || documentHidden())
        // Only rows still pending: one acknowledged during the write was announced 'settled' already,
        // and the other tabs, not knowing it then, would keep it as pending forever.
        const pending = put.filter((r) => this.outbox.rows.get(r.id)?.done === false)
        if (pending.length > 0) this.tabs?.post({ type: 'rows', rows: pending })
        this.persistRetries = 0
        if (this.localError) {
          if (this.lastError === this.localError) this.lastError = undefined
          this.localError = undefined
        }
      } catch (err) {
        for (const s of written) s.dirty = true
        for (const id of del) this.deleted.add(id)
        for (const c of putC) this.putConflicts.set(c.id, c)
        for (const id of delC) this.deleteConflicts.add(id)
        if (meta) {
          this.metaDirty = true
          this.resolvedChanged = true
          this.tail = this.tailWriting && this.tail && [...this.tailWriting, ...this.tail]
          this.metaWriting = false
          this.tailWriting = undefined
        }
        this.storageFailed(err, false)
        this.schedulePersistRetry()
      }
    })()
    await this.persisting
    this.persisting = undefined
    this.invalidate()
    this.schedulePump(0)
  }

  private persistRetries = 0
  private persistRetryTimer: ReturnType<typeof setTimeout> | undefined

  /** A failed write is retried with backoff; rows stay in memory (and are sent) meanwhile. */
  private schedulePersistRetry(): void {
    if (this.persistRetryTimer || this.destroyed) return
    this.persistRetries += 1
    const delay = Math.max(100, backoffDelay(this.persistRetries, this.backoff, this.random))
    this.persistRetryTimer = setTimeout(() => {
      this.persistRetryTimer = undefined
      void this.persist()
    }, delay)
    ;(this.persistRetryTimer as { unref?: () => void }).unref?.()
  }

  private storageFailed(err: unknown, atOpen: boolean): void {
    // A full disk at load (a closing page's spill to take in, a heartbeat) is said as such, as at a write.
    const e = err instanceof ZyncError ? err : new ZyncError(atOpen && !isQuotaError(err) ? 'STORAGE_UNAVAILABLE' : 'STORAGE_FULL', `[zync] local storage failed: ${String((err as Error)?.message ?? err)}`, { cause: err })
    this.localError = e
    this.lastError = e
    if (atOpen) this.o.onWarning?.(`${e.message}; keeping the outbox in memory only`)
    this.events.emit('storage:error', { error: e })
    this.invalidate()
  }

  // ---- connection --------------------------------------------------------------------------------

  private watchNetwork(): void {
    if (this.o.watchNetwork === false) return
    const g = globalThis as { addEventListener?: typeof addEventListener; removeEventListener?: typeof removeEventListener; navigator?: { onLine?: boolean } }
    if (typeof g.addEventListener !== 'function' || typeof g.navigator?.onLine !== 'boolean') return
    this.networkUp = g.navigator.onLine
    const up = () => {
      this.networkUp = true
      if (this.wantOnline) this.openTransport()
    }
    const down = () => {
      this.networkUp = false
      this.o.transport.close()
      this.onDisconnect('network offline')
    }
    g.addEventListener('online', up)
    g.addEventListener('offline', down)
    const prev = this.cleanupNetwork
    this.cleanupNetwork = () => {
      prev?.()
      g.removeEventListener?.('online', up)
      g.removeEventListener?.('offline', down)
    }
  }

  /**
   * The page may die before a pending IndexedDB write lands (a reload a few ms after an edit). On
   * pagehide and when hidden, rows not yet persisted are written synchronously through the storage's
   * `spill` (localStorage for Dexie); the next load imports them. Duplicates are harmless: op ids.
   */
  private watchPageLifecycle(): void {
    const g = globalThis as { addEventListener?: typeof addEventListener; removeEventListener?: typeof removeEventListener }
    if (typeof g.addEventListener !== 'function' || (!this.o.storage.spill && !this.o.storage.spillTail)) return
    const hide = () => {
      this.pageHidden = true
      this.spill()
      this.saveTail(true)
    }
    const show = () => {
      this.pageHidden = false
    }
    const vis = () => {
      if (!documentHidden()) return
      this.spill()
      this.saveTail(true)
    }
    g.addEventListener('pagehide', hide)
    g.addEventListener('pageshow', show)
    g.addEventListener('visibilitychange', vis)
    const prev = this.cleanupNetwork
    this.cleanupNetwork = () => {
      prev?.()
      g.removeEventListener?.('pagehide', hide)
      g.removeEventListener?.('pageshow', show)
      g.removeEventListener?.('visibilitychange', vis)
    }
  }

  /**
   * Between pagehide and the page's end (or a bfcache restore): every write spills first. A timer may
   * still run an edit then, and the page dies before its IndexedDB write lands (a six-tab trial: the edit
   * after pagehide reached the server in part, its record without its counter increment).
   */
  private pageHidden = false

  /** Whether this store's spill is in the storage; `spills` counts them (see persist). */
  private spilled = false
  private spills = 0

  /**
   * The server changes applied since the confirmed state was last written (in seq order, contiguous),
   * saved on pagehide apart from the rows' spill (see saveTail): that state is written lazily, about once a second, and a reload
   * within that second started, offline, from the older one: a record deleted there showed again, and
   * edits made to it went unsaid once online (a new-user trial). Acknowledgements of this store's own
   * writes are among them, so their rows are not shown as pending again either. Undefined when it cannot
   * be kept (a snapshot replaced the state, or over TAIL_MAX changes) until the next write of the state.
   * `tailWriting`: the part the write under way holds, until it lands (`metaWriting`).
   */
  private tail: Change[] | undefined = []
  private tailWriting: Change[] | undefined
  private metaWriting = false

  /** What the saved tail holds: the changes the stored confirmed state lacks, or undefined when unknown. */
  private unsavedTail(): Change[] | undefined {
    if (!this.tail || !this.metaWriting) return this.tail
    return this.tailWriting && [...this.tailWriting, ...this.tail]
  }

  private tailSpilled = false

  /**
   * Saves the tail for the next page (on pagehide and when hidden, after the rows' spill and apart from
   * it), or with `write` false drops the saved one. Best effort.
   */
  private saveTail(write: boolean): void {
    const storage = this.o.storage
    if (!storage.spillTail || this.destroyed) return
    const tail = write ? this.unsavedTail() : undefined
    if (!tail?.length && !this.tailSpilled) return
    try {
      storage.spillTail(this.doc, this.clientId, tail?.length ? { changes: tail, ...(this.o.endpoint ? { to: this.o.endpoint } : {}) } : undefined)
      this.tailSpilled = !!tail?.length
    } catch {
      // Best effort: the page is going away.
    }
  }

  /** Applies the changes closing pages spilled that continue from the loaded confirmed state (see `tail`). */
  private replayTails(tails: SpilledTail[] | undefined): void {
    if (!tails) return
    const mine = (t: SpilledTail) => t.to === undefined || this.o.endpoint === undefined || t.to === this.o.endpoint
    const changes = tails.filter(mine).flatMap((t) => t.changes).filter(wellFormed).sort((a, b) => a.seq - b.seq)
    const run: Change[] = []
    for (const c of changes) {
      const next = this.seq + run.length + 1
      if (c.seq < next) continue
      if (c.seq > next) break
      run.push(c)
    }
    if (run.length === 0) return
    // localStorage is the page's to write: one that fails here anyway leaves the stored state as it was
    // (half applied, the join would skip the rest as seen).
    const was = { confirmed: this.confirmed, vv: { ...this.vv }, seq: this.seq, atOp: this.atOp, tail: this.tail && [...this.tail] }
    try {
      this.applyChanges(run)
    } catch (err) {
      Object.assign(this, was)
      this.o.onWarning?.(`[zync] the changes a closing page of "${this.doc}" saved could not be applied (${(err as Error).message}); the server sends them again`)
    }
  }

  /**
   * Synchronously saves rows that are not in IndexedDB yet (see watchPageLifecycle), replacing this
   * store's earlier spill; with none left, the earlier spill goes (it would bring back rows settled since).
   */
  spill(): void {
    if (this.destroyed || !this.o.storage.spill) return
    this.captureNow()
    const rows: OutboxRow[] = []
    for (const s of this.outbox.rows.values()) if (!s.done && s.row.owner === this.clientId && (!s.persisted || s.dirty)) rows.push(s.row)
    // Conflicts not in IndexedDB yet too: one just raised, or the author's writes held in one (a trial:
    // typing on in a 'manual' field, then closing every tab at once, lost the last words typed).
    const conflicts = [...this.conflictsWriting, ...this.putConflicts.values()]
    this.spills += 1
    if (rows.length === 0 && conflicts.length === 0) return this.unspill()
    try {
      this.o.storage.spill(this.doc, this.clientId, rows, conflicts)
      this.spilled = true
    } catch {
      // Best effort: the page is going away.
    }
  }

  private unspill(): void {
    if (!this.spilled) return
    this.spilled = false
    this.o.storage.unspill?.(this.doc, this.clientId)
  }

  connect(): void {
    if (this.destroyed) return
    this.wantOnline = true
    this.versionRefusals = 0
    if (this.isReady) this.openTransport()
    else if (this.networkUp && !this.destroyed) this.setConnection('connecting')
  }

  disconnect(): void {
    if (this.destroyed) return
    this.wantOnline = false
    this.o.transport.close()
    this.onDisconnect('disconnected on purpose')
  }

  private openTransport(): void {
    if (this.destroyed || !this.networkUp || !this.wantOnline) return
    if (this.connection === 'offline') this.setConnection('connecting')
    this.o.transport.open({
      onConnect: () => void this.onConnect(),
      onDisconnect: (reason) => this.onDisconnect(reason),
      onError: (error) => {
        this.lastError = error
        // A refusal another attempt cannot fix (credentials, protocol version) stops the attempts: the
        // store is offline with that error until the app calls connect() again. A failed attempt is
        // retried ('connecting'); an error on a live connection (a malformed broadcast) changes nothing.
        if (!this.wantOnline || REFUSAL_CODES.has(error.code)) this.setConnection('offline')
        else if (!this.o.transport.connected) this.setConnection('connecting')
        this.invalidate()
      },
      onChanges: (msg) => this.onChanges(msg),
      onPresence: (msg) => this.onPresence(msg),
      onPresenceRefused: (doc, error) => this.onPresenceRefused(doc, error),
      // The server's storage is back after an outage: what backed off from it goes now.
      onResume: () => {
        if (this.destroyed) return
        // A join (a catch-up) refused meanwhile waits out a backoff too: joining again sends what is pending.
        if (!this.joined) {
          if (this.o.transport.connected && !this.joining) void this.onConnect()
          return
        }
        if (!this.serverFailed) return
        this.resumeAfterFailure()
        this.invalidate()
        this.schedulePump(0)
      },
    })
  }

  private async onConnect(): Promise<void> {
    if (this.destroyed || this.joining) return
    this.joining = true
    this.setConnection('connecting')
    await this.runJoin()
  }

  /**
   * One join, under `joining` (which the caller set). Joins carry a generation: only the newest one
   * clears `joining` and looks whether to catch up again. An older one (of an earlier connection, or
   * superseded) must not: a newer join owns the flag, and its answer is stale anyway (see catchUp).
   */
  private async runJoin(): Promise<void> {
    const gen = ++this.joinGen
    try {
      await this.catchUp(gen)
    } finally {
      if (gen === this.joinGen) this.joining = false
    }
    if (gen === this.joinGen) this.catchUpIfBehind()
  }

  /**
   * Changes that arrived during a catch-up but after its answer was read (or past a gap) were not
   * applied: when we know the server is further than we are, catch up again.
   */
  private catchUpIfBehind(): void {
    if (this.joined && this.serverSeq > this.seq) this.requestCatchUp()
  }

  /** Join the document and apply everything after our last seq, then flush the outbox. `gen`: see runJoin. */
  private async catchUp(gen: number): Promise<void> {
    const epoch = this.sendEpoch
    this.captureNow()
    const askedAt = this.mono()
    const res = await this.o.transport.join({ v: PROTOCOL_VERSION, doc: this.doc, client: this.clientId, since: this.seq, ...(this.seq > 0 && this.atOp !== undefined ? { at: this.atOp } : {}) })
    if (this.destroyed || !this.o.transport.connected) return
    // The answer to a join of an earlier connection, or one a newer join has superseded (it can arrive,
    // or time out, long after a reconnect): it says nothing about now, and acting on it would unjoin
    // the engine or rewind what it knows of the server while the current join is under way.
    if (gen !== this.joinGen || epoch !== this.sendEpoch) return
    if (!res.ok) {
      this.lastError = fromWireError(res)
      this.joined = false
      this.invalidate()
      if (res.retryable) this.retryJoinLater(res.retryAfter)
      // A node of another protocol version (a server upgrade under way): the next node may serve us.
      else if (res.code === 'PROTOCOL_VERSION' && this.o.transport.skip?.(++this.versionRefusals)) return
      // Refused for good (not allowed to read the document, another protocol version everywhere): not connecting.
      else this.setConnection('offline')
      return
    }
    this.versionRefusals = 0
    // The server read its clock between the request and the answer: taken at the midpoint of the round
    // trip (as NTP does), the estimate is off by at most half of it. Taken at the answer, a round trip of
    // 2.4 s (a slow mobile link) made a device whose clock agrees stamp 1.2 s in the past. Under a
    // second apart, the clocks are taken to agree: the estimate carries queueing on both sides (tens of
    // ms on a loaded machine), and correcting by it reordered edits made a few ms apart on two devices
    // whose clocks agree. Further apart, it keeps stamps near the server's.
    // Whole ms: HLC walls are integers (half a round trip of performance.now() is not).
    const skew = Math.round(res.serverTime - (this.now() - (this.mono() - askedAt) / 2))
    this.skew = Math.abs(skew) < SKEW_NOISE_MS ? 0 : skew
    if (this.readOnly !== (res.readOnly === true)) {
      this.readOnly = !this.readOnly
      this.invalidate()
    }
    if (typeof res.n === 'number' && res.n > this.n) this.n = res.n
    if (res.user) this.presenceTracker.setUser(res.user)
    this.lastWall = this.now()
    this.lastMono = this.mono()
    // Writes the server refused as stamped too far ahead go again, stamped by the server's time just learnt.
    for (const st of this.outbox.rows.values()) {
      if (!st.restamp) continue
      st.restamp = false
      st.row.op = { ...st.row.op, hlc: this.clock.tick() }
      st.dirty = true
    }
    if (typeof res.maxPayload === 'number' && res.maxPayload > 0) this.maxPayload = res.maxPayload
    this.pace = undefined
    if (typeof res.opsPerSecond === 'number' && res.opsPerSecond > 0 && typeof res.messagesPerSecond === 'number' && res.messagesPerSecond > 0) {
      // A little under the server's rates and bursts (its buckets for this socket started full at this
      // connection): what the network bunches up still fits.
      const ops = res.opsPerSecond * PACE_MARGIN
      const messages = res.messagesPerSecond * PACE_MARGIN
      // Monotonic time, as the server's: a wall clock set back would stall the refill for as long.
      const now = performance.now()
      // Stores sharing one connection share its limits: one pace for all of them (per session).
      const link = this.o.transport.link?.()
      const known = link && LINK_PACE.get(link[0])
      if (known && known.session === link[1] && known.pace.ops === ops && known.pace.messages === messages) this.pace = known.pace
      else {
        this.pace = { ops, messages, opsBucket: new TokenBucket(2 * ops, now), messageBucket: new TokenBucket(2 * messages, now) }
        if (link) LINK_PACE.set(link[0], { session: link[1], pace: this.pace })
      }
    }
    if (typeof res.presenceTtl === 'number' && res.presenceTtl > 0) this.presenceTracker.serverTtl(res.presenceTtl)
    if (typeof res.presencePerSecond === 'number' && res.presencePerSecond > 0) this.presenceTracker.serverRate(res.presencePerSecond)
    if (typeof res.presenceBytes === 'number' && res.presenceBytes > 0) this.presenceBytes = res.presenceBytes
    const rewound = res.snapshot && (res.snapshot.seq < this.seq || res.rewound) ? { seq: this.seq, serverSeq: res.snapshot.seq } : undefined
    if (rewound) {
      this.o.onWarning?.(
        `[zync] the server's log of "${this.doc}" ${res.rewound ? 'is not the one' : `ends at seq ${rewound.serverSeq}, but`} this device had applied up to ${rewound.seq}: the server lost acknowledged writes (restored from a backup?). Showing the server's state; pending edits are still sent`,
      )
      this.events.emit('server:rewound', rewound)
    }
    if (res.snapshot) {
      const previous = this.confirmed
      this.confirmed = res.snapshot.state
      this.vv = res.snapshot.vv
      for (const v of Object.values(this.vv)) this.n = Math.max(this.n, vvGet(v, this.clientId))
      this.seq = res.snapshot.seq
      this.atOp = undefined
      this.metaDirty = true
      this.tail = undefined
      if (rewound) this.rebaseOwnRows()
      this.refreshAll(previous, 'snapshot')
    }
    this.applyChanges(res.changes)
    const early = this.early.sort((a, b) => a.seq - b.seq)
    this.early = []
    // The answer is the server's truth (its log may even have restarted): only broadcasts newer than it count.
    this.serverSeq = Math.max(res.seq, early.length > 0 ? early[early.length - 1]!.seq : 0)
    if (early.length > 0 && early[0]!.seq <= this.seq + 1) this.applyChanges(early)
    // Rows acknowledged during the catch-up whose change the snapshot holds leave the screen's overlay
    // (a rewound server lost the others: its state is shown, as for every acknowledged write it lost).
    this.releaseApplied(rewound !== undefined)
    // The server answered: its errors are over; a local storage failure stays until a write succeeds.
    this.lastError = this.localError
    this.joined = true
    // The server is reachable again: rows waiting out a transport failure go now, not after their backoff.
    for (const st of this.outbox.rows.values()) if (!st.row.dead && st.row.nextAt > 0) st.row.nextAt = 0
    this.outbox.changed()
    this.setConnection('online')
    this.events.emit('network:online', {})
    this.presenceTracker.resend()
    this.schedulePersist()
    this.schedulePump(0)
  }

  /** `after`: when the server said (RATE_LIMITED), else a backoff. */
  private retryJoinLater(after?: number): void {
    const t = setTimeout(() => {
      if (this.o.transport.connected && !this.joined && !this.destroyed) void this.onConnect()
    }, after ?? backoffDelay(3, this.backoff, this.random) + 100)
    ;(t as { unref?: () => void }).unref?.()
  }

  private onDisconnect(reason: string): void {
    const was = this.connection
    this.joined = false
    this.joining = false
    this.early = []
    for (const s of this.outbox.rows.values()) s.inFlight = false
    if (this.inFlight > 0) this.busyMs += this.now() - this.busyStart
    this.inFlight = 0
    this.inFlightBytes = 0
    this.sendEpoch++
    this.presenceTracker.clearPeers()
    this.setConnection(this.wantOnline && this.networkUp ? 'connecting' : 'offline')
    if (was === 'online') this.events.emit('network:offline', { reason })
  }

  private setConnection(c: ConnectionState): void {
    if (this.connection === c) return
    this.connection = c
    this.invalidate()
  }

  // ---- sending -------------------------------------------------------------------------------

  private schedulePump(delay: number): void {
    if (this.destroyed) return
    if (delay <= 0) {
      if (this.pumpTimer) clearTimeout(this.pumpTimer)
      this.pumpTimer = undefined
      if (this.pumpQueued) return
      this.pumpQueued = true
      queueMicrotask(() => {
        this.pumpQueued = false
        void this.pump()
      })
      return
    }
    if (this.pumpQueued) return
    // A timer already set for this time or earlier covers this one; a later one is moved up.
    const at = performance.now() + delay
    if (this.pumpTimer) {
      if (this.pumpAt <= at) return
      clearTimeout(this.pumpTimer)
    }
    this.pumpAt = at
    this.pumpTimer = setTimeout(() => {
      this.pumpTimer = undefined
      void this.pump()
    }, delay)
    ;(this.pumpTimer as { unref?: () => void }).unref?.()
  }

  /**
   * Cuts the batch before the first row not yet in storage whose capture (RowState.capture) has a row
   * that is not going with it; that row goes once it is written (persist pumps again). Sent alone before
   * the write, a crash or a closing page tore the set(): a crash trial found a record on the server
   * without the counter increment the same set() made, which waited behind the counter's op in flight.
   * Rows already written go as they can: the next page sends the rest. Not while writes fail (rows then
   * go from memory, and waiting for a write would hold them for good).
   */
  private wholeCaptures(batch: RowState[]): void {
    if (this.localError) return
    for (;;) {
      let going: Set<RowState> | undefined
      let cut = -1
      for (let i = 0; i < batch.length && cut < 0; i++) {
        const s = batch[i]!
        if (s.persisted || !s.capture) continue
        going ??= new Set(batch)
        for (const m of s.capture) {
          if (!m.done && !m.row.dead && !m.inFlight && !going.has(m)) {
            cut = i
            break
          }
        }
      }
      if (cut < 0) return
      batch.length = cut
    }
  }

  private async pump(): Promise<void> {
    if (!this.isReady || !this.joined || this.inFlight >= MAX_IN_FLIGHT || this.destroyed) return
    const now = this.wall()
    // Rows go out as soon as they are captured, in parallel with their IndexedDB write: waiting for the
    // write would add its latency to every edit. Nothing is lost or doubled either way: a row the tab
    // dies with before its write is spilled on pagehide, and the server dedupes op ids. Only whole
    // captures go before their write, though (wholeCaptures).
    // Rows whose base names this device's pending writes under other client ids wait for them (looked at
    // only when the outbox holds such rows), checked again shortly.
    const device = this.outbox.hasOtherClients(this.clientId)
    let held = false
    const batch = this.outbox.selectBatch(this.clientId, now, this.o.batchSize ?? 500, (s) => !s.restamp && !(device && this.heldForDevice(s) && (held = true)))
    if (held) this.schedulePump(DEVICE_WAIT_MS)
    // Bounded in bytes too: a batch over the server's frame limit (maxPayload, 4 MB by default) closes the
    // connection, and resending it would loop. The rest goes in the next batches, in order. One op that
    // cannot fit in a frame on its own would loop the same way: it is refused here (TOO_LARGE).
    // And by the link: what is in flight stays within `linkWindow`, in batches of half of it, so two are
    // in flight; until an answer has measured the link, one batch (one always may go).
    const share = this.linkMeasured ? this.linkWindow / 2 : this.linkWindow
    if (this.inFlight > 0 && (!this.linkMeasured || this.inFlightBytes + share > this.linkWindow)) return
    const batchBytes = Math.min(MAX_BATCH_BYTES, this.maxPayload / 4, Math.max(MIN_LINK_WINDOW, share))
    let refused = false
    let bytes = 0
    for (let i = 0; i < batch.length; i++) {
      const s = batch[i]!
      // Made by another user of this device (left unsent when they signed out): never sent as this one's.
      if (s.row.by !== undefined && this.o.user && s.row.by !== this.o.user.id) {
        this.deadLetter(s, new ZyncError('CLIENT_MISMATCH', `[zync] op ${s.row.id} was made by user ${JSON.stringify(s.row.by)} on this device; it is not sent as ${JSON.stringify(this.o.user.id)} (retry() sends it as this user, discard() drops it)`, { opId: s.row.id }))
        batch.splice(i--, 1)
        refused = true
        continue
      }
      const b = opBytes(s.row.op)
      const exact = b > batchBytes ? wireBytes(s.row.op) : 0
      if (exact > this.maxPayload - FRAME_SLACK) {
        this.deadLetter(s, new ZyncError('TOO_LARGE', `[zync] op ${s.row.id} is ${exact.toLocaleString('en-US')} bytes, over the server's message limit of ${this.maxPayload.toLocaleString('en-US')} (limits.maxPayload)`, { opId: s.row.id }))
        batch.splice(i--, 1)
        refused = true
        continue
      }
      if (i > 0 && bytes + b > batchBytes) {
        batch.length = i
        break
      }
      bytes += b
    }
    // A capture cut by any of the above waits for its write (wholeCaptures).
    this.wholeCaptures(batch)
    if (batch.length === 0 && refused) {
      this.schedulePump(0)
      return
    }
    if (batch.length > 0 && this.pace && !this.paced(batch, performance.now())) return
    if (batch.length === 0) {
      const next = this.outbox.nextRetryAt(this.clientId, now)
      if (next !== undefined) this.schedulePump(next - now)
      this.checkSynced()
      return
    }
    // The pace counts the time with batches in flight (on the engine's clock, which the simulation drives).
    if (this.inFlight++ === 0) this.busyStart = this.now()
    this.inFlightBytes += bytes
    const sent = this.inFlightBytes
    const epoch = this.sendEpoch
    for (const s of batch) {
      s.inFlight = true
      this.outbox.seal(s)
    }
    this.invalidate()
    // Pipelined: the next batch (rows of other fields, or rows captured since) may go out before this
    // one is answered, so the round trip is not paid once per batch. A row is never sent while an earlier
    // row it overlaps (same field, or a record-level row) is in flight (selectBatch): writes it overlaps
    // land in order.
    if (this.inFlight < MAX_IN_FLIGHT) this.schedulePump(0)
    // The time to upload what is in flight at the measured pace comes on top of `ackTimeout`.
    const res = await this.o.transport.send({ doc: this.doc, ops: batch.map((s) => s.row.op) }, (this.o.ackTimeout ?? 10_000) + Math.round((LINK_SECONDS * 1000 * this.inFlightBytes) / this.linkWindow))
    if (epoch === this.sendEpoch) {
      this.inFlight--
      this.inFlightBytes -= bytes
      this.measureLink(bytes, res, sent)
      if (this.inFlight === 0) this.busyMs += this.now() - this.busyStart
    }
    if (this.destroyed) return
    for (const s of batch) s.inFlight = false
    if (!res.ok) {
      const error = fromWireError(res)
      if (res.code === 'FORBIDDEN') this.readOnly = true
      if (res.retryable) this.retryRows(batch, error)
      else for (const s of batch) this.deadLetter(s, error)
    } else {
      // This answer's 'sync:acked' covers its rows: their changes applied below do not report them again.
      this.readOnly = false
      // Only an op it applied shows the server whole again: its storage's failures come as op results.
      if (this.serverFailed && res.results.some((r) => r.ok)) this.resumeAfterFailure()
      this.answering = true
      try {
        this.onAnswer(batch, res)
      } finally {
        this.answering = false
      }
    }
    this.invalidate()
    this.schedulePersist(true)
    this.schedulePump(0)
  }

  /**
   * Learns the link's pace from an answer: the bytes answered since batches began to flow without a
   * pause, over that time (answers arriving bunched together do not fool it). The window follows it,
   * at most doubling per answer; a timed-out batch halves what was in flight with it (`sent`): halving
   * a window larger than the batch sent the same batch again (a flaky-network trial uploaded a 60 KB
   * backlog three times over a 3 KB/s link).
   */
  private measureLink(bytes: number, res: OpsResponse, sent: number): void {
    if (!res.ok) {
      if (res.code === 'TIMEOUT') this.linkWindow = Math.max(MIN_LINK_WINDOW, Math.min(this.linkWindow, sent) / 2)
      return
    }
    const now = this.now()
    this.busyBytes += bytes
    let ms = this.busyMs + now - this.busyStart
    // About the last 10 s count: past that, all is halved, so the pace follows a link that changes.
    if (ms > 10_000) {
      ms /= 2
      this.busyBytes /= 2
      this.busyMs /= 2
      this.busyStart = now - (now - this.busyStart) / 2
    }
    const window = (this.busyBytes / Math.max(1, ms)) * LINK_SECONDS * 1000
    this.linkWindow = Math.min(MAX_LINK_WINDOW, 2 * this.linkWindow, Math.max(MIN_LINK_WINDOW, window))
    this.linkMeasured = true
  }

  private onAnswer(batch: RowState[], res: Extract<OpsResponse, { ok: true }>): void {
    // Our own changes, when the server sent them in the ack rather than a broadcast: first, in order.
    if (res.changes && res.changes.length > 0) this.onChanges({ doc: this.doc, changes: res.changes })
    this.lastError = this.localError
    const byId = new Map(batch.map((s) => [s.row.id, s]))
    const retry: RowState[] = []
    let retryError: ZyncError | undefined
    let restamp = false
    // Entities to show anew, once for the whole answer: refreshed per op, an answer of 5,000 ops that had
    // to come off the screen (sent again after a reload, already applied) copied the collection 5,000 times.
    const touched = new Map<string, Path>()
    for (const r of res.results) {
      const s = byId.get(r.id)
      if (!s) continue
      if (r.ok) {
        if (r.change && r.seq === this.seq + 1) this.applyChanges([r.change])
        // The change is not next in line (ahead of us, or inside a snapshot we caught up with): raise
        // the conflict from the ack, so it is stored with the row's removal, the local value stays on
        // screen, and it is not lost when the change itself never reaches us.
        else if (r.change?.status === 'conflict' && !s.done) this.raiseConflict(r.change, s.row.owner === this.clientId, s)
        // Its change not applied here yet (it waits behind a catch-up, or in a gap): kept on screen till it is.
        const until = r.seq > this.seq ? r.seq : undefined
        this.settle(s, false, until)
        if (until === undefined) touched.set(s.row.entity, entityPath(s.row.op.path))
      } else if (r.retryable) {
        retry.push(s)
        retryError = fromWireError(r)
      } else if (r.code === 'CLOCK_SKEW' && !s.restamped) {
        // Stamped too far ahead of the server (a device clock a day or more fast, or the server's clock
        // set back since we joined): held, the server's time asked again, then stamped anew (once).
        s.restamp = s.restamped = true
        restamp = true
      } else {
        this.deadLetter(s, fromWireError(r), touched)
      }
    }
    this.refreshEntities(touched)
    if (restamp) this.requestCatchUp()
    if (retry.length > 0) this.retryRows(retry, retryError!)
    if (res.seq > this.serverSeq) this.serverSeq = res.seq
    if (res.seq > this.seq) this.requestCatchUp()
    this.events.emit('sync:acked', { ids: res.results.filter((r) => r.ok && !byId.get(r.id)?.reported).map((r) => r.id), seq: res.seq })
    // The last answer out: `lastSyncedAt` is current when the flush() it resolved returns to the app.
    if (this.inFlight === 0) this.checkSynced()
  }

  /**
   * Fits a batch into the server's limits (see `pace`): cut to the ops it admits now, or, when that is
   * under a chunk (1/20 s worth), not sent: the pump comes back when a chunk is there. A long queue
   * goes out in chunks of that size, none refused. True when the (cut) batch may go.
   */
  private paced(batch: RowState[], now: number): boolean {
    const p = this.pace!
    const ops = Math.floor(p.opsBucket.available(p.ops, 2 * p.ops, now))
    const chunk = Math.min(batch.length, Math.max(1, Math.ceil(p.ops / 20)))
    if (ops < chunk || p.messageBucket.available(p.messages, 2 * p.messages, now) < 1) {
      this.schedulePump(Math.max(1, p.opsBucket.wait(chunk, p.ops, 2 * p.ops, now), p.messageBucket.wait(1, p.messages, 2 * p.messages, now)))
      return false
    }
    if (batch.length > ops) batch.length = ops
    p.opsBucket.take(batch.length, p.ops, 2 * p.ops, now)
    p.messageBucket.take(1, p.messages, 2 * p.messages, now)
    return true
  }

  private retryRows(rows: RowState[], error: ZyncError): void {
    if (SERVER_WIDE.has(error.code)) this.serverFailed = true
    const now = this.now()
    let retryAt = Infinity
    for (const s of rows) {
      s.row.attempts += 1
      // Over the server's rate: it said when it admits the request again (a little jitter spreads tabs).
      s.row.nextAt = now + (error.retryAfter !== undefined ? error.retryAfter + Math.floor(this.random() * 50) : backoffDelay(s.row.attempts, this.backoff, this.random))
      s.row.lastError = { code: error.code, message: error.message }
      s.dirty = true
      retryAt = Math.min(retryAt, s.row.nextAt)
    }
    this.lastError = error
    this.events.emit('sync:failed', { error, ids: rows.map((s) => s.row.id), willRetry: true, retryAt })
    this.outbox.changed()
    // Their attempts, next retry and error show in status() and pendingOperations() now, not at the next change.
    this.invalidate()
    this.schedulePump(Math.max(0, retryAt - now))
  }

  /**
   * The server answers a batch again: this tab's rows that were backing off from a failure of the server
   * as a whole (SERVER_WIDE) go now, not each when its own backoff ends. After an outage of its storage,
   * a client kept edits pending for up to the backoff's cap (30 s) while its new edits went through.
   */
  private resumeAfterFailure(): void {
    this.serverFailed = false
    for (const st of this.outbox.rows.values()) {
      if (st.row.owner === this.clientId && !st.row.dead && !st.done && st.row.nextAt > 0 && st.row.lastError && SERVER_WIDE.has(st.row.lastError.code as ZyncErrorCode)) st.row.nextAt = 0
    }
    this.outbox.changed()
  }

  /** `touched`: the caller shows the row's entity anew (once for a whole answer), else it is done here. */
  private deadLetter(s: RowState, error: ZyncError, touched?: Map<string, Path>): void {
    s.row.dead = true
    s.row.lastError = { code: error.code, message: error.message }
    s.dirty = true
    this.outbox.seal(s)
    this.outbox.changed()
    this.lastError = error
    if (touched) touched.set(s.row.entity, entityPath(s.row.op.path))
    else this.refreshEntity(s.row.entity, s.row.op.path)
    const dl = this.toDead(s)
    this.events.emit('sync:failed', { error, ids: [s.row.id], willRetry: false })
    this.events.emit('sync:dead-letter', { deadLetter: dl })
  }

  /**
   * The server settled this op (applied, superseded or conflict): drop it from the outbox. `refresh`:
   * recompute its entity on screen now (false when the caller does it once for a whole batch).
   * `shownUntil`: the seq of its change when this store has not applied it yet (it waits behind a
   * catch-up, or another tab settled it first): settled for every count (pending, flush, storage), but
   * kept on screen until the change is applied, when settle is called again (applyChanges,
   * releaseApplied). Dropped at once, it vanished for a catch-up's round trip, and an edit of it then
   * (a delete, say) was lost.
   */
  private settle(s: RowState, refresh = true, shownUntil?: number): void {
    if (s.done) {
      if (s.acked === undefined || shownUntil !== undefined) return
      s.acked = undefined
      return this.unshow(s, refresh)
    }
    s.done = true
    // Also when not yet persisted: its write may be in flight, and deleting a missing key is harmless.
    this.deleted.add(s.row.id)
    this.postSettled(s.row.id, shownUntil)
    if (shownUntil !== undefined) {
      s.acked = shownUntil
      this.outbox.seal(s)
    } else this.unshow(s, refresh)
    this.resolveFlushWaiters(s.row.id)
  }

  /** A settled row leaves the outbox, and so the screen's overlay. */
  private unshow(s: RowState, refresh: boolean): void {
    this.outbox.remove(s.row.id)
    if (refresh) this.refreshEntity(s.row.entity, s.row.op.path)
  }

  /** Drops from the screen the settled rows whose change is applied now (a snapshot covered it), or all of them. */
  private releaseApplied(all = false): void {
    for (const s of this.outbox.rows.values()) if (s.acked !== undefined && (all || s.acked <= this.seq)) this.settle(s)
  }

  /** Settled ids announced to the other tabs once per turn: an ack of 500 ops is one message, not 500. */
  private settledOut: string[] = []
  private settledSeq = 0
  /**
   * Settled ids, kept for tabs that open later and may load their rows before the lazy delete lands (the
   * answer to a 'hello'), with when their delete was written (0: not yet). Dropped a minute after it
   * was: a soak trial found 20,000 ids kept per store (~1 MB, sent whole to every tab that opened).
   */
  private recentSettled = new Map<string, number>()
  /** The log seq at or below which the changes of `recentSettled` are (the answer to a 'hello'). */
  private recentSettledSeq = 0
  private postSettled(id: string, seq = 0): void {
    if (!this.tabs) return
    this.settledSeq = Math.max(this.settledSeq, seq)
    if (this.settledOut.push(id) > 1) return
    queueMicrotask(() => {
      const ids = this.settledOut
      this.settledOut = []
      // Their changes are in the log up to `seq`: a tab that has not applied that far keeps them on screen until it has.
      const seq = Math.max(this.seq, this.settledSeq)
      this.tabs?.post({ type: 'settled', ids, seq })
      this.settledSeq = 0
      this.recentSettledSeq = Math.max(this.recentSettledSeq, seq)
      for (const id of ids) this.recentSettled.set(id, 0)
      this.forgetSettled()
    })
  }

  /** Drops the settled ids whose delete was written over a minute ago (see `recentSettled`), and any past 20,000. */
  private forgetSettled(): void {
    const before = this.mono() - SETTLED_KEPT_MS
    let over = this.recentSettled.size - 20_000
    for (const [id, at] of this.recentSettled) {
      if (over-- <= 0 && (at === 0 || at > before)) break
      this.recentSettled.delete(id)
    }
  }

  private requestCatchUp(): void {
    // Not on a destroyed store: its transport answers a join at once, and each answer would ask again.
    if (!this.joined || this.joining || this.destroyed) return
    this.joining = true
    void this.runJoin()
  }

  private checkSynced(): void {
    for (const s of this.outbox.rows.values()) if (!s.done && !s.row.dead) return
    if (!this.joined) return
    this.lastSyncedAt = this.now()
    this.invalidate()
    this.resolveFlushWaiters()
  }

  flush(options: { timeout?: number } = {}): Promise<void> {
    if (this.destroyed) return Promise.reject(new ZyncError('DESTROYED', '[zync] flush() on a destroyed store: nothing is sent any more; its ops stay in the outbox'))
    this.captureNow()
    const ids = new Set<string>()
    // Every tab's pending rows: another tab's are settled by its acks ('settled') or by their changes here.
    for (const s of this.outbox.rows.values()) if (!s.done && !s.row.dead) ids.add(s.row.id)
    if (ids.size === 0) return this.isReady ? Promise.resolve() : this.ready
    return new Promise<void>((resolve, reject) => {
      let t: ReturnType<typeof setTimeout> | undefined
      // Someone awaits this: the timer keeps a Node process alive until it fires (it is cleared on success).
      const waiter = { ids, resolve: () => (clearTimeout(t), resolve()), reject: (e: unknown) => (clearTimeout(t), reject(e)) }
      this.flushWaiters.push(waiter)
      if (options.timeout !== undefined) {
        t = setTimeout(() => {
          this.flushWaiters = this.flushWaiters.filter((w) => w !== waiter)
          reject(new ZyncError('TIMEOUT', `[zync] flush timed out with ${waiter.ids.size} ops unacknowledged; check status().error`))
        }, options.timeout)
      }
      this.schedulePersist()
      this.schedulePump(0)
    })
  }

  /** `settled`: only that op was settled, so only it is checked (a full scan per ack is quadratic). */
  private resolveFlushWaiters(settled?: string): void {
    if (this.flushWaiters.length === 0) return
    this.flushWaiters = this.flushWaiters.filter((w) => {
      if (settled !== undefined) w.ids.delete(settled)
      else
        for (const id of w.ids) {
          const s = this.outbox.rows.get(id)
          if (!s || s.done || s.row.dead) w.ids.delete(id)
          else if (s.row.id !== id) w.ids.delete(id)
        }
      if (w.ids.size === 0) {
        w.resolve()
        return false
      }
      return true
    })
  }

  // ---- remote changes ----------------------------------------------------------------------------

  private onChanges(msg: ChangesMessage): void {
    if (msg.doc !== this.doc) return
    const last = msg.changes[msg.changes.length - 1]
    if (last && last.seq > this.serverSeq) this.serverSeq = last.seq
    if (!this.joined || this.joining) {
      // Broadcasts can overtake the join answer (also of a catch-up while joined): keep them and
      // apply them after it; what is still missing then is fetched again (catchUpIfBehind).
      if (this.joining) this.early.push(...msg.changes)
      return
    }
    this.captureNow()
    const first = msg.changes[0]
    if (first && first.seq > this.seq + 1) {
      this.requestCatchUp()
      return
    }
    this.applyChanges(msg.changes)
    this.schedulePersist(true)
  }

  private applyChanges(changes: Change[]): void {
    if (changes.length === 0) return
    const touched = new Map<string, Path>()
    const applied: Change[] = []
    let ackedByLog: string[] | undefined
    // Copy-on-write: a container of `confirmed` is copied the first time a change in it lands and
    // written in place after that, so k changes in one collection copy it once, not k times. Records
    // and their fields reach the store below, after the loop: for them the epoch is this call, the
    // next call copies them again. The root and collections stay in `confirmedEpoch` (see there).
    const fresh = new WeakSet<object>()
    for (const c of changes) {
      if (c.seq <= this.seq) continue
      if (c.seq !== this.seq + 1) {
        this.requestCatchUp()
        break
      }
      this.seq = c.seq
      this.atOp = c.opId
      if (this.tail) {
        if (this.tail.length < TAIL_MAX) this.tail.push(c)
        else this.tail = undefined
      }
      this.vv[c.entity] = vvBump(this.vv[c.entity], c.client, c.n)
      if (c.client === this.clientId && c.n > this.n) this.n = c.n
      this.clock.receive(c.hlc)
      const own = this.outbox.rows.get(c.opId)
      // Our own plain write coming back as written: the screen already shows it (confirmed now holds at
      // its path what the row overlaid there, and nothing else of the entity changed), so the entity
      // need not be recomputed. Merged policies, id-keyed arrays and open conflicts take the full path.
      // (A field op on a record the screen does not show, as after 'server:rewound', is recomputed too.)
      // And the screen must show it: a remote change to the key above it (another store dropping or
      // rewriting the top-level key) recomputed the key without this row, which an echo then left off
      // screen for good (a second adversarial trial; the server held the write).
      const echo = own !== undefined && c.status === 'applied' && this.conflictsById.size === 0 && isEcho(c, own.row.op) && (c.path.length < 3 || isPlainObject(getAt(this.baseline, entityPath(c.path)))) && shows(this.baseline, c.path, own.row.op)
      if (c.status === 'applied') {
        this.confirmed = setAtCow(this.confirmed, c.path, c.value, c.kind === 'delete', this.confirmedEpoch, fresh)
        if (!echo) touched.set(c.entity, entityPath(c.path))
        // Our own write applied after a conflict, at its field or over its record (made before the conflict
        // came back), settles it; someone else's leaves it open against that write (stillOpen).
        for (const open of this.conflictsUnder(c.path)) {
          if ((open.seq ?? 0) < c.seq && (c.client === this.clientId || !this.stillOpen(open, c))) this.dropConflict(open.id, c.client === this.clientId ? 'local' : 'remote')
        }
      }
      if (own) {
        // Our row, whatever client id wrote it (a row adopted after a reload or from a closed tab,
        // or another tab's row we mirror: the conflict belongs to this device's inbox).
        // The log is its acknowledgement, reported now. Not in flight, no answer is coming for it (lost
        // with a connection, or sent by a page since closed); in flight (sent again after a lost answer,
        // its first send applied), a flush() waiting for it would return before the report: its answer
        // then leaves it out.
        if (!this.answering && !own.done && own.row.owner === this.clientId) {
          ;(ackedByLog ??= []).push(c.opId)
          own.reported = true
        }
        if (c.status === 'conflict') this.raiseConflict(c, own.row.owner === this.clientId, own)
        this.settle(own, false)
        if (!echo) touched.set(c.entity, entityPath(c.path))
      } else if (c.status === 'conflict' && c.client === this.clientId) {
        this.raiseConflict(c, true)
        touched.set(c.entity, entityPath(c.path))
      }
      applied.push(c)
    }
    if (applied.length === 0) return
    this.metaDirty = true
    this.refreshEntities(touched, 'remote')
    this.events.emit('change:remote', { changes: applied })
    if (ackedByLog) this.events.emit('sync:acked', { ids: ackedByLog, seq: this.seq })
    this.invalidate()
  }

  /** `{ idKey }` when both sides are arrays and one of them is id-keyed under `conflicts.idKey`: they merge element by element. */
  private idKeyOf(local: unknown, remote: unknown): { idKey: string } | undefined {
    const idKey = this.o.policies.idKey
    return idKey && Array.isArray(local) && Array.isArray(remote) && (isIdArray(local, idKey) || isIdArray(remote, idKey)) ? { idKey } : undefined
  }

  /** The confirmed value at `path`, handed out: the store or the app may keep it. */
  private confirmedAt(path: Path): unknown {
    // The root or a collection leaves: the next remote change copies it again (see confirmedEpoch).
    if (path.length <= 1) this.confirmedEpoch = new WeakSet()
    return getAt(this.confirmed, path)
  }

  /**
   * After the server lost history (see 'server:rewound'), this tab's waiting ops claim to have seen ops it
   * no longer has, which it would refuse (UNKNOWN_HISTORY): each now claims only what the server still has
   * of its entity, so it applies as concurrent with anything newer there.
   */
  private rebaseOwnRows(): void {
    for (const s of this.outbox.rows.values()) {
      if (s.done || s.inFlight || s.row.owner !== this.clientId) continue
      s.row.op = { ...s.row.op, base: vvMeet(s.row.op.base, this.knownVector(s.row.entity, s.row.op.path)) }
      s.dirty = true
    }
    this.outbox.changed()
  }

  /** Computes the visible value of an entity: confirmed, then open conflicts, then pending rows. */
  private visiblePatch(entity: string, path: Path): { path: Path; value?: unknown; remove?: boolean } | undefined {
    // A record keyed into what the document holds as an array (a write made for another shape of the
    // state, which the server refuses: SHAPE_MISMATCH): the document's array stays on screen.
    // (Read in place: confirmedAt() of a collection would hand it out, and the next change would copy it.)
    if (arrayAlong(this.confirmed, path) > 0) return undefined
    let value = this.confirmedAt(path)
    for (const c of this.conflictsById.values()) {
      if (c.entity === entity) value = overlay(value, path, c.path, { op: c.local === undefined ? 'remove' : 'replace', value: c.local } as Op)
    }
    for (const s of this.outbox.entityRows(entity)) {
      // An increment the confirmed state already holds (the server's vector names its write) is not added
      // to it again: after a reload whose acknowledgements had not reached IndexedDB, the join's snapshot
      // held the rows sent again, and counters showed each increment twice until the answers came. (Other
      // ops lay the same value over it again, which changes nothing; a refused one stays shown.)
      if (s.row.op.delta !== undefined && !s.row.dead && this.inLog(s.row)) continue
      value = overlay(value, path, s.row.op.path, s.row.op)
    }
    const current = getAt(this.baseline, path)
    if (current === value || deepEqual(current, value)) return undefined
    return value === undefined ? { path, remove: true } : { path, value }
  }

  private refreshEntity(entity: string, opPath: Path, source?: ShownSource): void {
    const p = this.visiblePatch(entity, entityPath(opPath))
    if (p) this.applyToHost([p], source)
  }

  /** Recomputes these entities (entity → its path) and hands the ones that changed to the store at once. */
  private refreshEntities(touched: Map<string, Path>, source?: ShownSource): void {
    const patches: Array<{ path: Path; value?: unknown; remove?: boolean }> = []
    for (const [entity, path] of touched) {
      const p = this.visiblePatch(entity, path)
      if (p) patches.push(p)
    }
    this.applyToHost(patches, source)
  }

  /** Recompute every entity (after hydration or a snapshot). */
  private refreshAll(previous: Record<string, unknown> | undefined, source: ShownSource): void {
    const patches: Array<{ path: Path; value?: unknown; remove?: boolean }> = []
    const seen = new Set<string>()
    const visit = (path: Path) => {
      const key = pathKey(path)
      if (seen.has(key)) return
      seen.add(key)
      const p = this.visiblePatch(entityOf(path), path)
      if (p) patches.push(p)
    }
    // `previous`: the confirmed state a snapshot replaced; what it had and the snapshot lacks is gone.
    for (const state of previous ? [this.confirmed, previous] : [this.confirmed]) {
      for (const k of Object.keys(state)) {
        const v = state[k]
        if (isPlainObject(v)) for (const r of Object.keys(v)) visit([k, r])
        else visit([k])
      }
    }
    for (const s of this.outbox.ordered()) if (!s.done || s.acked !== undefined) visit(entityPath(s.row.op.path))
    for (const c of this.conflictsById.values()) visit(entityPath(c.path))
    // Entities the server has history of but no value for were deleted: a record the store's initial
    // state brings back (a default someone deleted) goes again, after a reload as on a new device.
    for (const entity of Object.keys(this.vv)) {
      const path = recordPathOf(entity)
      if (path) visit(path)
    }
    this.applyToHost(patches, source)
  }

  /**
   * A collection the server no longer has as one (dropped, or now a string, while the screen still
   * showed records in it: a snapshot, or a pending record of ours the server then superseded): removing
   * its records one by one left `{}` on screen where every other replica has nothing. Once none of its
   * records stays, the key itself takes its visible value. A collection of the initial state that had
   * no records to remove is left as it is.
   */
  private dropEmptied(patches: Array<{ path: Path; value?: unknown; remove?: boolean }>): void {
    // The records removed, per key: one pass over the patches, then one over each key's records.
    let emptied: Map<string, Set<string>> | undefined
    for (const p of patches) {
      if (!p.remove || p.path.length !== 2) continue
      const k = p.path[0] as string
      if (isPlainObject(this.confirmed[k])) continue
      emptied ??= new Map()
      let gone = emptied.get(k)
      if (!gone) emptied.set(k, (gone = new Set()))
      gone.add(String(p.path[1]))
    }
    if (!emptied) return
    for (const [k, gone] of emptied) {
      const shown = getAt(this.baseline, [k])
      if (!isPlainObject(shown) || !Object.keys(shown).every((r) => gone.has(r))) continue
      // A key the server has no history of (a database restored from before it was written) was not
      // dropped: left as `{}`, as a new device shows its initial state (it vanished, and app code reading
      // Object.keys(state.items) threw; an operator trial).
      if (!this.knows(k)) continue
      const p = this.visiblePatch(entityOf([k]), [k])
      if (p) patches.push(p)
    }
  }

  /** Whether the server's log holds the row's write: the entity's vector names it (or a later write of its client). */
  private inLog(row: OutboxRow): boolean {
    return vvGet(this.vv[row.entity], row.op.client) >= row.op.n
  }

  /** Whether the server has history of top-level key `k` or of anything under it. */
  private knows(k: string): boolean {
    if (this.vv[k]) return true
    for (const e in this.vv) if (e.startsWith(k + '/')) return true
    return false
  }

  /** `source`: why (`change:shown`); any write not said otherwise comes from this device's outbox (in this tab or another). */
  private applyToHost(patches: Array<{ path: Path; value?: unknown; remove?: boolean }>, source: ShownSource = 'outbox'): void {
    if (patches.length === 0) return
    this.captureNow()
    // The app set a state that is not an object (refused by captureNow): there is nothing to patch.
    if (this.refusedState !== undefined) return
    this.dropEmptied(patches)
    this.o.host.apply(patches)
    this.baseline = this.o.host.read()
    if (this.events.has('change:shown')) {
      const shown: ShownPatch[] = patches.map((p) => (p.remove ? { entity: entityOf(p.path), path: p.path, kind: 'delete' } : { entity: entityOf(p.path), path: p.path, kind: 'set', value: p.value }))
      this.events.emit('change:shown', { source, patches: shown })
    }
  }

  // ---- conflicts -----------------------------------------------------------------------------

  /** Open conflicts at `path` or below it (a record write covers its fields). */
  private conflictsUnder(path: Path): StoredConflict[] {
    if (this.conflictsById.size === 0) return []
    const out: StoredConflict[] = []
    for (const c of this.conflictsById.values()) if (isUnder(c.path, path)) out.push(c)
    return out
  }

  /**
   * Puts the server's 'conflict' answer to one of our ops in the inbox (or, for an app function, runs it
   * when `owned`: the tab that owns the row writes the resolution, mirrors do not). Raised once: known
   * and settled conflicts are skipped, and so is a conflict our own later write of the same field is
   * about to settle anyway (that write applies or conflicts in its turn). It replaces older open
   * conflicts of the same field, whose local value it carries forward.
   */
  private raiseConflict(c: Change, owned: boolean, row?: RowState): void {
    if (this.conflictsById.has(c.opId) || this.resolvedIds.has(c.opId)) return
    // Written later than the op: a row of the same sender with a higher order (rows of one field only
    // coexist when the older one is sealed, so order is content order), or without the row, a higher n.
    const key = pathKey(c.path)
    const sender = row ? row.row.owner : this.clientId
    for (const s of this.outbox.entityRows(c.entity)) {
      if (s === row || s.row.dead || s.row.owner !== sender || pathKey(s.row.op.path) !== key) continue
      if (row ? s.row.order > row.row.order : s.row.op.client === c.client && s.row.op.n > c.n) {
        this.markResolved(c.opId)
        return
      }
    }
    // A conflict of a later op of ours on this field is already open (this one arrived late): it wins.
    const open = this.conflictsUnder(c.path)
    if (open.some((o) => (o.seq ?? 0) > c.seq)) {
      this.markResolved(c.opId)
      return
    }
    const localTime = decodeHlc(c.hlc)?.wall ?? c.at
    const conflict: StoredConflict = {
      doc: this.doc,
      id: c.opId,
      opId: c.opId,
      path: c.path,
      entity: c.entity,
      field: fieldOf(c.path),
      base: c.prev,
      local: c.proposed,
      remote: c.value,
      localMeta: { clientId: c.client, ...(c.user ? { userId: c.user } : {}), time: localTime },
      remoteMeta: {
        clientId: c.winner?.client ?? 'server',
        ...(c.winner?.user ? { userId: c.winner.user } : {}),
        time: c.winner ? (decodeHlc(c.winner.hlc)?.wall ?? c.winner.at) : c.at,
      },
      policy: c.policy,
      ...(this.idKeyOf(c.proposed, c.value) ?? {}),
      createdAt: this.now(),
      seq: c.seq,
    }
    const policy = this.o.policies.policyFor(c.path)
    if (typeof policy === 'function') {
      if (!owned) return
      // App rule: settle at once with a write that is causally after both sides.
      let value: unknown
      let failed: string | undefined
      try {
        value = (policy as ConflictResolver)({ path: c.path, base: conflict.base, local: conflict.local, remote: conflict.remote, localMeta: conflict.localMeta, remoteMeta: conflict.remoteMeta })
        if (typeof (value as PromiseLike<unknown> | undefined)?.then === 'function') failed = 'returned a promise'
        // Removing the field is a choice only where one side removed it (as for resolve()); else a missing return.
        else if (value === undefined) failed = conflict.local === undefined || conflict.remote === undefined ? undefined : 'returned undefined'
        else {
          assertSafeValue(value)
          const shapes = shapeMismatch(conflict, value)
          if (shapes) failed = `returned a value of type ${shapeOf(value)}; the sides are ${shapes}`
        }
      } catch (err) {
        failed = `threw: ${err instanceof Error ? err.message : String(err)}`
      }
      if (failed === undefined) {
        this.markResolved(conflict.id)
        this.writeResolution(conflict, value)
        this.events.emit('sync:resolved', { conflict: publicConflict(conflict), resolution: { value }, value })
        return
      }
      // Neither side is thrown away on the app's bug: the conflict waits in the inbox for a person (resolve()).
      const error = new ZyncError('INVALID_RESOLUTION', `[zync] conflict resolver for ${pathToString(c.path)} ${failed}; left to resolve()`, { opId: c.opId })
      this.o.onWarning?.(error.message)
      this.events.emit('sync:failed', { error, ids: [c.opId], willRetry: false })
    }
    for (const older of open) this.dropConflict(older.id, 'local')
    this.conflictsById.set(conflict.id, conflict)
    this.putConflicts.set(conflict.id, conflict)
    this.conflictsCache = undefined
    this.tabs?.post({ type: 'conflicts', conflicts: [conflict] })
    this.events.emit('sync:conflict', { conflict: publicConflict(conflict) })
  }

  /**
   * A local write at or inside the path of an open conflict: it becomes the conflict's `local` (what
   * the screen shows there, and what resolve('local') writes) instead of an op of its own, so nothing
   * settles the conflict but a person (the author typing on in a 'manual' field overwrote the other
   * side unasked). A write over it (its record replaced or removed) is not held: it settles it.
   */
  private holdInConflict(p: Patch): boolean {
    if (this.conflictsById.size === 0) return false
    for (const c of this.conflictsById.values()) {
      if (!isUnder(p.path, c.path)) continue
      const rel = p.path.slice(c.path.length)
      const remove = p.op === 'remove'
      const local = rel.length === 0 ? (remove ? undefined : p.value) : setAt(isPlainObject(c.local) ? c.local : {}, rel, p.value, remove)
      const next: StoredConflict = { ...c, local, localMeta: { ...c.localMeta, time: this.now() } }
      this.conflictsById.set(c.id, next)
      this.putConflicts.set(c.id, next)
      this.conflictsCache = undefined
      this.tabs?.post({ type: 'conflicts', conflicts: [next] })
      return true
    }
    return false
  }

  private markResolved(id: string): void {
    this.resolvedIds.add(id)
    // A Set iterates in insertion order: the first is the oldest.
    while (this.resolvedIds.size > MAX_RESOLVED) this.resolvedIds.delete(this.resolvedIds.values().next().value!)
    this.resolvedChanged = true
    this.metaDirty = true
  }

  /**
   * Someone else's write applied after an open conflict, at its field or over its record: made without
   * seeing the author's proposal (nobody else has it: it was not applied), it decides nothing the
   * conflict is about. The conflict stays open against the new value (resolve() then keeps or drops the
   * author's side against it), unless that value is the author's own: then there is nothing to decide.
   * (It was dropped as moot, and with it the author's text: two people typing in a 'manual' title at
   * once lost the second one's keys, an app trial; and an object's keys only the author had changed.)
   */
  private stillOpen(open: StoredConflict, c: Change): boolean {
    const remote = this.confirmedAt(open.path)
    if (deepEqual(open.local, remote)) return false
    const next: StoredConflict = { ...open, remote, remoteMeta: { clientId: c.client, ...(c.user ? { userId: c.user } : {}), time: decodeHlc(c.hlc)?.wall ?? c.at }, seq: c.seq }
    this.conflictsById.set(open.id, next)
    this.putConflicts.set(open.id, next)
    this.conflictsCache = undefined
    this.invalidate()
    this.schedulePersist()
    return true
  }

  private dropConflict(id: string, resolution: 'local' | 'remote'): void {
    const c = this.conflictsById.get(id)
    if (!c) return
    this.conflictsById.delete(id)
    this.markResolved(id)
    this.putConflicts.delete(id)
    this.deleteConflicts.add(id)
    this.conflictsCache = undefined
    this.tabs?.post({ type: 'resolved', ids: [id] })
    this.events.emit('sync:resolved', { conflict: publicConflict(c), resolution, value: resolution === 'local' ? c.local : c.remote })
    this.invalidate()
    this.schedulePersist()
  }

  conflicts(): Conflict[] {
    // Ties (a batch raises its conflicts in one millisecond) in log order: the same order after a reload.
    if (!this.conflictsCache) this.conflictsCache = [...this.conflictsById.values()].sort((a, b) => a.createdAt - b.createdAt || (a.seq ?? 0) - (b.seq ?? 0) || (a.id < b.id ? -1 : 1)).map(publicConflict)
    return this.conflictsCache
  }

  async resolve(id: string, resolution: Resolution): Promise<void> {
    const c = this.conflictsById.get(id)
    if (!c) {
      if (this.resolvedIds.has(id)) throw new ZyncError('CONFLICT_RESOLVED', `[zync] conflict ${id} is already resolved`)
      throw new ZyncError('CONFLICT_NOT_FOUND', `[zync] no conflict with id ${id} on this device (a conflict belongs to the device whose write raced); read the open ones with store.sync.conflicts()`)
    }
    let value: unknown
    if (resolution === 'local' || resolution === 'remote') {
      const remote = this.confirmedAt(c.path)
      value = resolution === 'local' ? c.local : remote
      // Objects clash only in the keys both sides changed: the keys only one side changed stay either way.
      // Id-keyed arrays likewise by element: the other side's one-sided inserts, edits and deletes stay.
      const winner = resolution === 'local' ? 'mine' : 'theirs'
      const byId = this.idKeyOf(c.local, remote)
      if (isPlainObject(c.base) && isPlainObject(c.local) && isPlainObject(remote)) value = mergeObject(c.base, c.local, remote, winner).value
      else if (byId) value = mergeIdArrays(c.base, c.local as unknown[], remote, byId.idKey, winner)
    } else if (resolution && typeof resolution === 'object' && 'value' in resolution) {
      value = resolution.value
      try {
        if (value !== undefined) assertSafeValue(value)
      } catch (err) {
        throw new ZyncError('INVALID_RESOLUTION', `[zync] resolution value for ${pathToString(c.path)} is not syncable: ${(err as Error).message}`)
      }
      const shapes = shapeMismatch(c, value)
      if (shapes) throw new ZyncError('INVALID_RESOLUTION', `[zync] resolution for ${pathToString(c.path)} must be a ${shapes}, got ${shapeOf(value)}`)
    } else {
      throw new ZyncError('INVALID_RESOLUTION', "[zync] resolve(id, resolution): resolution must be 'local', 'remote' or { value }")
    }
    this.conflictsById.delete(id)
    this.markResolved(id)
    this.putConflicts.delete(id)
    this.deleteConflicts.add(id)
    this.conflictsCache = undefined
    this.writeResolution(c, value)
    this.tabs?.post({ type: 'resolved', ids: [id] })
    this.events.emit('sync:resolved', { conflict: publicConflict(c), resolution, value })
    this.invalidate()
  }

  /** A resolution is an ordinary op based on everything we have seen, so it is causally after both sides. */
  private writeResolution(c: StoredConflict, value: unknown): void {
    this.captureNow()
    // An id-keyed array merges as a diff from what the op saw: diff from the server's value, so the
    // result is exactly `value`. Other values are written whole; `prev` is then what was on screen.
    const idKey = this.o.policies.idKey
    const remote = this.confirmedAt(c.path)
    const prev = Array.isArray(value) && (isIdArray(value, idKey) || isIdArray(remote, idKey)) ? remote : c.local
    const patch: Patch = value === undefined ? { op: 'remove', path: c.path, prev } : { op: 'replace', path: c.path, value, prev, ...(c.idKey ? { idKey: c.idKey } : {}) }
    this.enqueuePatches([patch], 'high', c.id)
    this.refreshEntity(c.entity, c.path, 'resolved')
  }

  // ---- dead letters ------------------------------------------------------------------------------

  deadLetters(): DeadLetter[] {
    if (!this.deadCache) this.deadCache = this.outbox.ordered().filter((s) => s.row.dead && !s.done).map((s) => this.toDead(s))
    return this.deadCache
  }

  async retry(id: string): Promise<void> {
    const s = this.outbox.rows.get(id)
    if (!s || !s.row.dead) throw new ZyncError('DEAD_LETTER_NOT_FOUND', `[zync] no dead letter with id ${id}; see store.sync.deadLetters()`)
    s.row.dead = false
    // The app chose to send it as this store's user (one another user of the device left).
    if (this.o.user) s.row.by = this.o.user.id
    // And from this tab: a dead letter another tab (or a delivery engine) refused is sent here now,
    // not left to a tab that no longer tries it (the server dedupes op ids, should both send it).
    s.row.owner = this.clientId
    // Stamped anew: one refused as stamped too far in the future (CLOCK_SKEW) goes through once the clock is right.
    s.row.op = { ...s.row.op, hlc: this.clock.tick() }
    const { client, n } = s.row.op
    if (s.row.lastError?.code === 'CLIENT_MISMATCH' && client !== this.clientId) {
      // Another user's edit sent as this user's: under this store's client id, since the server ties a
      // client id to the first user it wrote as (under its own it is refused again). Its op id stays,
      // so the server still dedupes it should the first user's send have landed after all.
      this.n += 1
      s.row.op = { ...s.row.op, client: this.clientId, n: this.n }
      delete s.row.n0
      this.outbox.reissue(s, this.clientId)
      // Last in the outbox, as its counter (and its new stamp) are: rows go out in order, so a row of this
      // client id with a lower counter (an edit made before the retry) reaches the server first. Sent
      // before it, the higher counter would make anyone who saw it count the lower one as seen.
      s.row.order = ++this.order
      // A base naming it under its old client id would claim a write the server never gets so.
      for (const o of this.outbox.entityRowsUnordered(s.row.entity)) if (o !== s && vvGet(o.row.op.base, client) >= n) this.lowerBase(o, client)
    }
    s.row.attempts = 0
    s.row.nextAt = 0
    s.dirty = true
    this.outbox.changed()
    this.refreshEntity(s.row.entity, s.row.op.path)
    this.invalidate()
    this.schedulePersist()
  }

  async discard(id: string): Promise<void> {
    const s = this.outbox.rows.get(id)
    if (!s || !s.row.dead) throw new ZyncError('DEAD_LETTER_NOT_FOUND', `[zync] no dead letter with id ${id}; see store.sync.deadLetters()`)
    this.settle(s)
    this.invalidate()
    this.schedulePersist()
  }

  // ---- presence ---------------------------------------------------------------------------------

  private onPresence(msg: PresenceMessage): void {
    if (msg.doc !== this.doc) return
    this.presenceTracker.receive(msg)
  }

  /** Codes of refused presence updates warned about (once each). */
  private presenceRefusals: Set<string> | undefined

  private onPresenceRefused(doc: string | undefined, error: ZyncError): void {
    // NOT_JOINED: an update that crossed a leave or a reconnection; the next join sends it again.
    if ((doc !== undefined && doc !== this.doc) || error.code === 'NOT_JOINED') return
    if (!(this.presenceRefusals ??= new Set()).has(error.code)) {
      this.presenceRefusals.add(error.code)
      this.o.onWarning?.(`[zync] the server refused this store's presence in "${this.doc}": ${error.message}`)
    }
    this.events.emit('presence:error', { error })
  }

  presence(): Presence[] {
    return this.presenceTracker.list()
  }

  /** The server's presence size limit (from the join answer; 4096 bytes until then, the server's default). */
  private presenceBytes = 4096

  setPresence(state: Record<string, unknown> | null): void {
    // Checked here, where the app can see the error: the send happens later (throttled, heartbeats), and
    // a value that cannot be sent there threw from a timer (a BigInt crashed Node) or was dropped by the
    // server in silence (too large, not JSON) while this client showed it as its own.
    if (state !== null) {
      if (!isPlainObject(state)) throw new ZyncError('BAD_REQUEST', `[zync] setPresence() takes a plain object or null (got ${Array.isArray(state) ? 'an array' : typeof state})`)
      let json: string
      try {
        // A cycle or a BigInt: JSON cannot hold it (said as such, not as "nested too deep").
        json = JSON.stringify(state)
      } catch (err) {
        throw new ZyncError('BAD_REQUEST', `[zync] setPresence(): the state is not JSON (${(err as Error).message.split('\n')[0]}); presence is plain JSON`, { cause: err })
      }
      try {
        assertSafeValue(state)
      } catch (err) {
        throw reworded(err, 'setPresence()', '; presence is plain JSON')
      }
      const bytes = new TextEncoder().encode(json).length
      if (bytes > this.presenceBytes) throw new ZyncError('TOO_LARGE', `[zync] setPresence(): the state is ${bytes} bytes of JSON, over the server's ${this.presenceBytes}; keep presence small (a cursor, a selection) and put content in the store`)
    }
    this.presenceTracker.set(state)
  }

  subscribePresence(fn: (peers: Presence[]) => void): () => void {
    return this.presenceTracker.watch(fn)
  }

  // ---- other tabs ------------------------------------------------------------------------------

  /** Another tab's edits are shown as 'tab' (showTabEdits); what it settled, refused or raised a conflict over as 'outbox'. */
  private onTabMessage(m: TabMessage): void {
    if (this.destroyed) return
    if (m.type === 'rows') {
      const touched = new Map<string, Path>()
      const patches: SyncEvents['change:tab']['patches'] = []
      for (const row of m.rows) {
        if (row.owner === this.clientId) continue
        // This tab's next rows come after every row it has seen: each tab counted its own order, so an
        // edit made after seeing another tab's ranked before it, and that tab kept showing its own.
        if (row.order > this.order) this.order = row.order
        // Already in the log (we saw its change): settled, whatever order the messages came in.
        if (this.inLog(row)) continue
        const s = this.outbox.rows.get(row.id)
        // New to this tab, or written again there (a coalesced row keeps its id): an edit to report.
        const edited = !row.dead && (!s || s.row.op.op !== row.op.op || !deepEqual(s.row.op.value, row.op.value))
        if (s) {
          if (s.row.owner !== this.clientId) s.row = row
        } else this.outbox.add({ row, persisted: true, inFlight: false, dirty: false, done: false })
        touched.set(row.entity, entityPath(row.op.path))
        if (edited) patches.push(tabPatch(row))
      }
      this.outbox.changed()
      this.showTabEdits(touched, patches)
    } else if (m.type === 'conflicts') {
      // The raising tab stores them; here they join the inbox and the screen.
      for (const c of m.conflicts) {
        if (c.doc !== this.doc || this.resolvedIds.has(c.id)) continue
        if (this.conflictsById.has(c.id)) {
          // Its author's side changed in that tab (a write held in it).
          this.conflictsById.set(c.id, c)
          this.conflictsCache = undefined
          this.refreshEntity(c.entity, c.path)
          continue
        }
        const open = this.conflictsUnder(c.path)
        if (open.some((o) => (o.seq ?? 0) > (c.seq ?? 0))) continue
        for (const older of open) this.dropConflict(older.id, 'local')
        this.conflictsById.set(c.id, c)
        this.conflictsCache = undefined
        this.refreshEntity(c.entity, c.path)
        this.events.emit('sync:conflict', { conflict: publicConflict(c) })
      }
      this.invalidate()
    } else if (m.type === 'gone') {
      if (this.isReady) void this.heartbeat()
      else this.adoptWhenReady = true
    } else if (m.type === 'hello') {
      if (this.recentSettled.size > 0) this.tabs?.post({ type: 'settled', ids: [...this.recentSettled.keys()], seq: Math.max(this.seq, this.recentSettledSeq) })
    } else if (m.type === 'settled') {
      const touched = new Map<string, Path>()
      let shownOnly = false
      let ours = false
      for (const id of m.ids) {
        const s = this.outbox.rows.get(id)
        // Our own row too (not one we are sending: its answer settles it): another tab adopted it while
        // we were frozen, and its op is in the log now.
        if (s && !s.done && !(s.inFlight && s.row.owner === this.clientId)) {
          // Ours (adopted after the other tab's answer, before its message came): nobody else will delete
          // it from IndexedDB, and every page loaded later showed it pending (a six-tab trial, 74 rows).
          if (s.row.owner === this.clientId) {
            this.deleted.add(id)
            ours = true
          }
          // Not applied here yet (this tab is behind the other): settled, but kept on screen until it is.
          if (m.seq !== undefined && m.seq > this.seq) {
            s.done = true
            s.acked = m.seq
            this.outbox.seal(s)
            this.resolveFlushWaiters(id)
            shownOnly = true
            continue
          }
          s.done = true
          this.outbox.remove(id)
          touched.set(s.row.entity, entityPath(s.row.op.path))
          this.resolveFlushWaiters(id)
        }
      }
      if (ours) this.schedulePersist(true)
      if (touched.size > 0 || shownOnly) this.checkSynced()
      // The row no longer overlays its entity: show what is confirmed (and still pending) there now.
      this.captureNow()
      this.refreshEntities(touched)
      this.invalidate()
    } else if (m.type === 'resolved') {
      for (const id of m.ids) {
        const c = this.conflictsById.get(id)
        if (!c) continue
        this.conflictsById.delete(id)
        this.markResolved(id)
        // We may have raised it too (a mirrored row): never write it back after the other tab deleted it.
        this.putConflicts.delete(id)
        this.deleteConflicts.add(id)
        this.conflictsCache = undefined
        this.refreshEntity(c.entity, c.path, 'resolved')
        this.events.emit('sync:resolved', { conflict: publicConflict(c), resolution: 'remote', value: this.confirmedAt(c.path) })
      }
      this.invalidate()
      this.schedulePersist()
    }
  }

  // ---- status ----------------------------------------------------------------------------------

  private invalidate(): void {
    this.statusCache = undefined
    this.pendingCache = undefined
    this.deadCache = undefined
    if (this.statusListeners.size === 0) return
    const s = this.status()
    for (const fn of [...this.statusListeners]) {
      try {
        fn(s)
      } catch (err) {
        queueMicrotask(() => {
          throw err
        })
      }
    }
  }

  status(): SyncStatus {
    if (this.statusCache) return this.statusCache
    let pending = 0
    let unpersisted = 0
    let attempts = 0
    let oldest: number | undefined
    let dead = 0
    const lanes: LaneCounts = { ...EMPTY_LANES }
    for (const s of this.outbox.rows.values()) {
      if (s.done) continue
      if (s.row.dead) {
        dead++
        continue
      }
      // Every tab's rows (this tab mirrors the others'): the device's pending edits, the same in each tab.
      if (s.persisted) {
        pending++
        lanes[s.row.lane]++
      } else unpersisted++
      if (s.row.owner === this.clientId) attempts = Math.max(attempts, s.row.attempts)
      if (oldest === undefined || s.row.createdAt < oldest) oldest = s.row.createdAt
    }
    const now = this.now()
    const next = this.outbox.nextRetryAt(this.clientId, now)
    const st: SyncStatus = {
      connection: this.connection,
      pending,
      unpersisted,
      lanes,
      conflicts: this.conflictsById.size,
      deadLetters: dead,
      syncing: this.inFlight > 0,
      ready: this.isReady,
      readOnly: this.readOnly,
      attempts,
      seq: this.seq,
    }
    if (oldest !== undefined) st.oldestPendingAge = now - oldest
    if (next !== undefined) st.nextRetryAt = next
    if (this.lastSyncedAt !== undefined) st.lastSyncedAt = this.lastSyncedAt
    // A failed local write first: edits kept in memory only are at stake, whatever the connection says
    // (a trial with the quota exhausted saw only the connection's error while the server was away).
    const error = this.localError ?? this.lastError
    if (error) st.error = error
    else if (this.refused.size > 0) st.error = this.refused.values().next().value!.error
    // The same object while nothing in it changed (but the pending age, which moves with the clock):
    // every outbox and presence event invalidates, and hooks re-render on a new object.
    const last = this.lastStatus
    this.statusCache = last && sameStatus(last, st) ? last : st
    this.lastStatus = this.statusCache
    return this.statusCache
  }

  private lastStatus: SyncStatus | undefined

  subscribe(fn: (s: SyncStatus) => void): () => void {
    this.statusListeners.add(fn)
    return () => {
      this.statusListeners.delete(fn)
    }
  }

  pendingOperations(): PendingOperation[] {
    if (!this.pendingCache) {
      const list = this.outbox.ordered().filter((s) => !s.done && !s.row.dead).map((s) => this.pendingOf(s))
      // The same array while it holds the same entries (each is memoized per row, see pendingOf).
      const last = this.lastPending
      this.pendingCache = this.lastPending = last && last.length === list.length && list.every((p, i) => p === last[i]) ? last : list
    }
    return this.pendingCache
  }

  private lastPending: PendingOperation[] | undefined

  /**
   * A row's PendingOperation, the same object while the row is unchanged: the list is rebuilt on every
   * status change, and with thousands of rows waiting, re-creating each entry was most of its cost.
   */
  private pendingMemo = new WeakMap<RowState, { row: OutboxRow; op: Op; lane: Priority; persisted: boolean; inFlight: boolean; attempts: number; nextAt: number; lastError: OutboxRow['lastError']; p: PendingOperation }>()
  private pendingOf(s: RowState): PendingOperation {
    const { row } = s
    const m = this.pendingMemo.get(s)
    if (m && m.row === row && m.op === row.op && m.lane === row.lane && m.persisted === s.persisted && m.inFlight === s.inFlight && m.attempts === row.attempts && m.nextAt === row.nextAt && m.lastError === row.lastError) return m.p
    const p = this.toPending(s)
    this.pendingMemo.set(s, { row, op: row.op, lane: row.lane, persisted: s.persisted, inFlight: s.inFlight, attempts: row.attempts, nextAt: row.nextAt, lastError: row.lastError, p })
    return p
  }

  isDirty(): boolean {
    // Dead letters too: they stay on screen until retry() or discard(), and never sync meanwhile.
    for (const s of this.outbox.rows.values()) if (!s.done) return true
    // A change made since the last capture (that runs in a microtask) is read here, not captured: React
    // calls this while rendering, where capturing would notify other components in the middle of it.
    if (!this.captureScheduled || this.destroyed) return false
    const cur = this.o.host.read() as unknown
    return cur !== this.baseline && isPlainObject(cur) && diff(this.baseline, cur).length > 0
  }

  async history(query: { path?: Path | string; limit?: number } = {}) {
    const path = typeof query.path === 'string' ? query.path.split('.') : query.path
    const res = await this.o.transport.history({ doc: this.doc, ...(path ? { path } : {}), ...(query.limit !== undefined ? { limit: query.limit } : {}) })
    if (!res.ok) throw fromWireError(res)
    return res.entries
  }

  private toPending(s: RowState): PendingOperation {
    const { row } = s
    const p: PendingOperation = {
      id: row.id,
      path: row.op.path,
      op: row.op.op,
      priority: row.lane,
      createdAt: row.createdAt,
      attempts: row.attempts,
      persisted: s.persisted,
      inFlight: s.inFlight,
    }
    if (row.op.value !== undefined) p.value = row.op.value
    if (row.op.delta !== undefined) p.delta = row.op.delta
    if (row.nextAt > 0) p.nextAttemptAt = row.nextAt
    if (row.lastError) p.lastError = { ...row.lastError }
    return p
  }

  private toDead(s: RowState): DeadLetter {
    return { ...this.toPending(s), error: s.row.lastError ?? { code: 'INTERNAL', message: 'unknown' } }
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return
    this.captureNow()
    await this.ready.catch(() => {})
    await this.persisting
    await this.persist(true, true)
    this.destroyed = true
    this.joined = false
    if (this.pumpTimer) clearTimeout(this.pumpTimer)
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer)
    this.offReset?.()
    if (this.persistRetryTimer) clearTimeout(this.persistRetryTimer)
    if (this.lazyPersistTimer) clearTimeout(this.lazyPersistTimer)
    this.cleanupNetwork?.()
    // Nobody is shown as here any more (hooks still mounted on this store read an empty list).
    this.presenceTracker.set(null)
    this.presenceTracker.clearPeers()
    this.presenceTracker.destroy()
    this.o.transport.destroy()
    for (const w of this.flushWaiters) w.reject(new ZyncError('DESTROYED', '[zync] the store was destroyed before its ops were acknowledged; they stay in the outbox'))
    this.flushWaiters = []
    try {
      await this.o.storage.release(this.doc, this.clientId)
      // Its pending rows are another store's to send now. Under React StrictMode the first store (made in
      // an effect, destroyed at once) had adopted a reload's offline edits; the second waited for its
      // next heartbeat (3.3 s) to take them over.
      this.tabs?.post({ type: 'gone' })
    } catch {
      // The heartbeat times out instead.
    }
    this.tabs?.close()
    this.o.storage.close()
    this.connection = 'offline'
    this.invalidate()
    this.statusListeners.clear()
    this.events.clear()
  }
}

/** A check's error (its code kept) said in the caller's words: `[zync] <context>: <what failed><tail>`. */
function reworded(err: unknown, context: string, tail = ''): ZyncError {
  const e = err instanceof ZyncError ? err : new ZyncError('BAD_REQUEST', String(err))
  return new ZyncError(e.code, `[zync] ${context}: ${e.message.replace('[zync] ', '')}${tail}`, { cause: err })
}

function entityPath(path: Path): Path {
  return path.length >= 2 ? path.slice(0, 2) : path.slice(0, 1)
}

/** Applies a pending op (or conflict overlay) at `opPath` to the value found at `basePath`. */
function overlay(value: unknown, basePath: Path, opPath: Path, op: Op): unknown {
  if (opPath.length < basePath.length) {
    // The op replaces an ancestor of this entity: read our part out of its value.
    const sub = basePath.slice(opPath.length)
    return op.op === 'remove' ? undefined : getAt(op.value, sub)
  }
  const rel = opPath.slice(basePath.length)
  // A field write to a record we do not have (not loaded yet, or deleted): never show a partial record.
  // The server decides, and its answer arrives as an ordinary change.
  if (rel.length > 0 && basePath.length >= 2 && !isPlainObject(value)) return value
  const cur = rel.length === 0 ? value : getAt(value, rel)
  let next: unknown
  if (op.op === 'remove') next = undefined
  else if (op.delta !== undefined) next = (typeof cur === 'number' ? cur : 0) + op.delta
  else if (op.added || op.removed) {
    const key = (v: unknown) => JSON.stringify(v)
    const rem = new Set((op.removed ?? []).map(key))
    const base = Array.isArray(cur) ? cur.filter((v) => !rem.has(key(v))) : []
    const have = new Set(base.map(key))
    next = [...base, ...(op.added ?? []).filter((v) => !have.has(key(v)))]
  } else if (op.idKey && Array.isArray(op.value)) {
    // As the server merges it (merge.ts idArrayApply), over the current array: only elements the op
    // changed relative to what it saw are written, deleted or moved; the others keep their current
    // (maybe newer) value and place.
    next = idArrayValue(idArrayApply(seedIdArray(cur, op.idKey), op.idKey, Array.isArray(op.prev) ? op.prev : [], op.value, op.hlc))
  } else if (mergesByKey(op) && isPlainObject(cur)) {
    // As the server merges an object (merge.ts mergeObject): the keys the op changed over the current value.
    next = mergeObject(op.prev, op.value, cur, 'mine').value
  } else next = op.value
  if (rel.length === 0) return next
  const root = isPlainObject(value) ? value : {}
  return setAt(root as Record<string, unknown>, rel, next, next === undefined)
}


function publicConflict(c: StoredConflict): Conflict {
  const { doc: _doc, opId: _opId, seq: _seq, ...rest } = c
  return rest
}

/** Whether `state` shows what `op` wrote at `path` (the same value, or nothing there for a removal). */
function shows(state: Record<string, unknown>, path: Path, op: Op): boolean {
  const v = getAt(state, path)
  return op.op === 'remove' ? v === undefined : v === op.value || deepEqual(v, op.value)
}

/** The server applied `op` as written (last-writer-wins, no merge): same value, or a delete of a remove. */
function isEcho(c: Change, op: Op): boolean {
  // Merged values, and objects (shown merged over newer remote values while pending, see overlay) are
  // recomputed: the screen may not show the op's own value.
  if (op.policy !== undefined || op.idKey !== undefined || mergesByKey(op)) return false
  if (op.op === 'remove') return c.kind === 'delete'
  return c.kind === 'set' && (c.value === op.value || deepEqual(c.value, op.value))
}

/** Most bytes of op values per batch (about a quarter of the server's default frame limit). */
const MAX_BATCH_BYTES = 1_000_000
/** Seconds of the link's measured pace that may be in flight, and the window's bounds (see `linkWindow`). */
const LINK_SECONDS = 4
const INITIAL_LINK_WINDOW = 128_000
const MIN_LINK_WINDOW = 16_000
const MAX_LINK_WINDOW = 16_000_000
/** The share of the server's rate limits the client paces itself to. */
const PACE_MARGIN = 0.9

type Pace = { ops: number; messages: number; opsBucket: TokenBucket; messageBucket: TokenBucket }
/** The pace of each shared connection (see `Transport.link`), with the session it was made for. */
/** A row of another tab as a `change:tab` patch. */
const tabPatch = (row: OutboxRow): SyncEvents['change:tab']['patches'][number] => ({ entity: row.entity, path: row.op.path, op: row.op.op, ...(row.op.op === 'remove' ? {} : { value: row.op.value }) })

const LINK_PACE = new WeakMap<object, { session: string | undefined; pace: Pace }>()

/** A value's JSON size, roughly: exact for strings and containers, 8 for other scalars. */
function jsonSize(v: unknown): number {
  return typeof v === 'string' ? v.length + 2 : v !== null && typeof v === 'object' ? JSON.stringify(v).length : 8
}

/** Room left in a frame for the envelope around one op (event name, doc, client table, framing). */
const FRAME_SLACK = 4096

/** An op's exact size as UTF-8 JSON: only for the rare op whose rough size is near the frame limit. */
function wireBytes(op: Op): number {
  return new TextEncoder().encode(JSON.stringify(op)).length
}

/** An op's size on the wire, roughly: its value (and the base it carries for a merge) plus ~200 B. */
function opBytes(op: Op): number {
  return 200 + jsonSize(op.value) + (op.prev === undefined ? 0 : jsonSize(op.prev))
}

/** A row for storage: fresh row and op objects (their values are never changed in place). */
function copyRow(row: OutboxRow): OutboxRow {
  return { ...row, op: { ...row.op } }
}

/** Keys of a collection or record written whole become path segments later: they must fit as one does. */
function assertSegmentKeys(v: unknown, depth: number): void {
  if (depth >= OP_DEPTH || !isPlainObject(v)) return
  for (const k of Object.keys(v)) {
    assertSafePath([k])
    assertSegmentKeys(v[k], depth + 1)
  }
}

/** Where inside a refused value the problem is (error path only): the keys down to the first bad part. */
function badPart(v: unknown): string[] {
  const at: string[] = []
  for (let d = 0; d < 8 && isPlainObject(v); d++) {
    const obj = v
    const k = Object.keys(obj).find((key) => {
      try {
        assertSafePath([key])
        assertSafeValue(obj[key])
        return false
      } catch {
        return true
      }
    })
    if (k === undefined) break
    at.push(k)
    v = obj[k]
  }
  return at
}

const STATUS_KEYS = ['connection', 'pending', 'unpersisted', 'conflicts', 'deadLetters', 'syncing', 'ready', 'readOnly', 'attempts', 'seq', 'nextRetryAt', 'lastSyncedAt', 'error'] as const

/** Two statuses that say the same (the pending age aside, as long as both have one or neither does). */
function sameStatus(a: SyncStatus, b: SyncStatus): boolean {
  for (const k of STATUS_KEYS) if (a[k] !== b[k]) return false
  for (const l in a.lanes) if (a.lanes[l as Priority] !== b.lanes[l as Priority]) return false
  return (a.oldestPendingAge === undefined) === (b.oldestPendingAge === undefined)
}
