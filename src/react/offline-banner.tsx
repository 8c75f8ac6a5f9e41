import { type SyncedStore } from './store'
import { cx } from './ui'
import { useSyncStatus } from './use-sync-status'

export interface OfflineBannerLabels {
  title: string
  /** The second sentence; gets the number of changes waiting. */
  message: (pending: number) => string
}

const LABELS: OfflineBannerLabels = {
  title: 'You’re offline.',
  message: (n) =>
    n
      ? `${n.toLocaleString()} change${n === 1 ? ' is' : 's are'} waiting to sync.`
      : 'Changes you make will sync when you reconnect.',
}

export interface OfflineBannerProps {
  /** The synced store (anything with a `sync` property). Required. */
  store: SyncedStore
  /** Extra class on the banner. Default: none. */
  className?: string
  /** Replaces any of the English texts. Default: the English texts. */
  labels?: Partial<OfflineBannerLabels>
}

/** A banner while the connection is offline, saying how many changes are waiting. Renders an empty live region otherwise. */
export function OfflineBanner({ store, className, labels }: OfflineBannerProps) {
  const L = { ...LABELS, ...labels }
  const s = useSyncStatus(store)
  return (
    <div role="status">
      {s.connection === 'offline' && (
        <div className={cx('zync-banner', className)}>
          <span className="zync-dot" aria-hidden="true" />
          <p>
            <strong>{L.title}</strong> {L.message(s.pending)}
          </p>
        </div>
      )}
    </div>
  )
}
