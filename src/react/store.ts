import { useCallback, useEffect, useSyncExternalStore } from 'react'
import type { SyncApi } from '../core/types'

/** Anything with a `sync` property: a store made with `create()(sync(init, opts))`, or a test double. */
export type SyncedStore = { sync: SyncApi }

/**
 * Reads `get(store.sync)` and re-renders when `store.sync[channel]` fires. `get` must return the same
 * value until something changes (the SyncApi getters do), so the snapshot is safe for
 * useSyncExternalStore. On the server and while hydrating, the hooks render `serverValue`, a constant
 * ("not known yet"), whatever the store holds there: server-rendered HTML and the first client render
 * then match, and the live value follows at once.
 */
export function useSyncValue<T>(
  store: SyncedStore,
  get: (sync: SyncApi) => T,
  serverValue: T,
  channel: 'subscribe' | 'subscribePresence' = 'subscribe',
): T {
  const sync = store.sync
  const subscribe = useCallback((cb: () => void) => sync[channel](cb), [sync, channel])
  return useSyncExternalStore(
    subscribe,
    () => get(sync),
    () => serverValue,
  )
}

/** Shared constants for server snapshots: the same object on every render, as useSyncExternalStore needs. */
export const NONE: never[] = []

const noop = () => () => {}
/** False on the server and during hydration, true on the client afterwards: gates portals. */
export const useIsClient = (): boolean =>
  useSyncExternalStore(
    noop,
    () => true,
    () => false,
  )

/** Open ConflictModals per store (keyed by its `sync`), so a ConflictToast can step aside for one. */
const modals = new WeakMap<SyncApi, number>()
const modalListeners = new Set<() => void>()
const subscribeModals = (cb: () => void) => {
  modalListeners.add(cb)
  return () => void modalListeners.delete(cb)
}

/** Marks a ConflictModal of this store as shown while `shown` is true. */
export function useShownModal(store: SyncedStore, shown: boolean): void {
  const sync = store.sync
  useEffect(() => {
    if (!shown) return
    const change = (d: number) => {
      modals.set(sync, (modals.get(sync) ?? 0) + d)
      for (const l of modalListeners) l()
    }
    change(1)
    return () => change(-1)
  }, [sync, shown])
}

/** True while a ConflictModal of this store is shown. */
export const useModalShown = (store: SyncedStore): boolean =>
  useSyncExternalStore(
    subscribeModals,
    () => (modals.get(store.sync) ?? 0) > 0,
    () => false,
  )
