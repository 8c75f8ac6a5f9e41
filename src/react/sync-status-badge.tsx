import { useEffect, useId, useRef, useState } from 'react'
import { isRefusal, type ZyncError } from '../core/errors'
import type { SyncStatus } from '../core/types'
import { type SyncedStore } from './store'
import { cx, shiftIntoView, useClientLayoutEffect, useDismiss } from './ui'
import { isUnreachable, useSyncStatus } from './use-sync-status'

export type SyncBadgeState = 'online' | 'offline' | 'unreachable' | 'refused' | 'syncing' | 'error' | 'conflict'

export interface SyncStatusBadgeLabels extends Record<SyncBadgeState, string> {
  /** Connected, nothing waiting. Default 'Synced'. */
  online: string
  /** Default 'Offline'. */
  offline: string
  /** Online, but the sync server cannot be reached (retried in the background). Default 'Can’t reach server'. */
  unreachable: string
  /** The server refused the credentials or access (not retried until `connect()`). Default 'Access refused'. */
  refused: string
  /** Changes on their way. Default 'Syncing'. */
  syncing: string
  /** Something failed (storage, dead letters). Default 'Sync error'. */
  error: string
  /** Connected and idle, conflicts waiting in the inbox. Default 'Needs review'. */
  conflict: string
  /** The pending count; gets the number of changes waiting to sync (`status().pending + unpersisted`). Default 'N pending'. */
  pending: (count: number) => string
  /** The open conflicts, shown in every state while there are some; gets their number. Default '1 conflict', 'N conflicts'. */
  conflicts: (count: number) => string
  /** Changes the server refused for good (dead letters), shown while there are some; gets their number. Default 'N not synced'. */
  failed: (count: number) => string
  /** Shown while the server refuses this user's edits to the document (`status().readOnly`). Default 'View only'. */
  readOnly: string
  /**
   * The reason while the status carries an error: the badge's tooltip (`title`), shown under it with "Why?", and read by screen readers
   * after the state. Gets the error, whose `code` says what went wrong. Default: the error's English message.
   */
  errorTitle: (error: ZyncError) => string
  /** The button that shows the reason on touch and keyboard (a tooltip needs a mouse). Default 'Why?'. */
  why: string
}

const LABELS: SyncStatusBadgeLabels = {
  online: 'Synced',
  offline: 'Offline',
  unreachable: 'Can’t reach server',
  refused: 'Access refused',
  syncing: 'Syncing',
  error: 'Sync error',
  conflict: 'Needs review',
  pending: (n) => `${n.toLocaleString()} pending`,
  conflicts: (n) => `${n.toLocaleString()} conflict${n === 1 ? '' : 's'}`,
  failed: (n) => `${n.toLocaleString()} not synced`,
  readOnly: 'View only',
  errorTitle: (e) => e.message.replace(/^\[zync\] /, ''),
  why: 'Why?',
}

export interface SyncStatusBadgeProps {
  /** The synced store (anything with a `sync` property). Required. */
  store: SyncedStore
  /** Extra class on the badge. Default: none. */
  className?: string | undefined
  /** Replaces any of the English texts. Default: the English texts. */
  labels?: Partial<SyncStatusBadgeLabels> | undefined
}

/** How long a write from a synced state may take before the badge says Syncing. */
const SYNCING_AFTER_MS = 400

/**
 * The status to show: as it is, except that leaving a settled state (Synced, Needs review) for
 * Syncing shows only once it lasts SYNCING_AFTER_MS. An edit acknowledged in a few ms online would
 * otherwise flip the badge (and its live region) to "Syncing · 1 pending" and back on every keystroke.
 */
function useCalm(s: SyncStatus): SyncStatus {
  // What the badge showed at the last commit (set after it: a render React throws away, as in a
  // transition, must not count). Only the wait's start and end set state: storing each new status in
  // state (one more render per status) chained into "Maximum update depth exceeded" while edits
  // streamed in.
  const shown = useRef(s)
  const [expired, setExpired] = useState(false)
  const settled = (st: SyncStatus) => {
    const b = badgeState(st)
    return b === 'online' || b === 'conflict'
  }
  const waiting = badgeState(s) === 'syncing' && settled(shown.current)
  const result = waiting && !expired ? shown.current : s
  useClientLayoutEffect(() => {
    shown.current = result
  })
  // Timed from the start of the wait: status changes during it (a replay's acks) must not restart it.
  useEffect(() => {
    if (!waiting) {
      setExpired(false)
      return
    }
    const t = setTimeout(() => setExpired(true), SYNCING_AFTER_MS)
    return () => clearTimeout(t)
  }, [waiting])
  return result
}

