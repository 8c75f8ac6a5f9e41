import { useId, useRef, useState } from 'react'
import { type SyncedStore } from './store'
import { Avatar, cx, nameOf, shiftIntoView, useClientLayoutEffect, useDismiss, YOU } from './ui'
import { samePerson, usePeers } from './use-presence'


export interface PresenceAvatarsProps {
  /** The synced store (anything with a `sync` property). Required. */
  store: SyncedStore
  /** Most avatars shown (a whole number, 0 or more); the rest collapse into a "+N" button that lists them. Default: 5. */
  max?: number | undefined
  /** Show this client too, first, marked as you (a ring, and "(you)" in its name). Default: false. */
  includeSelf?: boolean | undefined
  /** Extra class on the list. Default: none. */
  className?: string | undefined
  /** Accessible name of the list; gets the number of people. Default: "1 person here", "N people here". */
  label?: ((count: number) => string) | undefined
  /** The other texts (any of them). Default: the English texts. */
  labels?: Partial<PresenceAvatarsLabels> | undefined
}

export interface PresenceAvatarsLabels {
  /** Names the "+N" button and its list; gets the number of people it stands for. Default 'N more'. */
  more: (count: number) => string
  /** This client's name where it is shown. Default 'Ana (you)' (the name, then "(you)"). */
  you: (name: string) => string
}

const MORE = (n: number) => `${n} more`
const PEOPLE = (n: number) => `${n} ${n === 1 ? 'person' : 'people'} here`

/** Moves a name that is being shown back inside the viewport when it would stick out of either side. */
function fitTip(e: { currentTarget: HTMLElement }): void {
  const tip = e.currentTarget.querySelector<HTMLElement>('.zync-tip')
  if (!tip) return
  tip.style.removeProperty('--zync-tip-shift')
  const r = tip.getBoundingClientRect()
  if (r.width === 0) return
  const shift = shiftIntoView(r)
  if (shift !== 0) tip.style.setProperty('--zync-tip-shift', `${Math.round(shift)}px`)
}

/**
 * An overlapping stack of avatars (initials on each user's colour) of who is on the document: one per
 * person, however many tabs or devices they have open. Without includeSelf, the user's other tabs are
 * left out too.
 *
 * Names are reachable without a mouse: each avatar takes focus (Tab, or a tap on a touch screen) and
 * then shows its name, as on hover; the "+N" button opens a list of the people it stands for
 * (Escape or a second press closes it).
 */
export function PresenceAvatars({ store, max = 5, includeSelf = false, className, label = PEOPLE, labels }: PresenceAvatarsProps) {
  const moreLabel = labels?.more ?? MORE
  const you = labels?.you ?? YOU
  // Re-renders when who is here changes, not when someone's presence state does (a cursor moving).
  const { self, others } = usePeers(store, undefined, samePerson)
  const seen = new Set<string>(self && !includeSelf ? [self.user.id] : [])
  const all = (includeSelf && self ? [self, ...others] : others).filter((p) => !seen.has(p.user.id) && seen.add(p.user.id))
  // A whole number of at least 0 (a negative one sliced from the end: 11 avatars and "+1" for -1).
  const limit = Number.isFinite(max) ? Math.max(0, Math.floor(max)) : 5
  const rest = all.slice(limit)
  const [open, setOpen] = useState(false)
  const more = useRef<HTMLLIElement>(null)
  const restId = useId()
  const shown = open && rest.length > 0
  const [align, setAlign] = useState<'end' | 'start'>('end')
  // Opens under "+N", right-aligned with it; flipped to start there when that would leave the viewport
  // on the left (a stack at the start of a toolbar).
  useClientLayoutEffect(() => {
    if (!shown) return setAlign('end')
    const box = more.current?.querySelector('.zync-avatars-rest')?.getBoundingClientRect()
    if (box && box.left < 0) setAlign('start')
  }, [shown])
  useDismiss(shown, more, () => setOpen(false))
  return (
    <ul className={cx('zync-avatars', className)} aria-label={label(all.length)}>
      {all.slice(0, limit).map((p) => (
        <li key={p.clientId} data-self={p.self || undefined} onPointerEnter={fitTip} onFocus={fitTip}>
          <Avatar user={p.user} self={p.self} you={you} focusable />
          <span className="zync-tip" aria-hidden="true">
            {p.self ? you(nameOf(p.user)) : nameOf(p.user)}
          </span>
        </li>
      ))}
      {rest.length > 0 && (
        <li ref={more}>
          <button
            type="button"
            className="zync-avatar zync-avatar-more"
            aria-label={moreLabel(rest.length)}
            aria-expanded={shown}
            aria-controls={shown ? restId : undefined}
            onClick={() => setOpen(!shown)}
            onKeyDown={(e) => {
              if (e.key === 'Escape' && shown) {
                e.stopPropagation()
                setOpen(false)
              }
            }}
          >
            {/* "+7" in a right-to-left page too (the sign is neutral: it showed as "7+"). */}
            <span dir="ltr">+{rest.length}</span>
          </button>
          {shown && (
            <ul id={restId} className="zync-avatars-rest" data-align={align} aria-label={moreLabel(rest.length)}>
              {rest.map((p) => (
                <li key={p.clientId}>
                  <Avatar user={p.user} self={p.self} decorative />
                  {p.self ? you(nameOf(p.user)) : nameOf(p.user)}
                </li>
              ))}
            </ul>
          )}
        </li>
      )}
    </ul>
  )
}
