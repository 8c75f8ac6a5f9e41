import type { ReactNode } from 'react'
import { type SyncedStore } from './store'
import { cx, useFocusReturn } from './ui'
import { isRefusal } from '../core/errors'
import { isUnreachable, useSyncStatus } from './use-sync-status'

export interface OfflineBannerLabels {
  /** The title while offline. Default 'You’re offline.' */
  title: string
  /** The title while online but the sync server cannot be reached (down, restarting). Default 'Can’t reach the sync server.' */
  unreachable: string
  /** The title when the server refused this client (credentials, access, protocol version); not retried. Default 'The sync server refused this connection.' */
  refused: string
  /** The second sentence; gets the number of changes waiting. Default 'N changes are waiting to sync.', or with none 'Changes you make will sync when you reconnect.' */
  message: (pending: number) => string
  /** The second sentence after a refusal (the changes wait until access is restored); gets the number waiting. Default 'N changes are kept on this device until access is restored.' */
  refusedMessage: (pending: number) => string
}

const LABELS: OfflineBannerLabels = {
  title: 'You’re offline.',
  unreachable: 'Can’t reach the sync server.',
  refused: 'The sync server refused this connection.',
  message: (n) =>
    n
      ? `${n.toLocaleString()} change${n === 1 ? ' is' : 's are'} waiting to sync.`
      : 'Changes you make will sync when you reconnect.',
  refusedMessage: (n) =>
    n
      ? `${n.toLocaleString()} change${n === 1 ? ' is' : 's are'} kept on this device until access is restored.`
      : 'Changes you make are kept on this device until access is restored.',
}

export interface OfflineBannerProps {
  /** The synced store (anything with a `sync` property). Required. */
  store: SyncedStore
  /** Extra class on the banner. Default: none. */
  className?: string | undefined
  /** Replaces any of the English texts. Default: the English texts. */
  labels?: Partial<OfflineBannerLabels> | undefined
  /**
   * An action shown at the end of the banner, such as a "Sign in again" button for a refusal; gets the
   * banner's state. Return undefined for none. Default: none.
   */
  action?: ((state: 'offline' | 'unreachable' | 'refused') => ReactNode) | undefined
}

/**
 * A banner while changes cannot sync: the connection is offline, the sync server cannot be reached
 * (a failed connection attempt, retried in the background), or it refused this client (`data-state`
 * offline | unreachable | refused). Says how many changes are waiting.
 * Renders an empty live region otherwise.
 */
export function OfflineBanner({ store, className, labels, action }: OfflineBannerProps) {
  const L = { ...LABELS, ...labels }
  const s = useSyncStatus(store)
  const state = isUnreachable(s) ? 'unreachable' : isRefusal(s) ? 'refused' : s.connection === 'offline' ? 'offline' : undefined
  const focus = useFocusReturn(!!state)
  // Only the sentence is a live region: the action's text is not announced with it. The root stays
  // mounted, so focus in the action goes back where it came from when the banner goes.
  return (
    <div className={state && cx('zync-banner', className)} data-state={state} {...focus}>
      {state && <span className="zync-dot" aria-hidden="true" />}
      <p role="status" className="zync-banner-text" dir="auto">
        {state && (
          <>
            <strong>{state === 'offline' ? L.title : L[state]}</strong> {(state === 'refused' ? L.refusedMessage : L.message)(s.pending + s.unpersisted)}
          </>
        )}
      </p>
      {state && action && <span className="zync-banner-action">{action(state)}</span>}
    </div>
  )
}
