import { useCallback } from 'react'
import type { Presence } from '../core/types'
import { type SyncedStore } from './store'
import { Avatar, cx, nameOf } from './ui'
import { samePerson, usePeers } from './use-presence'

type Focus = { focus?: { entityId?: string; field?: string } | null }

export interface PresenceIndicatorProps {
  /** The synced store (anything with a `sync` property). Required. */
  store: SyncedStore
  /**
   * The entity of the field, matched as is against peers' presence `focus.entityId` (whatever the app
   * sets there; `collection/id`, as `Conflict.entity` names entities, is a good convention). Required.
   */
  entityId: string
  /** The field, matched against peers' presence `focus.field`. Required. */
  field: string
  /** Extra class on the indicator. Default: none. */
  className?: string | undefined
  /** The text; gets the names of who is editing. Default: "Ana is editing", "Ana and Ben are editing", "Ana and 2 others are editing". */
  label?: ((names: string[]) => string) | undefined
}

const LABEL = (n: string[]) =>
  (n.length < 3 ? n.join(' and ') : `${n[0]} and ${n.length - 1} others`) + (n.length > 1 ? ' are' : ' is') + ' editing'

/**
 * Who else is editing one field, from peers' presence state `focus: { entityId, field }`
 * (set it with `usePresence(store).update({ focus })`). Empty when nobody is.
 */
export function PresenceIndicator({ store, entityId, field, className, label = LABEL }: PresenceIndicatorProps) {
  const select = useCallback(
    (peers: Presence<Focus>[]) => {
      // Other people only: the user's own other tabs are not "someone else editing", and a person with
      // two tabs on the field is named once.
      const me = peers.find((p) => p.self)?.user.id
      const seen = new Set<string>(me === undefined ? [] : [me])
      return peers.filter((p) => p.self || (p.state.focus != null && p.state.focus.entityId === entityId && p.state.focus.field === field && !seen.has(p.user.id) && seen.add(p.user.id)))
    },
    [entityId, field],
  )
  // Re-renders when who edits the field changes, not on every presence update (cursors moving).
  const { others } = usePeers<Focus>(store, select, samePerson)
  return (
    <span role="status" className={cx('zync-indicator', className)}>
      {others.length > 0 && (
        <>
          <span className="zync-avatars" aria-hidden="true">
            {others.slice(0, 3).map((p) => (
              // One initial: two did not fit 24 px beside each other, and the names are written next to them.
              <Avatar key={p.clientId} user={p.user} letters={1} />
            ))}
          </span>
          {label(others.map((p) => nameOf(p.user)))}
        </>
      )}
    </span>
  )
}
