import type { SyncStatus } from '../core/types'
import { type SyncedStore, useSyncValue } from './store'

/** The store's sync status; re-renders on every status change (connection, pending, conflicts, errors). */
export function useSyncStatus(store: SyncedStore): SyncStatus {
  return useSyncValue(store, (s) => s.status())
}
