import { useMemo } from 'react'
import type { Conflict, Resolution } from '../core/types'
import { NONE, type SyncedStore, useSyncValue } from './store'

export interface UseConflictsResult {
  /** Open conflicts, oldest first; the same array until the inbox changes. */
  conflicts: Conflict[]
  /** Settles one conflict: keep 'local', keep 'remote', or `{ value }` for a merged value. */
  resolve(id: string, resolution: Resolution): Promise<void>
  /** Settles every open conflict the same way. */
  resolveAll(resolution: Resolution): Promise<void>
}

/** The conflict inbox and its actions. The result keeps its identity while the inbox is unchanged. */
export function useConflicts(store: SyncedStore): UseConflictsResult {
  const sync = store.sync
  const conflicts = useSyncValue(store, (s) => s.conflicts(), NONE)
  return useMemo(
    () => ({
      conflicts,
      resolve: (id, r) => sync.resolve(id, r),
      // Reads the inbox at call time, not at render time, so nothing resolved meanwhile is resolved twice.
      resolveAll: async (r) => {
        await Promise.all(sync.conflicts().map((c) => sync.resolve(c.id, r)))
      },
    }),
    [sync, conflicts],
  )
}
