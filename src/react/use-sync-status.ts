import type { SyncStatus } from '../core/types'
import { type SyncedStore, useSyncValue } from './store'

/** The store's sync status; re-renders on every status change (connection, pending, conflicts, errors). */
export function useSyncStatus(store: SyncedStore): SyncStatus {
  return useSyncValue(store, (s) => s.status())
}

/** Online, but connection attempts to the sync server fail (down, restarting, refused); retried in the background. */
export function isUnreachable(s: SyncStatus): boolean {
  return s.connection === 'connecting' && s.error?.code === 'DISCONNECTED'
}
