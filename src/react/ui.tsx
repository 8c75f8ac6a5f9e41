import { type CSSProperties, type FocusEvent, useEffect, useLayoutEffect, useRef, useState } from 'react'
import type { Conflict, PresenceUser } from '../core/types'

export const cx = (...c: unknown[]): string => c.filter(Boolean).join(' ')

/** useLayoutEffect where it runs (React 18 warns about it while rendering on a server, where it never runs). */
export const useClientLayoutEffect = typeof document === 'undefined' ? useEffect : useLayoutEffect

/**
 * Conflicts put off in this page load, by kind of component ("Decide later" in the dialog, a dismissed
 * toast), under their document: a store made again for the same document (a client-side navigation back
 * to a board) keeps them put off, where the dialog opened again at each visit (a Next.js trial). A reload
 * asks again.
 */
const PUT_OFF = { modal: new Set<string>(), toast: new Set<string>() }

/** `[unseen, markSeen]`: true while the inbox holds a conflict of `doc` not put off by a `markSeen()` of this kind. */
export function useUnseen(doc: string, conflicts: Conflict[], kind: keyof typeof PUT_OFF): [boolean, () => void] {
  const putOff = PUT_OFF[kind]
  const [, rerender] = useState(0)
  const key = (c: Conflict) => `${doc}\u0000${c.id}`
  const putAway = () => {
    for (const c of conflicts) putOff.add(key(c))
    rerender((n) => n + 1)
  }
  return [conflicts.some((c) => !putOff.has(key(c))), putAway]
}

/**
 * Closes a popup (`shown`) when the user goes elsewhere: a press outside `ref`, focus leaving it (for
 * another element or for none), or Escape. A reason or list left open after the user moved on covered what was
 * under it, and Escape no longer reached it.
 */
export function useDismiss(shown: boolean, ref: { current: Element | null }, close: () => void): void {
  useEffect(() => {
    const el = ref.current
    if (!shown || !el) return
    // A press inside (on the reason's text, say) moves focus to nowhere too: that is not leaving.
    let pressedInside = false
    const outside = (e: Event) => {
      const inside = el.contains(e.target as Node)
      if (e.type === 'pointerdown') pressedInside = inside
      if (!inside) close()
    }
    // Escape wherever focus is (after a press on the reason's text, or in Safari, where a click does not
    // focus a button, it was not on the button that handled it).
    const typed = (e: KeyboardEvent) => {
      pressedInside = false
      if (e.key === 'Escape' && !e.defaultPrevented) close()
    }
    const left = (e: Event) => {
      const to = (e as globalThis.FocusEvent).relatedTarget as Node | null
      if (to ? !el.contains(to) : !pressedInside) close()
    }
    document.addEventListener('pointerdown', outside)
    document.addEventListener('focusin', outside)
    document.addEventListener('keydown', typed)
    el.addEventListener('focusout', left)
    return () => {
      document.removeEventListener('pointerdown', outside)
      document.removeEventListener('focusin', outside)
      document.removeEventListener('keydown', typed)
      el.removeEventListener('focusout', left)
    }
  }, [shown])
}

const inDialog = (el: Element) => !!el.closest('[aria-modal="true"]')

/**
 * Focus inside a notice whose content goes away (its action made it go, or a dialog opened from it
 * settled what it showed) goes back to where it came from, instead of falling to <body>. Returns the
 * focus handlers for the notice's root; `shown`: its content is rendered. A move into a dialog (opened
 * from the notice) still counts as inside; focus the user moved elsewhere is left alone.
 */
export function useFocusReturn(shown: boolean): { onFocus: (e: FocusEvent) => void; onBlur: (e: FocusEvent) => void } {
  const from = useRef<HTMLElement | null>(null)
  const inside = useRef(false)
  const outside = (e: FocusEvent) => {
    const r = e.relatedTarget as HTMLElement | null
    return r && !e.currentTarget.contains(r) && !inDialog(r) ? r : null
  }
  useLayoutEffect(() => {
    if (shown || !inside.current) return
    inside.current = false
    const back = from.current
    // After the dialog's own focus return (it may still have somewhere to go).
    setTimeout(() => {
      const a = document.activeElement
      if (back?.isConnected && (!a || a === document.body)) back.focus()
    })
  }, [shown])
  return {
    onFocus: (e) => {
      inside.current = true
      const r = outside(e)
      if (r) from.current = r
    },
    // Focus moving to nowhere (an element removed) is not leaving.
    onBlur: (e) => {
      if (outside(e)) inside.current = false
    },
  }
}

const lin = (v: number) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4)

/** Black or white, whichever reads better on a hex colour (WCAG luminance); undefined for other formats. */
export function textOn(color?: string): string | undefined {
  if (!color || !/^#([\da-f]{3}){1,2}$/i.test(color)) return
  const h = color.length === 4 ? color.replace(/\w/g, '$&$&') : color
  const n = parseInt(h.slice(1), 16)
  const l = 0.2126 * lin(n >> 16) + 0.7152 * lin((n >> 8) & 255) + 0.0722 * lin(n & 255)
  return l > 0.18 ? '#111' : '#fff'
}

export const nameOf = (u: PresenceUser): string => u.name || u.id

/** This client's own name where it is shown (PresenceAvatars' `labels.you`). */
export const YOU = (name: string): string => `${name} (you)`

/**
 * A round avatar: the picture when there is one, else initials on the user's colour. `focusable`: it takes
 * focus (keyboard, or a tap on a touch screen), for a name shown on focus. `decorative`: hidden from
 * assistive technology, for an avatar beside the name in text.
 */
export function Avatar({ user, self, focusable, decorative, you = YOU, letters = 2 }: { user: PresenceUser; self?: boolean; focusable?: boolean; decorative?: boolean; you?: (name: string) => string; letters?: number }) {
  const name = nameOf(user)
  const style = { background: user.color, color: textOn(user.color) } as CSSProperties
  const label = self ? you(name) : name
  return (
    <span
      className={self ? 'zync-avatar zync-avatar-self' : 'zync-avatar'}
      {...(decorative ? { 'aria-hidden': true } : { role: 'img', 'aria-label': label })}
      {...(focusable ? { tabIndex: 0 } : {})}
      style={style}
    >
      {user.avatarUrl ? (
        <img src={user.avatarUrl} alt="" />
      ) : (
        name
          .split(/\s+/)
          .map((w) => w[0])
          .join('')
          .slice(0, letters)
          .toUpperCase()
      )}
    </span>
  )
}

/** The horizontal shift (px) that brings a box inside the viewport, 4 px from either edge (0 when it fits). */
export function shiftIntoView(r: DOMRect): number {
  const right = document.documentElement.clientWidth - 4
  return r.right > right ? Math.max(right - r.right, 4 - r.left) : r.left < 4 ? 4 - r.left : 0
}