function badgeState(s: SyncStatus): SyncBadgeState {
  if (isUnreachable(s)) return 'unreachable'
  if (isRefusal(s)) return 'refused'
  // Dead letters stay an error after the error itself is gone (a later write succeeded, a reload): those
  // changes will never sync until the app retries or discards them.
  if (s.error || s.deadLetters > 0) return 'error'
  if (s.connection === 'offline') return 'offline'
  // Changes still waiting while connected are on their way (another tab of this device may be the one
  // sending them): never "Synced" beside a pending count.
  if (s.syncing || s.connection === 'connecting' || s.pending + s.unpersisted > 0) return 'syncing'
  return s.conflicts > 0 ? 'conflict' : 'online'
}

/**
 * Connection state with the count of changes waiting, as a pill whose state (not its counts) is a
 * `role="status"` live region; `data-state` is online | offline |
 * unreachable (online, but the sync server cannot be reached; retried in the background) | refused (the
 * server refused the credentials or access: not retried until the app calls connect()) | syncing (also
 * while changes wait on a live connection, whichever tab sends them; from Synced or Needs review only
 * once it lasts 400 ms) |
 * error (also while dead letters wait: changes the server refused for good, see `deadLetters()`) |
 * conflict (connected and idle, but conflicts wait in the inbox: not "Synced").
 */
export function SyncStatusBadge({ store, className, labels }: SyncStatusBadgeProps) {
  const L = { ...LABELS, ...labels }
  const s = useCalm(useSyncStatus(store))
  const state = badgeState(s)
  // Every change not yet synced, written to IndexedDB or not yet (a field being typed into is
  // rewritten on each keystroke): the count does not flicker, and it matches usePendingOperations().
  const waiting = s.pending + s.unpersisted
  const reason = s.error && L.errorTitle(s.error)
  const [open, setOpen] = useState(false)
  const id = useId()
  const shown = open && !!reason
  const root = useRef<HTMLSpanElement>(null)
  useDismiss(shown, root, () => setOpen(false))
  // Kept inside the viewport: under a badge at the end of a header it ran past the edge, clipped, and
  // the page scrolled sideways (a new-user trial).
  const box = useRef<HTMLSpanElement>(null)
  useClientLayoutEffect(() => {
    const el = box.current
    if (!shown || !el) return
    el.style.translate = ''
    const shift = shiftIntoView(el.getBoundingClientRect())
    if (shift !== 0) el.style.translate = `${Math.round(shift)}px`
  }, [shown, reason])
  return (
    <span ref={root} className={cx('zync-badge', className)} data-state={state} title={reason}>
      {/* Only the state is a live region: counts change with every edit, and an OfflineBanner beside the
          badge announces them already (each edit was announced twice). They are read with the badge. */}
      <span role="status" className="zync-badge-state" dir="auto">
        <span className="zync-dot" aria-hidden="true" />
        {L[state]}
        {/* The reason, for screen readers (the tooltip is out of their reach, and of touch and keyboard). */}
        {reason && <span className="zync-sr">: {reason}</span>}
      </span>
      {s.readOnly && <span className="zync-badge-count zync-badge-readonly" dir="auto">{L.readOnly}</span>}
      {waiting > 0 && <span className="zync-badge-count" dir="auto">{L.pending(waiting)}</span>}
      {s.conflicts > 0 && <span className="zync-badge-count zync-badge-conflicts" dir="auto">{L.conflicts(s.conflicts)}</span>}
      {s.deadLetters > 0 && <span className="zync-badge-count zync-badge-failed" dir="auto">{L.failed(s.deadLetters)}</span>}
      {reason && (
        <button type="button" className="zync-badge-why" dir="auto" aria-expanded={shown} aria-controls={id} onClick={() => setOpen(!shown)} onKeyDown={(e) => e.key === 'Escape' && setOpen(false)}>
          {L.why}
        </button>
      )}
      {/* The reason under the badge, for touch and keyboard (the tooltip needs a mouse); aria-hidden: read with the state already. */}
      <span id={id} ref={box} className="zync-badge-reason" hidden={!shown} aria-hidden="true">
        {shown && reason}
      </span>
    </span>
  )
}
