import type { StateCreator, StoreMutatorIdentifier } from 'zustand/vanilla'
import type { Socket } from 'socket.io-client'
import { SyncEngine, type EngineHost } from '../core/engine'
import { ZyncError } from '../core/errors'
import { newId } from '../core/ids'
import type { BackoffOptions } from '../core/outbox'
import { arrayAlong, setAtCow } from '../core/patch'
import { isPlainObject } from '../core/diff'
import { isDocId, isUnsafeSegment, type Path } from '../core/path'
import { PolicyTable, type ConflictPolicy, type ConflictsConfig } from '../core/policies'
import type { Op } from '../core/protocol'
import type { OutboxStorage } from '../core/storage'
import type { Transport } from '../core/transport'
import type { PresenceUser, Priority, SyncApi } from '../core/types'
import { DexieOutboxStorage } from '../adapters/dexie-storage'
import { MemoryOutboxStorage } from '../adapters/memory-storage'
import { FallbackOutboxStorage } from '../adapters/fallback-storage'
import { SocketIoTransport } from '../adapters/socket-io'
import { orphansLeft, recoverOrphans, whileOnline } from './recover'

export interface SyncOptions<T> {
  /**
   * Document id: every store with this name on the same server syncs. 1 to 256 letters, digits and
   * `_ . : @ / -` (e.g. 'board-42', 'team:7/board'); anything else throws at sync(). Required.
   */
  name: string
  /**
   * Sync server URL, e.g. 'http://127.0.0.1:4000'; or several, tried in turn when one is down
   * (nodes of one cluster). Give this or `socket`. Default: none (one of the two is required).
   */
  url?: string | string[] | undefined
  /**
   * A socket.io-client Socket to use instead of `url` (zync never closes a socket you pass). Its own
   * `auth` is what the server gets: one with none that has not connected yet takes this store's `user`
   * and `auth`; otherwise, when they differ, `onWarning` says so. Default: none.
   */
  socket?: Socket | undefined
  /**
   * What this store sends: its edits of the keys this returns. Changes from the document are applied to
   * the store whatever it returns. Default: every key of the state whose value is not a function.
   */
  partialize?: ((state: T) => Partial<T>) | undefined
  /**
   * Where the outbox, the conflict inbox and the last synced snapshot live.
   * Default 'indexeddb' where IndexedDB exists, else 'memory' (with a warning).
   */
  storage?: 'indexeddb' | 'memory' | OutboxStorage | undefined
  /** IndexedDB database name. Default 'zync'. */
  dbName?: string | undefined
  /**
   * This client's id; must be unique per tab and per document. It is public (every change record names
   * its writer's), and the first user to write under an id in a document owns it there: an id reused
   * across documents can be taken in another one first (CLIENT_MISMATCH). Default: a new random id per
   * store instance (16-char nanoid).
   */
  clientId?: string | undefined
  /**
   * Who this client says it is: its own entry in presence(), and, sent in the connection's `auth`
   * (`userId`, `name`, `color`, `avatarUrl`, under any key `auth` sets itself), what a server without an
   * `authenticate` function trusts for history, conflict metadata and the presence peers see. A server
   * with `authenticate` decides who the user is. Default `{ id: clientId }` (nothing sent).
   */
  user?: PresenceUser | undefined
  /**
   * Sent to the server in socket.io's `auth` on every connection (see the server's `authenticate`).
   * A function is called on each (re)connection, so it can hand over a fresh token. Default `{}`.
   */
  auth?: ({ token?: string; [key: string]: unknown } | ((cb: (data: object) => void) => void)) | undefined
  /**
   * Conflict policies per path (see ConflictsConfig). A pattern in `paths` starts with a key of the
   * state or `*`, so a misspelt key is a type error (and a warning at run time). Default `{ default: 'lww' }`.
   */
  conflicts?: Omit<ConflictsConfig, 'paths'> & { paths?: ConflictPaths<T> } | undefined
  /** Outbox lane for a change. Default: 'medium' for everything. */
  priority?: ((change: { path: Path; op: Op['op']; value?: unknown }) => Priority) | undefined
  /** Retry backoff. Default `{ base: 500, factor: 2, cap: 30000 }` (full jitter). */
  backoff?: BackoffOptions | undefined
  /**
   * Most ops per message (a positive integer); a message also stops at ~1 MB of values, and at what the
   * link carries in about 2 s at the pace measured from the answers (a slow uplink gets smaller batches). Default 500.
   */
  batchSize?: number | undefined
  /**
   * Ms to wait for the server to acknowledge a batch before retrying it, on top of the time the bytes in
   * flight need at the link's measured pace. Default 10000.
   */
  ackTimeout?: number | undefined
  /**
   * Presence entry lifetime and send throttle in ms. Default `{ ttl: 30000, throttle: 50 }`. The heartbeat
   * runs at half of `ttl`, or of the server's `presenceTtl` when that is shorter (told on join). The
   * throttle is never below what the server admits (its `presencePerSecond`, 20 by default: 50 ms);
   * updates in between are coalesced and the last one is always sent. A peer whose network is cut
   * (nothing closed) leaves others' lists after ~20 s (the server's ping timeout), or as soon as it
   * reconnects (its new connection replaces the old entry); a clean disconnect, destroy() or a closed
   * tab at once.
   */
  presence?: { ttl?: number | undefined; throttle?: number | undefined } | undefined
  /**
   * Share edits with other tabs of this device through BroadcastChannel; the tabs share the IndexedDB
   * outbox. Default true where BroadcastChannel exists and the outbox is IndexedDB (or your own storage
   * other than a MemoryOutboxStorage); false with a memory outbox, which no other tab or store can read.
   */
  crossTab?: boolean | undefined
  /**
   * Connect as soon as the outbox is loaded. Default true, except where there is no `window`, no
   * IndexedDB and no `storage` option (a store evaluated during server rendering): false there.
   */
  autoConnect?: boolean | undefined
  /** Ms without a heartbeat after which another tab adopts a silent (closed or frozen) tab's ops. Default 10000. */
  tabTimeout?: number | undefined
  /** Follow navigator.onLine and the window online/offline events. Default true where they exist. */
  watchNetwork?: boolean | undefined
  /** Advanced: a custom Transport instead of socket.io (in-process tests, other networks). Default: socket.io to `url`. */
  transport?: Transport | undefined
  /**
   * Advanced: the clock (epoch ms) behind this client's timestamps, for simulations and clock-skew tests.
   * Timestamps are still aligned with the server's clock on every join. Default `Date.now`.
   */
  now?: (() => number) | undefined
  /** Where warnings go. Default console.warn. */
  onWarning?: ((message: string) => void) | undefined
}

