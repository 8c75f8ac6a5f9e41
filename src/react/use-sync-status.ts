import { useRef } from 'react'
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
 *
 * With a `selector`, the part of it the component uses, re-rendered only when that changes (compared by
 * `equals`, default `Object.is`): `useSyncStatus(store, (s) => s.connection === 'online')` renders
 * once when the connection comes up, not at each edit's pending count. Default: the whole status.
 */
export function useSyncStatus(store: SyncedStore): SyncStatus
export function useSyncStatus<T>(store: SyncedStore, selector: (status: SyncStatus) => T, equals?: (a: T, b: T) => boolean): T
export function useSyncStatus<T>(store: SyncedStore, selector?: (status: SyncStatus) => T, equals: (a: T, b: T) => boolean = Object.is): T | SyncStatus {
  // The last status and what was selected from it: the same value while it is equal (useSyncExternalStore
  // needs a stable snapshot, and an object a selector builds would otherwise be new at every call).
  // A new selector (an inline one, at each render) is run again: it may read props.
  const last = useRef<{ s: SyncStatus; sel: (status: SyncStatus) => T; v: T } | null>(null)
  const server = useRef<{ v: T } | null>(null)
  const select = (s: SyncStatus): T | SyncStatus => {
    if (!selector) return s
    const l = last.current
    if (l?.s === s && l.sel === selector) return l.v
    const v = selector(s)
    last.current = { s, sel: selector, v: l && equals(l.v, v) ? l.v : v }
    return last.current.v
  }
  return useSyncValue(store, (sync) => select(sync.status()), selector ? (server.current ??= { v: selector(SERVER_STATUS) }).v : SERVER_STATUS)
}

/** Online, but connection attempts to the sync server fail (down, restarting, refused); retried in the background. */
export function isUnreachable(s: SyncStatus): boolean {
  return s.connection === 'connecting' && s.error?.code === 'DISCONNECTED'
}
