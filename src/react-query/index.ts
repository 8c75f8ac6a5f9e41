// zync/react-query: keeps TanStack Query caches in step with a synced store.
import { hashKey, onlineManager, type NetworkMode, type QueryClient, type QueryKey } from '@tanstack/react-query'
import { ZyncError, isRefusal } from '../core/errors'
import { getAt } from '../core/patch'
import type { Change } from '../core/protocol'
import type { Path } from '../core/path'
import type { Conflict, SyncApi } from '../core/types'

/**
 * What changed under the app: a field of a remote change, another tab's edit or a conflict's settled
 * value, or a whole record (or top-level key) the store shows anew for another reason.
 */
export interface SyncedChange {
  /**
   * 'remote' for `change:remote`, 'tab' for `change:tab` (another tab of this browser), 'resolved' for
   * `sync:resolved`; from `change:shown`, 'snapshot' (the server sent its whole state: a device far
   * behind, or a rewound server; one change per record that differs), 'outbox' (an edit of this device
   * discarded, refused or acknowledged with another value) and 'load' (what this device had saved,
   * shown once the store is ready: a query that ran before read the initial state).
   */
  source: 'remote' | 'tab' | 'resolved' | 'snapshot' | 'outbox' | 'load'
  /** The entity (`collection/id`, or a top-level key). */
  entity: string
  /** The field's path ('remote', 'tab', 'resolved'), or the record's ('snapshot', 'outbox', 'load'). */
  path: Path
  /** 'delete' where the store shows nothing at `path` now. */
  kind: 'set' | 'delete'
  /**
   * What the store shows at `path` now (read from `getState()` after the change): the server's value,
   * or this device's own where it is still pending or an open conflict keeps it, or a counter's merged
   * total. Write this into a cache; the server's log entry is `change.value`.
   */
  value?: unknown
  /** The server's log entry (source 'remote'). */
  change?: Change | undefined
  /** The settled conflict (source 'resolved'). */
  conflict?: Conflict | undefined
}

export interface ConnectQueryClientOptions {
  /** The query keys a change affects; undefined or [] for none. Required. */
  queryKeysFor: (change: SyncedChange) => readonly QueryKey[] | undefined
  /**
   * 'invalidate' marks the keys stale (active queries refetch); 'patch' calls `patch` to write the new
   * value into the cache and invalidates only when `patch` returns false. Default: 'invalidate'.
   */
  mode?: 'invalidate' | 'patch' | undefined
  /**
   * Writes a change into the cache (e.g. with `queryClient.setQueryData` and `change.value`); return false
   * to invalidate instead. Required with mode 'patch' (a `BAD_REQUEST` ZyncError without it). Default: none.
   */
  patch?: ((queryClient: QueryClient, change: SyncedChange) => boolean | void) | undefined
  /**
   * Drive TanStack Query's `onlineManager` from the sync connection. Default: true in a browser, false
   * where there is no `window` (server rendering: `onlineManager` is process-wide there, and a server-side
   * store that never connects would pause every request's queries).
   */
  online?: boolean | undefined
  /**
   * The `networkMode` made the QueryClient's default for queries and mutations that set none themselves
   * (restored on disconnect); false leaves the defaults alone. Default: 'always'. Work that reads and
   * writes the store needs no network: with TanStack's own default ('online') a mutation made while the
   * store is offline is paused and held in TanStack's memory, where a reload loses it; with 'always' it
   * runs, and the store's outbox keeps its write. Give a query or mutation that calls another API
   * `networkMode: 'online'` to have it pause while offline.
   */
  defaultNetworkMode?: NetworkMode | false | undefined
}

/** What the bridge set on a QueryClient's defaults, shared by its connections and undone when the last goes. */
interface DefaultsLease {
  count: number
  /** The networkMode the bridge set, per kind (where none was set), and whether that kind had defaults then. */
  set: Array<{ kind: 'queries' | 'mutations'; mode: NetworkMode; hadKind: boolean }>
}
const defaultsLeases = new WeakMap<QueryClient, DefaultsLease>()
/** The live connection of each store to each QueryClient: connecting the pair again replaces it. */
const live = new WeakMap<QueryClient, Map<SyncApi, () => void>>()

