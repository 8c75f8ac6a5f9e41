import { useCallback, useMemo, useRef } from 'react'
import type { Presence, PresenceUser } from '../core/types'
import { type SyncedStore, useSyncValue } from './store'

export interface UsePresenceResult<P = Record<string, unknown>> {
  /** This client's entry, when it has announced itself. */
  self: Presence<P> | undefined
  /** Everyone else present (after the selector). */
  others: Presence<P>[]
  /** Merges `partial` into this client's presence state and broadcasts it. */
  update(partial: Partial<P>): void
}

type Peers<P> = { self: Presence<P> | undefined; others: Presence<P>[] }
type Same<P> = (a: Presence<P>, b: Presence<P>) => boolean

const EMPTY: Peers<never> = { self: undefined, others: [] }
const identical = (a: unknown, b: unknown) => a === b

/** Same person on the same connection, shown the same way: what avatars and the indicator display. */
export const samePerson = (a: Presence<unknown>, b: Presence<unknown>): boolean => a.clientId === b.clientId && a.self === b.self && sameUser(a.user, b.user)
const sameUser = (a: PresenceUser, b: PresenceUser) => a === b || (a.id === b.id && a.name === b.name && a.color === b.color && a.avatarUrl === b.avatarUrl)

/**
 * The selected peers, split into self and others. The selection runs inside the external store's
 * snapshot, and the previous result is handed back while `same` holds for every entry: a peer's update
 * that changes nothing selected (a cursor moving, for a component that shows only who is here)
 * re-renders nothing.
 */
export function usePeers<P>(store: SyncedStore, selector: ((peers: Presence<P>[]) => Presence<P>[]) | undefined, same: Same<P>): Peers<P> {
  const cache = useRef<{ peers: Presence<P>[]; selector: typeof selector; result: Peers<P> } | undefined>(undefined)
  const snapshot = (s: SyncedStore['sync']) => {
    const peers = s.presence() as Presence<P>[]
    const c = cache.current
    if (c && c.peers === peers && c.selector === selector) return c.result
    const selected = selector ? selector(peers) : peers
    const prev = c?.result
    let self = selected.find((p) => p.self)
    let others = selected.filter((p) => !p.self)
    if (prev && others.length === prev.others.length && others.every((p, i) => same(p, prev.others[i]!))) others = prev.others
    if (prev && self !== undefined && prev.self !== undefined && same(self, prev.self)) self = prev.self
    const result = prev && self === prev.self && others === prev.others ? prev : { self, others }
    cache.current = { peers, selector, result }
    return result
  }
  // On the server and while hydrating: nobody ("not known yet"), as every hook of zync/react.
  return useSyncValue(store, snapshot, EMPTY as Peers<P>, 'subscribePresence')
}

/**
 * Who is here. `selector` maps the peer list (filter, sort, slice) before it is split into
 * `self` and `others`; its result is memoized: `others` keeps its identity while it holds the same
 * peers, and an update of a peer the selector leaves out does not re-render. Pass a stable selector
 * (defined outside the component, or with useCallback).
 */
export function usePresence<P = Record<string, unknown>>(
  store: SyncedStore,
  selector?: (peers: Presence<P>[]) => Presence<P>[],
): UsePresenceResult<P> {
  const sync = store.sync
  const { self, others } = usePeers<P>(store, selector, identical)
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
