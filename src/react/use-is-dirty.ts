import { type SyncedStore, useSyncValue } from './store'

/** True while local changes are not yet acknowledged by the server (false on the server and during hydration). */
export function useIsDirty(store: SyncedStore): boolean {
  return useSyncValue(store, (s) => s.isDirty(), false)
}
