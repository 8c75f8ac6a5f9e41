import { useCallback, useMemo, useRef } from 'react'
import type { Presence } from '../core/types'
import { NONE, type SyncedStore, useSyncValue } from './store'

export interface UsePresenceResult<P = Record<string, unknown>> {
  /** This client's entry, when it has announced itself. */
  self: Presence<P> | undefined
  /** Everyone else present (after the selector). */
  others: Presence<P>[]
  /** Merges `partial` into this client's presence state and broadcasts it. */
  update(partial: Partial<P>): void
}

const same = (a: readonly unknown[], b: readonly unknown[]) => a.length === b.length && a.every((x, i) => x === b[i])

/**
 * Who is here. `selector` maps the peer list (filter, sort, slice) before it is split into
 * `self` and `others`; its result is memoized: `others` keeps its identity while it holds the same peers.
 */
export function usePresence<P = Record<string, unknown>>(
  store: SyncedStore,
  selector?: (peers: Presence<P>[]) => Presence<P>[],
): UsePresenceResult<P> {
  const sync = store.sync
  const peers = useSyncValue(store, (s) => s.presence(), NONE, 'subscribePresence') as Presence<P>[]
  const prev = useRef<Presence<P>[]>([])
  const selected = useMemo(() => (selector ? selector(peers) : peers), [peers, selector])
  const self = selected.find((p) => p.self)
  let others = selected.filter((p) => !p.self)
  if (same(others, prev.current)) others = prev.current
  // Written during render on purpose: the value is derived and idempotent, so StrictMode's double render is harmless.
  prev.current = others
  // Stable for the store's lifetime (reads the current state when called), so it is safe in effect deps.
  const update = useCallback(
    (partial: Partial<P>) => {
      const mine = sync.presence().find((p) => p.self)
      sync.setPresence({ ...mine?.state, ...partial } as Record<string, unknown>)
    },
    [sync],
  )
  return useMemo(() => ({ self, others, update }), [self, others, update])
}
