import type { PendingOperation } from '../core/types'
import { NONE, type SyncedStore, useSyncValue } from './store'

/** The outbox, oldest first; the same array until the outbox changes. */
export function usePendingOperations(store: SyncedStore): PendingOperation[] {
  return useSyncValue(store, (s) => s.pendingOperations(), NONE)
}
