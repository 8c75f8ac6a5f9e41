import { useId } from 'react'
import { createPortal } from 'react-dom'
import { type SyncedStore, useIsClient, useModalShown } from './store'
import { cx, useFocusReturn, useUnseen } from './ui'
import { useConflicts } from './use-conflicts'

export interface ConflictToastLabels {
  /** The notice; gets the number of open conflicts. Default '1 conflict needs your decision', 'N conflicts need your decision'. */
  message: (count: number) => string
  /** The action that calls `onResolve`. Default 'Resolve'. */
  resolve: string
  /** The accessible name of the × button. Default 'Dismiss'. */
  dismiss: string
  /** The name of the landmark around the notice while it shows (it is portalled into `body`). Default 'Notifications'. */
  region: string
}

const LABELS: ConflictToastLabels = {
  message: (n) => (n === 1 ? '1 conflict needs your decision' : `${n.toLocaleString()} conflicts need your decision`),
  resolve: 'Resolve',
  dismiss: 'Dismiss',
  region: 'Notifications',
}

export interface ConflictToastProps {
  /** The synced store (anything with a `sync` property). Required. */
  store: SyncedStore
  /** Called by the Resolve action, typically to open a `ConflictModal`. Required. */
  onResolve: () => void
  /** Extra class on the toast. Default: none. */
  className?: string | undefined
  /** Replaces any of the English texts. Default: the English texts. */
  labels?: Partial<ConflictToastLabels> | undefined
}

/**
 * A non-blocking notice (polite live region, bottom corner) while the inbox holds conflicts.
 * Dismissing hides it until a new conflict arrives; the conflicts stay in the inbox. It steps aside while
 * a ConflictModal of the same store is shown.
 */
export function ConflictToast({ store, onResolve, className, labels }: ConflictToastProps) {
  const L = { ...LABELS, ...labels }
  const { conflicts } = useConflicts(store)
  const [unseen, dismiss] = useUnseen(store.sync.name, conflicts, 'toast')
  // A ConflictModal of the same store already asks for the same decisions: no second notice behind its overlay.
  const modal = useModalShown(store)
  // Focus in the toast, or in a modal opened from it, goes back where it came from when the toast goes.
  const focus = useFocusReturn(unseen)
  const id = useId()
  if (!useIsClient()) return null
  const message = L.message(conflicts.length)
  return createPortal(
    // A landmark while the notice shows: portalled into body, it was outside the app's landmarks, where
    // landmark navigation does not reach (an axe audit).
    <div className="zync-toast-region" {...(unseen && !modal ? { role: 'region', 'aria-label': L.region } : {})} {...focus}>
      {/* The live region stays mounted so screen readers announce the notice when it appears, and holds the
          message only: the buttons are not read out with it. */}
      <p role="status" className="zync-sr">
        {unseen && !modal ? message : ''}
      </p>
      {unseen && (
        // Hidden, not unmounted, while the modal is shown: its Resolve button (which may have opened the
        // modal) is where focus returns when the modal closes.
        <div className={cx('zync-toast', className)} hidden={modal} role="group" aria-labelledby={id}>
          <span className="zync-toast-icon" aria-hidden="true">
            !
          </span>
          {/* Read as the group's name (and by the live region), not a second time in browse mode. */}
          <p id={id} aria-hidden="true" dir="auto">
            {message}
          </p>
          <span className="zync-toast-actions">
            <button className="zync-btn zync-btn-primary" onClick={onResolve}>
              {L.resolve}
            </button>
            <button className="zync-btn zync-btn-ghost zync-icon-btn" aria-label={L.dismiss} onClick={dismiss}>
              ×
            </button>
          </span>
        </div>
      )}
    </div>,
    document.body,
  )
}
