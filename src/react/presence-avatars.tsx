import { type SyncedStore } from './store'
import { Avatar, cx } from './ui'
import { usePresence } from './use-presence'

export interface PresenceAvatarsProps {
  /** The synced store (anything with a `sync` property). Required. */
  store: SyncedStore
  /** Most avatars shown; the rest collapse into a "+N" chip. Default: 5. */
  max?: number
  /** Show this client too, first, marked as you (a ring, and "(you)" in its name). Default: false. */
  includeSelf?: boolean
  /** Extra class on the list. Default: none. */
  className?: string
  /** Accessible name of the list; gets the number of people. Default: "N people here". */
  label?: (count: number) => string
}

/**
 * An overlapping stack of avatars (initials on each user's colour) of who is on the document: one per
 * person, however many tabs or devices they have open. Without includeSelf, the user's other tabs are
 * left out too.
 */
export function PresenceAvatars({ store, max = 5, includeSelf = false, className, label }: PresenceAvatarsProps) {
  const { self, others } = usePresence(store)
  const seen = new Set<string>(self && !includeSelf ? [self.user.id] : [])
  const all = (includeSelf && self ? [self, ...others] : others).filter((p) => !seen.has(p.user.id) && seen.add(p.user.id))
  const rest = all.length - max
  return (
    <ul className={cx('zync-avatars', className)} aria-label={label ? label(all.length) : `${all.length} people here`}>
      {all.slice(0, max).map((p) => (
        <li key={p.clientId} data-self={p.self || undefined}>
          <Avatar user={p.user} self={p.self} />
        </li>
      ))}
      {rest > 0 && (
        <li>
          <span className="zync-avatar zync-avatar-more" role="img" aria-label={`${rest} more`}>
            +{rest}
          </span>
        </li>
      )}
    </ul>
  )
}
