import { EMPTY_LANES, type SyncStatus } from '../core/types'
import { type SyncedStore, useSyncValue } from './store'

/**
 * What server rendering and hydration show (no store state is known there): connecting, nothing
 * pending, not ready. The live status follows right after hydration.
 */
const SERVER_STATUS: SyncStatus = {
  connection: 'connecting',
  pending: 0,
  unpersisted: 0,
  lanes: EMPTY_LANES,
  conflicts: 0,
  deadLetters: 0,
  syncing: false,
  ready: false,
  readOnly: false,
  attempts: 0,
  seq: 0,
}

/**
 * The store's sync status; re-renders on every status change (connection, pending, conflicts, errors).
 * On the server and during hydration: `connection: 'connecting'`, `ready: false`, nothing pending.
 */
export function useSyncStatus(store: SyncedStore): SyncStatus {
  return useSyncValue(store, (s) => s.status(), SERVER_STATUS)
}

/** Online, but connection attempts to the sync server fail (down, restarting, refused); retried in the background. */
export function isUnreachable(s: SyncStatus): boolean {
  return s.connection === 'connecting' && s.error?.code === 'DISCONNECTED'
}