type Write<T, U> = Omit<T, keyof U> & U
type WithSync<S, _A> = S extends { getState: () => infer T } ? Write<S, { sync: SyncApi<T> }> : never

declare module 'zustand/vanilla' {
  interface StoreMutators<S, A> {
    'zync/sync': WithSync<S, A>
  }
}

/** `conflicts.paths` of a state T: patterns that start with one of its keys or `*` (any key when T is unknown). */
export type ConflictPaths<T> = unknown extends T ? Record<string, ConflictPolicy> : { [K in Extract<keyof T, string> | '*' as K | `${K}.${string}`]?: ConflictPolicy }

type Sync = <T, Mps extends [StoreMutatorIdentifier, unknown][] = [], Mcs extends [StoreMutatorIdentifier, unknown][] = []>(
  initializer: StateCreator<T, [...Mps, ['zync/sync', unknown]], Mcs>,
  options: SyncOptions<T>,
) => StateCreator<T, Mps, [['zync/sync', unknown], ...Mcs]>

type SyncImpl = <T>(initializer: StateCreator<T, [], []>, options: SyncOptions<T>) => StateCreator<T, [], []>

function defaultPartialize<T>(state: T): Partial<T> {
  const out: Record<string, unknown> = {}
  for (const k of Object.keys(state as object)) {
    const v = (state as Record<string, unknown>)[k]
    if (typeof v !== 'function') out[k] = v
  }
  return out as Partial<T>
}

