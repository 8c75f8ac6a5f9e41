// zync/react-query: keeps TanStack Query caches in step with a synced store.
import { hashKey, onlineManager, type NetworkMode, type QueryClient, type QueryKey } from '@tanstack/react-query'
import { isRefusal } from '../core/errors'
import type { Change } from '../core/protocol'
import type { Path } from '../core/path'
import type { Conflict, SyncApi } from '../core/types'

/** One field that changed under the app: a remote change, another tab's edit, or the settled value of a conflict. */
export interface SyncedChange {
  /** 'remote' for `change:remote`, 'tab' for `change:tab` (another tab of this browser), 'resolved' for `sync:resolved`. */
  source: 'remote' | 'tab' | 'resolved'
  /** The entity (`collection/id`, or a top-level key). */
  entity: string
  path: Path
  kind: 'set' | 'delete'
  value?: unknown
  /** The server's log entry (source 'remote'). */
  change?: Change
  /** The settled conflict (source 'resolved'). */
  conflict?: Conflict
}

export interface ConnectQueryClientOptions {
  /** The query keys a change affects; undefined or [] for none. Required. */
  queryKeysFor: (change: SyncedChange) => readonly QueryKey[] | undefined
  /**
   * 'invalidate' marks the keys stale (active queries refetch); 'patch' calls `patch` to write the new
   * value into the cache and invalidates only when `patch` returns false. Default: 'invalidate'.
   */
  mode?: 'invalidate' | 'patch'
  /** Writes a change into the cache (e.g. with `queryClient.setQueryData`); return false to invalidate instead. Default: none. */
  patch?: (queryClient: QueryClient, change: SyncedChange) => boolean | void
  /**
   * Drive TanStack Query's `onlineManager` from the sync connection. Default: true in a browser, false
   * where there is no `window` (server rendering: `onlineManager` is process-wide there, and a server-side
   * store that never connects would pause every request's queries).
   */
  online?: boolean
  /**
   * The `networkMode` made the QueryClient's default for queries and mutations that set none themselves
   * (restored on disconnect); false leaves the defaults alone. Default: 'always'. Work that reads and
   * writes the store needs no network: with TanStack's own default ('online') a mutation made while the
   * store is offline is paused and held in TanStack's memory, where a reload loses it; with 'always' it
   * runs, and the store's outbox keeps its write. Give a query or mutation that calls another API
   * `networkMode: 'online'` to have it pause while offline.
   */
  defaultNetworkMode?: NetworkMode | false
}

/**
 * Invalidates (or patches) the queries a remote change, another tab's edit or a conflict resolution
 * affects; refetches the queries that ran before the store had loaded what this device saved (a reload);
 * makes 'always' the default `networkMode` (see `defaultNetworkMode`), and pauses network-bound queries
 * and mutations while the sync connection is offline (`online`). Returns a function that disconnects
 * and restores `onlineManager` and the default options to what they were.
 */
export function connectQueryClient(
  queryClient: QueryClient,
  store: { sync: SyncApi },
  options: ConnectQueryClientOptions,
): () => void {
  const { queryKeysFor, mode = 'invalidate', patch, online = typeof window !== 'undefined', defaultNetworkMode = 'always' } = options
  const sync = store.sync
  let done = false

  const apply = (changes: SyncedChange[]) => {
    // One invalidation per key per batch, however many changes touch it.
    const keys = new Map<string, QueryKey>()
    for (const c of changes) {
      try {
        if (mode === 'patch' && patch && patch(queryClient, c) !== false) continue
        for (const k of queryKeysFor(c) ?? []) keys.set(hashKey(k), k)
      } catch (err) {
        // One bad change or callback must not stop the others.
        console.error('[zync] connectQueryClient: queryKeysFor/patch threw', err)
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

  if (defaultNetworkMode) {
    const before = queryClient.getDefaultOptions()
    queryClient.setDefaultOptions({
      ...before,
      queries: { networkMode: defaultNetworkMode, ...before.queries },
      mutations: { networkMode: defaultNetworkMode, ...before.mutations },
    })
    offs.push(() => queryClient.setDefaultOptions(before))
  }

  // A query that ran before the store loaded what this device saved (IndexedDB: its outbox and the last
  // confirmed state) read the initial state: refetched once the store is ready.
  // (Every query holding data then: the bridge cannot tell which read the store. Hydration takes tens of
  // milliseconds, so few others have answered yet.)
  if (!sync.status().ready) {
    void sync.ready.then(
      () => {
        if (!done) void queryClient.invalidateQueries({ predicate: (q) => q.state.dataUpdatedAt > 0 })
      },
      () => {},
    )
  }

  if (online) {
    const before = onlineManager.isOnline()
    // Offline because the server refused the store (credentials) is not the network being down: other
    // queries (a REST API) may well work.
    const follow = () => {
      const s = sync.status()
      onlineManager.setOnline(s.connection !== 'offline' || isRefusal(s))
    }
    follow()
    const off = sync.subscribe(follow)
    offs.push(() => {
      off()
      onlineManager.setOnline(before)
    })
  }

  return () => {
    if (done) return
    done = true
    for (const off of offs) off()
  }
}