/** Each store's say on onlineManager (it is process-wide): online while any of them can reach the network. */
const following = new Map<object, () => boolean>()
let onlineBefore = true

function followOnline(): void {
  let on = false
  for (const reachable of following.values()) if (reachable()) on = true
  onlineManager.setOnline(on)
}

/** TanStack's own listener (window online/offline), put back when no store drives onlineManager any more. */
function browserListener(setOnline: (online: boolean) => void): (() => void) | undefined {
  if (typeof window === 'undefined' || !window.addEventListener) return undefined
  const on = () => setOnline(true)
  const off = () => setOnline(false)
  window.addEventListener('online', on, false)
  window.addEventListener('offline', off, false)
  return () => {
    window.removeEventListener('online', on)
    window.removeEventListener('offline', off)
  }
}

/**
 * Invalidates (or patches) the queries a remote change, another tab's edit or a conflict resolution
 * affects; refetches the queries of the records the store loaded from what this device saved (a reload);
 * makes 'always' the default `networkMode` (see `defaultNetworkMode`), and pauses network-bound queries
 * and mutations while the sync connection is offline (`online`). Returns a function that disconnects.
 *
 * Several connections may share a QueryClient (several stores) and onlineManager (process-wide): the
 * defaults are set by the first connection of a QueryClient and undone by its last, where they are still
 * what the bridge set; onlineManager is online while any connected store can reach the network, and
 * TanStack's own browser online/offline listener is replaced meanwhile (the stores follow those events
 * themselves), then put back with the online state from before. Connecting a store to a QueryClient it
 * is connected to already replaces that connection's listeners (no change is invalidated twice).
 *
 * `store`: the synced store itself (a zustand store: `change.value` is read through its `getState()`;
 * given only `{ sync }`, `value` is the event's, the server's). Connect it as the store is made: a
 * reload's records are reported once, when the store loads them.
 */