const bad = (m: string): ZyncError => new ZyncError('BAD_REQUEST', `[zync] sync(): ${m}`)

/** Options a plain-JavaScript caller can get wrong in ways that would fail later and far away. */
function checkOptions(o: SyncOptions<unknown>): void {
  if (!o || typeof o.name !== 'string' || !o.name) throw bad("options.name, the document id, is required (e.g. 'board-42')")
  // The server refuses other ids on join; the store would then sit offline with BAD_REQUEST.
  if (!isDocId(o.name)) throw bad(`name must be 1 to 256 letters, digits and _ . : @ / - (got ${JSON.stringify(o.name.slice(0, 300))})`)
  for (const u of o.url === undefined ? [] : Array.isArray(o.url) ? o.url : [o.url]) {
    // Without a scheme socket.io-client guesses one (https), and the error then names a server that is up.
    if (typeof u !== 'string' || !/^(https?:\/\/|wss?:\/\/|\/)/i.test(u)) throw bad(`url must start with http://, https://, ws://, wss:// or / (got ${JSON.stringify(u)})`)
  }
  const s = o.storage
  if (s !== undefined && s !== 'indexeddb' && s !== 'memory' && (typeof s !== 'object' || s === null || typeof s.load !== 'function')) throw bad(`storage must be 'indexeddb', 'memory' or an OutboxStorage (got ${JSON.stringify(s)})`)
  for (const k of ['batchSize', 'ackTimeout', 'tabTimeout'] as const) {
    const v = o[k]
    if (v !== undefined && !(Number.isInteger(v) && v > 0)) throw bad(`${k} must be a positive integer (got ${JSON.stringify(v)})`)
  }
  const kinds: Array<[string, string]> = [
    ['partialize priority now onWarning', 'function'],
    ['crossTab autoConnect watchNetwork', 'boolean'],
    ['conflicts backoff presence user', 'object'],
    ['dbName clientId', 'string'],
  ]
  for (const [keys, kind] of kinds) {
    for (const k of keys.split(' ')) {
      const v = (o as unknown as Record<string, unknown>)[k]
      if (v !== undefined && (typeof v !== kind || v === null || Array.isArray(v))) throw bad(`${k} must be a${kind === 'object' ? 'n' : ''} ${kind} (got ${JSON.stringify(v) ?? typeof v})`)
    }
  }
  if (o.auth !== undefined && (o.auth === null || (typeof o.auth !== 'object' && typeof o.auth !== 'function'))) throw bad(`auth must be an object or a function (got ${JSON.stringify(o.auth)})`)
  if (o.user && typeof o.user.id !== 'string') throw bad('user.id must be a string')
  // The server refuses other client ids on join (1 to 128 characters, not a prototype key).
  if (o.clientId !== undefined && (!o.clientId || o.clientId.length > 128 || isUnsafeSegment(o.clientId))) throw bad(`clientId must be 1 to 128 characters and not ${JSON.stringify(o.clientId)}`)
  for (const [k, v] of [...Object.entries(o.backoff ?? {}), ...Object.entries(o.presence ?? {})]) {
    if (v !== undefined && !(typeof v === 'number' && v >= 0 && Number.isFinite(v))) throw bad(`${k} must be a number of 0 or more (got ${JSON.stringify(v)})`)
  }
}

/** The user's fields for a server without `authenticate` (it trusts them); the app's own `auth` keys win. */
function withUser(auth: SyncOptions<unknown>['auth'], user: PresenceUser | undefined): SyncOptions<unknown>['auth'] {
  if (!user) return auth
  const fields = { userId: user.id, ...(user.name ? { name: user.name } : {}), ...(user.color ? { color: user.color } : {}), ...(user.avatarUrl ? { avatarUrl: user.avatarUrl } : {}) }
  return typeof auth === 'function' ? (cb) => auth((data) => cb({ ...fields, ...data })) : { ...fields, ...auth }
}

/**
 * A socket the app passes keeps its own `auth` (socket.io sends it at each connection): the store's `user`
 * and `auth` go there when it has none and has not connected yet (a socket made beside the stores, as the
 * README shows), else a warning says what the server gets. A Next.js trial: every store on a shared
 * socket showed as "anonymous" in presence, history and the conflict dialog, without a word.
 */
