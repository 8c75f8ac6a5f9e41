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

const REFUSALS = new Set(['UNAUTHENTICATED', 'FORBIDDEN', 'PROTOCOL_VERSION'])

/** The server refused this client for good (credentials, access, protocol version): not retried until the app calls connect(). */
export function isRefused(s: SyncStatus): boolean {
  return s.connection === 'offline' && s.error !== undefined && REFUSALS.has(s.error.code)
}
