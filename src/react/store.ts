import { useCallback, useSyncExternalStore } from 'react'
import type { SyncApi } from '../core/types'

/** Anything with a `sync` property: a store made with `create()(sync(init, opts))`, or a test double. */
export type SyncedStore = { sync: SyncApi }

/**
 * Reads `get(store.sync)` and re-renders when `store.sync[channel]` fires. `get` must return the same
 * value until something changes (the SyncApi getters do), so the snapshot is safe for
 * useSyncExternalStore. The server snapshot is the same read: SyncApi is plain in-memory state.
 */
export function useSyncValue<T>(
  store: SyncedStore,
  get: (sync: SyncApi) => T,
  channel: 'subscribe' | 'subscribePresence' = 'subscribe',
): T {
  const sync = store.sync
  const subscribe = useCallback((cb: () => void) => sync[channel](cb), [sync, channel])
  const read = () => get(sync)
  return useSyncExternalStore(subscribe, read, read)
}

const noop = () => () => {}
/** False on the server and during hydration, true on the client afterwards: gates portals. */
export const useIsClient = (): boolean =>
  useSyncExternalStore(
    noop,
    () => true,
    () => false,
  )