function shareIdentity(socket: Socket, auth: SyncOptions<unknown>['auth'], warn: (m: string) => void, name: string): void {
  const own: unknown = socket.auth
  const none = own === undefined || (isPlainObject(own) && Object.keys(own).length === 0)
  if (none && !socket.connected) socket.auth = auth as Socket['auth']
  else if (none || (typeof own !== 'function' && typeof auth !== 'function' && JSON.stringify(own) !== JSON.stringify(auth))) {
    warn(`[zync] ${name}: the server gets the \`socket\`'s own \`auth\` (${none ? 'none: it connected without' : 'another'}), not this store's \`user\` and \`auth\`: see GUIDE, "One connection for all boards"`)
  }
}

/**
 * Evaluated on a server (server rendering: no window, no IndexedDB, no storage chosen): such a store is
 * one per server process, shared by every request, and is not the user's. It does not connect unless
 * asked to (`autoConnect`).
 */
const serverSide = (o: SyncOptions<unknown>) => o.storage === undefined && typeof window === 'undefined' && typeof globalThis.indexedDB === 'undefined'

function pickStorage(o: SyncOptions<unknown>, onServer: boolean, warn: (m: string) => void): OutboxStorage {
  const s = o.storage
  if (s && typeof s === 'object') return s
  const hasIdb = typeof globalThis.indexedDB !== 'undefined'
  if (s === 'memory') return new MemoryOutboxStorage()
  if (!hasIdb) {
    warn(
      onServer
        ? `[zync] no window and no IndexedDB here (server rendering?): the outbox lives in memory${o.autoConnect ? '' : ' and the store does not connect'}; pass storage: 'memory' to sync from Node, or storage: 'memory', autoConnect: false to render on a server without this warning`
        : '[zync] IndexedDB is not available here: the outbox lives in memory and does not survive a reload',
    )
    return new MemoryOutboxStorage()
  }
  return new FallbackOutboxStorage(new DexieOutboxStorage(o.dbName ?? 'zync'), warn)
}

/**
 * `state` with the patches applied: one copy per container for the whole batch, `state`'s own objects
 * never written. `shape` hears of a patch whose path goes through an array here (the document has
 * another shape than this app's state: an object is put in the array's place).
 */
function applyPatches(state: Record<string, unknown>, patches: Parameters<EngineHost['apply']>[0], shape?: (path: Path, at: number) => void): Record<string, unknown> {
  const fresh = new WeakSet<object>()
  for (const p of patches) {
    if (shape) {
      const at = arrayAlong(state, p.path)
      if (at > 0) shape(p.path, at)
      else if (p.path.length === 1) {
        // A collection the document now holds as an array where this store has keyed records, or the reverse.
        const had = state[p.path[0]!]
        if (Array.isArray(p.value) !== Array.isArray(had) && isPlainObject(Array.isArray(had) ? p.value : had)) shape(p.path, 1)
      }
    }
    state = setAtCow(state, p.path, p.value, p.remove === true, fresh)
  }
  return state
}