export function connectQueryClient(
  queryClient: QueryClient,
  store: { sync: SyncApi; getState?: (() => unknown) | undefined },
  options: ConnectQueryClientOptions,
): () => void {
  const { queryKeysFor, mode = 'invalidate', patch, online = typeof window !== 'undefined', defaultNetworkMode = 'always' } = options
  if (mode === 'patch' && typeof patch !== 'function') throw new ZyncError('BAD_REQUEST', "[zync] connectQueryClient(): mode 'patch' needs a `patch` function")
  const sync = store.sync
  let done = false

  // What the store shows at the path now (the events come after the store is written), not the server's
  // value: a pending edit, an open conflict's own side or another tab's increments may lie over it.
  const shown = (c: SyncedChange): SyncedChange => {
    if (!store.getState || (c.source !== 'remote' && c.source !== 'tab' && c.source !== 'resolved')) return c
    const value = getAt(store.getState(), c.path)
    const { value: _event, ...rest } = c
    return value === undefined ? { ...rest, kind: 'delete' } : { ...rest, kind: 'set', value }
  }

  const apply = (events: SyncedChange[]) => {
    const changes = events.map(shown)
    // One invalidation per key per batch, however many changes touch it.
    const keys = new Map<string, QueryKey>()
    for (const c of changes) {
      if (mode === 'patch' && patch) {
        try {
          if (patch(queryClient, c) !== false) continue
        } catch (err) {
          // Its queries are invalidated instead: the cache must not stay stale.
          console.error('[zync] connectQueryClient: patch threw; invalidating instead', err)
        }
      }
      try {
        for (const k of queryKeysFor(c) ?? []) keys.set(hashKey(k), k)
      } catch (err) {
        // One bad change or callback must not stop the others.
        console.error('[zync] connectQueryClient: queryKeysFor threw', err)
      }
    }
    for (const queryKey of keys.values()) void queryClient.invalidateQueries({ queryKey })
  }

  const offs = [
    sync.on('change:remote', ({ changes }) =>
      apply(
        changes.map((change) => ({
          source: 'remote',
          entity: change.entity,
          path: change.path,
          kind: change.kind,
          value: change.value,
          change,
        })),
      ),
    ),
    sync.on('change:tab', ({ patches }) =>
      apply(patches.map((p) => ({ source: 'tab', entity: p.entity, path: p.path, kind: p.op === 'remove' ? 'delete' : 'set', value: p.value }))),
    ),
    // The rest of what the store shows anew: the narrower events above do not report these. 'load': what
    // this device saved (IndexedDB: its outbox and the last confirmed state), shown once the store is
    // ready; a query that ran before read the initial state (a reload), and only those of the records
    // it changed are refetched (queries restored by persistQueryClient, or of another API, are left alone).
    sync.on('change:shown', ({ source, patches }) => {
      if (source === 'remote' || source === 'tab' || source === 'resolved') return
      apply(patches.map((p) => ({ source, entity: p.entity, path: p.path, kind: p.kind, ...(p.kind === 'set' ? { value: p.value } : {}) })))
    }),
    sync.on('sync:resolved', ({ conflict, value }) =>
      apply([
        {
          source: 'resolved',
          entity: conflict.entity,
          path: conflict.path,
          kind: value === undefined ? 'delete' : 'set',
          value,
          conflict,
        },
      ]),
    ),
  ]

  const stopListening = () => {
    for (const off of offs.splice(0)) off()
  }

  // Shared by the connections of one QueryClient: set by the first, undone by the last, whatever the order
  // of disconnects; undone only where the default is still what the bridge set (defaults the app set
  // meanwhile stay).
  const releases: Array<() => void> = []
  if (defaultNetworkMode) {
    let lease = defaultsLeases.get(queryClient)
    if (!lease) {
      const d = queryClient.getDefaultOptions()
      const set: DefaultsLease['set'] = []
      for (const kind of ['queries', 'mutations'] as const) if (d[kind]?.networkMode === undefined) set.push({ kind, mode: defaultNetworkMode, hadKind: d[kind] !== undefined })
      queryClient.setDefaultOptions({ ...d, queries: { networkMode: defaultNetworkMode, ...d.queries }, mutations: { networkMode: defaultNetworkMode, ...d.mutations } })
      lease = { count: 0, set }
      defaultsLeases.set(queryClient, lease)
    }
    lease.count++
    const held = lease
    releases.push(() => {
      if (--held.count > 0) return
      defaultsLeases.delete(queryClient)
      const d = queryClient.getDefaultOptions()
      const next = { ...d }
      for (const { kind, mode, hadKind } of held.set) {
        if (d[kind]?.networkMode !== mode) continue
        const { networkMode: _set, ...rest } = d[kind] as Record<string, unknown>
        if (hadKind || Object.keys(rest).length > 0) next[kind] = rest
        else delete next[kind]
      }
      queryClient.setDefaultOptions(next)
    })
  }

  if (online) {
    // Offline because the server refused the store (credentials) is not the network being down: other
    // queries (a REST API) may well work.
    const reachable = () => {
      const s = sync.status()
      return s.connection !== 'offline' || isRefusal(s)
    }
    const token = {}
    if (following.size === 0) {
      onlineBefore = onlineManager.isOnline()
      // The stores say when the network is down (they follow the browser's events themselves, and a
      // disconnect() too): TanStack's own listener of those events would override them.
      onlineManager.setEventListener(() => undefined)
    }
    following.set(token, reachable)
    followOnline()
    // A listener of its own: subscribe() keeps a set, so a shared function was one listener for every
    // connection of the store, and disconnecting one left onlineManager following none.
    const off = sync.subscribe(() => followOnline())
    releases.push(() => {
      off()
      following.delete(token)
      if (following.size > 0) return followOnline()
      onlineManager.setEventListener(browserListener)
      onlineManager.setOnline(onlineBefore)
    })
  }

  const disconnect = () => {
    if (done) return
    done = true
    if (pairs.get(sync) === disconnect) pairs.delete(sync)
    stopListening()
    for (const release of releases) release()
  }
  // Connecting the same store to the same QueryClient again replaces the earlier connection whole: its
  // listeners (each change was invalidated twice), its share of the defaults and of onlineManager (so the
  // last disconnect restores them). Undone after this one took its shares, so nothing is restored between.
  const pairs = live.get(queryClient) ?? new Map<SyncApi, () => void>()
  live.set(queryClient, pairs)
  const earlier = pairs.get(sync)
  pairs.set(sync, disconnect)
  earlier?.()
  return disconnect
}