const syncImpl: SyncImpl = (initializer, options) => (set, get, api) => {
  checkOptions(options as SyncOptions<unknown>)
  type T = ReturnType<typeof get>
  const partialize = (options.partialize ?? defaultPartialize) as (s: T) => Record<string, unknown>
  let applying = false
  const warn = options.onWarning ?? ((m: string) => console.warn(m))
  const reshapedAt = new Set<string>()
  const reshaped = (path: Path, at: number) => {
    const where = path.slice(0, at).join('.')
    if (reshapedAt.has(where)) return
    reshapedAt.add(where)
    const what = at < path.length ? `is an array here, but a change writes keys under it (${path.slice(0, at + 1).join('.')})` : 'changes between keyed records and an array in a change from the document'
    warn(`[zync] ${options.name}: ${where} ${what}: the state has two shapes (another app version?). See README, "Changing the state's shape"`)
  }
  const clientId = options.clientId ?? newId()
  const auth = options.auth !== undefined || options.user ? withUser(options.auth, options.user) : undefined
  const socketTransport = () =>
    new SocketIoTransport({
      ...(options.url !== undefined ? { url: options.url } : {}),
      ...(options.socket !== undefined ? { socket: options.socket } : {}),
      ...(auth !== undefined ? { auth } : {}),
    })
  if (options.socket && !options.transport && auth !== undefined) shareIdentity(options.socket, auth, warn, options.name)
  const transport = options.transport ?? socketTransport()
  // Which server: rows record it, and edits left behind are delivered to it alone (recover.ts).
  const endpoint = options.transport ? undefined : options.url !== undefined ? [options.url].flat().join(' ') : (options.socket as unknown as { io?: { uri?: string } } | undefined)?.io?.uri
  const onServer = serverSide(options as SyncOptions<unknown>)
  const storage = pickStorage(options as SyncOptions<unknown>, onServer, warn)

  // The engine reads the initial state, so it is made once the initializer has run.
  const initial = initializer(set, get, api)
  const inner = (api as unknown as { sync?: SyncApi<T> }).sync
  if (inner) {
    // sync(sync(...)): two engines would send every op twice.
    void inner.destroy()
    throw bad('the store is synced already (sync() applied twice): apply it once, outermost')
  }
  // Checked first: a pattern that is refused (an empty one, an unknown policy) is not also warned about.
  const policies = new PolicyTable(options.conflicts as ConflictsConfig | undefined)
  // A pattern whose first segment is not a key of the state matches nothing: a typo, silently LWW.
  if (isPlainObject(initial)) {
    const keys = Object.keys(partialize(initial as T))
    for (const pattern of Object.keys(options.conflicts?.paths ?? {})) {
      const first = pattern.split('.')[0]!
      if (first !== '*' && !keys.includes(first)) warn(`[zync] conflicts.paths[${JSON.stringify(pattern)}]: ${JSON.stringify(first)} is not a key of the synced state (${keys.join(', ')}), so the pattern matches nothing until the state has that key. A typo?`)
    }
  }
  /** What every engine of this store's options shares (this store's and the ones delivering orphaned edits). */
  const common = (doc: string, store: OutboxStorage) => ({
    ...(options.user ? { user: options.user } : {}),
    policies,
    ...(options.backoff ? { backoff: options.backoff } : {}),
    ...(options.batchSize !== undefined ? { batchSize: options.batchSize } : {}),
    ...(options.ackTimeout !== undefined ? { ackTimeout: options.ackTimeout } : {}),
    // A memory outbox is this store's alone: another tab or store could mirror its edits but never send them.
    crossTab: options.crossTab ?? !(store instanceof MemoryOutboxStorage),
    // Stores on different IndexedDB databases are different devices: they must not share edits by tab messages.
    ...(typeof options.storage !== 'object' ? { tabChannel: `zync:${options.dbName ?? 'zync'}:${doc}` } : {}),
    ...(options.tabTimeout !== undefined ? { tabTimeout: options.tabTimeout } : {}),
    ...(options.now ? { now: options.now } : {}),
    ...(endpoint ? { endpoint } : {}),
    onWarning: warn,
  })
  const engine = new SyncEngine({
    ...common(options.name, storage),
    doc: options.name,
    clientId,
    transport,
    storage,
    host: {
      read: () => {
        const got = api.getState()
        const state = got === undefined ? initial : got
        // Not an object (null, an array, a string): handed over as is, for the engine to refuse.
        return isPlainObject(state) ? partialize(state as T) : (state as never)
      },
      apply: (patches) => {
        // The copies are new and only become visible with the setState below.
        const next = applyPatches(api.getState() as Record<string, unknown>, patches, reshaped)
        applying = true
        try {
          // Named for zustand's devtools, which otherwise names it after the caller.
          ;(api.setState as (s: unknown, replace: boolean, action: string) => void)(next, true, 'zync/remote')
        } finally {
          applying = false
        }
      },
    },
    ...(options.priority ? { priority: options.priority } : {}),
    ...(options.presence ? { presence: options.presence } : {}),
    ...(options.autoConnect !== undefined ? { autoConnect: options.autoConnect } : onServer ? { autoConnect: false } : {}),
    ...(options.watchNetwork !== undefined ? { watchNetwork: options.watchNetwork } : {}),
  })

  // Online, this store delivers edits other documents' stores left behind (destroyed, or their page
  // closed, before sending them): see recover.ts. Not with an app's own transport (one per store).
  let offline = () => {}
  if (!options.transport && storage.orphanedDocs) {
    const recover = () =>
      void recoverOrphans({
        key: typeof options.storage === 'object' ? options.storage : (options.dbName ?? 'zync'),
        storage,
        except: options.name,
        endpoint,
        tabTimeout: options.tabTimeout ?? 10_000,
        make: (doc) => {
          const store = pickStorage(options as SyncOptions<unknown>, onServer, warn)
          let state: Record<string, unknown> = {}
          return new SyncEngine({
            ...common(doc, store),
            doc,
            clientId: newId(),
            transport: socketTransport(),
            storage: store,
            // Shows nothing: nobody edits it, and the document's own store (when opened) loads from storage.
            host: {
              read: () => state,
              apply: (patches) => void (state = applyPatches(state, patches)),
            },
            watchNetwork: false,
          })
        },
      })
    engine.events.on('network:online', () => {
      offline()
      offline = whileOnline(recover)
      recover()
    })
    engine.events.on('network:offline', () => offline())
  }

  api.subscribe(() => {
    if (!applying) engine?.notifyLocalChange()
  })

  const syncApi: SyncApi<T> = {
    ready: engine.ready,
    name: options.name,
    clientId,
    status: () => engine.status(),
    subscribe: (fn) => engine.subscribe(fn),
    on: ((event: string, fn: (p: never) => void) => engine.events.on(event as never, fn as never)) as SyncApi<T>['on'],
    flush: (o) => engine.flush(o),
    pendingOperations: () => engine.pendingOperations(),
    isDirty: () => engine.isDirty(),
    conflicts: () => engine.conflicts(),
    resolve: (id, r) => engine.resolve(id, r),
    history: (q) => engine.history(q),
    deadLetters: () => engine.deadLetters(),
    retry: (id) => engine.retry(id),
    discard: (id) => engine.discard(id),
    withPriority: (p, fn) => engine.withPriority(p, fn),
    presence: () => engine.presence(),
    setPresence: (s) => engine.setPresence(s),
    subscribePresence: (fn) => engine.subscribePresence(fn),
    connect: () => engine.connect(),
    disconnect: () => engine.disconnect(),
    destroy: async () => {
      offline()
      engine.captureNow()
      const waiting = engine.pendingOperations()
      const unsent = waiting.filter((p) => !p.inFlight).length
      const sent = waiting.length - unsent
      await engine.destroy()
      if (waiting.length === 0) return
      // A memory outbox this store made (not one the app passed, which may outlive it): nothing else can
      // send its edits. Said rather than dropped in silence (those in flight may have arrived).
      if (typeof options.storage !== 'object' && storage.kind === 'memory') {
        const n = (k: number) => `${k} edit${k === 1 ? '' : 's'}`
        warn(
          `[zync] destroy(): the outbox of "${options.name}" is in memory: ${unsent > 0 ? `${n(unsent)} not sent yet ${unsent === 1 ? 'is' : 'are'} lost` : 'nothing unsent is lost'}${sent > 0 ? `, and ${n(sent)} in flight may or may not have reached the server` : ''}; await sync.flush() before destroy() to deliver them`,
        )
      }
      // Its unsent edits (IndexedDB) are orphans now: a store still online delivers them.
      else orphansLeft()
    },
  }
  ;(api as unknown as { sync: SyncApi<T> }).sync = syncApi
  return initial
}

/**
 * Zustand middleware that syncs the store through a zync server, offline-first.
 *
 * ```ts
 * const useBoard = create<Board>()(sync((set) => ({ cards: {} }), { name: 'board-42', url: 'http://127.0.0.1:4000' }))
 * ```
 */
export const sync = syncImpl as unknown as Sync
