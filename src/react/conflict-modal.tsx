import { type ReactNode, useEffect, useId, useRef, useState } from 'react'
import { createPortal } from 'react-dom'
import { isPlainObject, shapeMismatch } from '../core/diff'
import { mergeIdArrays, mergeObject } from '../core/merge'
import type { Conflict, Resolution } from '../core/types'
import { ConflictValue } from './conflict-value'
import { type SyncedStore, useIsClient, useShownModal } from './store'
import { cx, useClientLayoutEffect, useUnseen } from './ui'
import { useConflicts } from './use-conflicts'

export interface ConflictModalLabels {
  /** The dialog's heading. Default 'Resolve sync conflicts'. */
  title: string
  /** Under the heading. Default 'Changed here and elsewhere, each without seeing the other. Choose what to keep.' */
  description: string
  /** The column of the value before both changes. Default 'Before'. */
  base: string
  /** The column of this device's value. Default 'Mine'. */
  mine: string
  /** The column of the other side's value (the writer follows it: their name while they are present, else their user id). Default 'Theirs'. */
  theirs: string
  /** Default 'Keep mine'. */
  keepMine: string
  /** Default 'Keep theirs'. */
  keepTheirs: string
  /** Opens the editor of a merged value. Default 'Edit merged'. */
  edit: string
  /** The editor's label for a string field. Default 'Merged value'. */
  merged: string
  /** The editor's label when the value is edited as JSON (not a string field). Default 'Merged value (JSON)'. */
  mergedJson: string
  /** Applies the merged value. Default 'Apply'. */
  apply: string
  /** Leaves the editor, or the "Keep all" question. Default 'Cancel'. */
  cancel: string
  /**
   * Shown under "Edit merged" when the draft of a non-string value is not JSON (a string field is edited
   * as plain text). A string is followed by the parser's own message (the browser's language); a
   * function gets that message and says all of it. Default 'Invalid JSON'.
   */
  invalidJson: string | ((detail: string) => string)
  /**
   * Shown under "Edit merged" when the draft is JSON of neither side's type (a string where both sides
   * are objects): resolve() would refuse it. A string is followed by the expected types ('object',
   * 'number or null'); a function gets them and says all of it. Default 'Must be of the type of either side'.
   */
  wrongType: string | ((expected: string) => string)
  /** With several conflicts: settles every one with this device's side (asks first). Default 'Keep all mine'. */
  keepAllMine: string
  /** Default 'Keep all theirs'. */
  keepAllTheirs: string
  /**
   * "Keep all mine / theirs" asks once more before it settles every conflict: this text, beside Cancel and
   * the chosen action (focused). Gets the number of conflicts it will settle. Default 'This decides all N conflicts.'
   */
  confirmAll: (count: number) => string
  /** Closes the dialog; every conflict stays in the inbox. Default 'Decide later'. */
  later: string
  /** Below the first 25 conflicts (more are shown 25 at a time); gets how many are not shown. Default 'Show N more'. */
  showMore: (count: number) => string
  /**
   * Shown in place of a conflict that was settled elsewhere (another tab, or a later change) while an
   * "Edit merged" draft of it was open here, above the draft, which was not applied. Default
   * 'Settled elsewhere while you were editing. Your draft was not applied:'.
   */
  settledElsewhere: string
  /** Puts away such a draft. Default 'Dismiss'. */
  dismiss: string
}

const LABELS: ConflictModalLabels = {
  title: 'Resolve sync conflicts',
  description: 'Changed here and elsewhere, each without seeing the other. Choose what to keep.',
  base: 'Before',
  mine: 'Mine',
  theirs: 'Theirs',
  keepMine: 'Keep mine',
  keepTheirs: 'Keep theirs',
  edit: 'Edit merged',
  merged: 'Merged value',
  mergedJson: 'Merged value (JSON)',
  apply: 'Apply',
  cancel: 'Cancel',
  invalidJson: 'Invalid JSON',
  wrongType: 'Must be of the type of either side',
  keepAllMine: 'Keep all mine',
  showMore: (n) => `Show ${n} more`,
  keepAllTheirs: 'Keep all theirs',
  confirmAll: (n) => `This decides all ${n.toLocaleString()} conflicts.`,
  later: 'Decide later',
  settledElsewhere: 'Settled elsewhere while you were editing. Your draft was not applied:',
  dismiss: 'Dismiss',
}

export type ConflictSideName = 'base' | 'local' | 'remote'

export interface ConflictModalProps {
  /** The synced store (anything with a `sync` property). Required. */
  store: SyncedStore
  /**
   * Controlled visibility. Default: undefined (uncontrolled), which opens whenever the inbox holds a
   * conflict the user has not yet put off with "Decide later" / Esc (in this page load, for the document,
   * whatever store of it shows the dialog: a reload shows them again); while they type in a text field of
   * the page, once they pause (1.5 s without a key) or leave the field. Never shown while the inbox is empty.
   */
  open?: boolean | undefined
  /** Called with `false` on "Decide later" / Esc and when the last conflict is resolved. Default: none. */
  onOpenChange?: ((open: boolean) => void) | undefined
  /** Extra class on the dialog panel. Default: none. */
  className?: string | undefined
  /** Replaces any of the English texts. Default: the English texts. */
  labels?: Partial<ConflictModalLabels> | undefined
  /** Custom rendering of one side of a conflict; return undefined to keep the built-in diff. Default: the built-in diff. */
  renderValue?: ((value: unknown, side: ConflictSideName, conflict: Conflict) => ReactNode) | undefined
  /**
   * The heading of one conflict, naming what it is about in the app's words (a card's title rather than
   * its id). It replaces the whole heading: include `conflict.field` yourself when a record can have
   * several conflicts. Return undefined to keep the built-in one. Default: the field, then the record's
   * `title`, `name` or `label` as the store holds it when it has one (not the field in conflict), else
   * the entity id (`notes Plan the launch`, `title cards/c1`; the name or id in a muted span).
   */
  renderTitle?: ((conflict: Conflict) => ReactNode) | undefined
}

/**
 * A record's own words for it, for a conflict's heading: its title, name or label as the store holds it
 * now (a UUID alone told three cards apart by nothing; a new-user trial). Read from `getState()` when the
 * store has one (any zustand store); not the field in conflict, whose value is the question.
 */
function recordName(store: SyncedStore, c: Conflict): string | undefined {
  const state = (store as { getState?: () => unknown }).getState?.()
  let rec: unknown = state
  for (const seg of c.path.slice(0, 2)) rec = rec !== null && typeof rec === 'object' ? (rec as Record<string, unknown>)[seg] : undefined
  if (rec === null || typeof rec !== 'object') return undefined
  for (const k of ['title', 'name', 'label']) {
    const v = (rec as Record<string, unknown>)[k]
    if (k !== c.field && typeof v === 'string' && v.trim() !== '') return v
  }
  return undefined
}
/** Scrolls the editor's Apply/Cancel into view when it opens (on a phone they land below the fold). Stable: runs on mount only. */
const reveal = (el: HTMLElement | null) => el?.scrollIntoView?.({ block: 'nearest' })
/** The same, as another ref: switched to while the draft is invalid, so the message pushing Apply down scrolls it back into view. */
const revealAgain = (el: HTMLElement | null) => reveal(el)
/** Focuses an element once, when it mounts (stable, so not again at each render). */
const focusOnMount = (el: HTMLElement | null) => el?.focus()
const FOCUSABLE = 'button:not(:disabled),textarea,input,[href],[tabindex="0"]'

/** The dialogs' overlays shown now, in the order they opened (two stores' dialogs in split panes). */
const openOverlays: HTMLElement[] = []
/** What inertBehind() made inert (never an element the app made inert itself). */
const madeInert = new Set<Element>()
/** The page's own `overflow` while a dialog locks its scroll. */
let overflowBefore: string | undefined
/**
 * The page behind the topmost dialog is inert (aria-modal alone leaves it to assistive technology, and a
 * click on the backdrop left focus on the page), and its scroll is locked; once the last dialog closes,
 * what was made inert is not any more. Recomputed at each open and close, so dialogs may close in any order.
 */
function inertBehind(): void {
  const top = openOverlays[openOverlays.length - 1]
  // Page scroll is locked from the first dialog's opening to the last one's closing.
  if (top && overflowBefore === undefined) {
    overflowBefore = document.body.style.overflow
    document.body.style.overflow = 'hidden'
  } else if (!top && overflowBefore !== undefined) {
    document.body.style.overflow = overflowBefore
    overflowBefore = undefined
  }
  for (const el of document.body.children) {
    if (top && el !== top && !el.hasAttribute('inert')) {
      el.setAttribute('inert', '')
      madeInert.add(el)
    } else if ((!top || el === top) && madeInert.delete(el)) el.removeAttribute('inert')
  }
  // Elements gone from the page meanwhile.
  if (!top) madeInert.clear()
}

/** How long an uncontrolled dialog waits after the last key typed into a text field of the page. */
const TYPING_PAUSE_MS = 1500
let typedAt = -Infinity
let typingWatched = false
const editable = (el: Element | null): boolean =>
  !!el && !el.closest('.zync-modal') && (el instanceof HTMLTextAreaElement || (el instanceof HTMLInputElement && !/^(button|checkbox|radio|range|submit|reset|file|color|image)$/.test(el.type)) || (el as HTMLElement).isContentEditable)
/**
 * Milliseconds until an uncontrolled dialog may open: while a person types in a text field of the page,
 * it waits for a pause. Opening took focus mid-word, and the next keys went to its buttons (a space on
 * "Decide later" closed it). Their writes meanwhile join a 'manual' conflict as theirs (CONFLICTS.md).
 */
function typingWait(): number {
  if (!typingWatched) {
    typingWatched = true
    document.addEventListener('keydown', (e) => editable(e.target as Element) && (typedAt = performance.now()), true)
  }
  return editable(document.activeElement) ? Math.max(0, typedAt + TYPING_PAUSE_MS - performance.now()) : 0
}

/** Conflicts rendered at first, and added by each "Show N more". */
const PAGE = 25

const button = (label: string, onClick: () => unknown, kind = '', autoFocus?: boolean, ref?: (el: HTMLElement | null) => void) => (
  <button className={'zync-btn ' + kind} onClick={onClick} data-autofocus={autoFocus} ref={ref}>
    {label}
  </button>
)

/**
 * Where "Edit merged" starts: mine, or both sides merged (mine where both changed the same thing):
 * objects by key, id-keyed arrays by element (the conflict's `idKey`, the store's `conflicts.idKey`).
 */
function startingPoint(c: Conflict): unknown {
  if (isPlainObject(c.local) && isPlainObject(c.remote)) return mergeObject(isPlainObject(c.base) ? c.base : {}, c.local, c.remote, 'mine').value
  if (c.idKey && Array.isArray(c.local) && Array.isArray(c.remote)) return mergeIdArrays(c.base, c.local, c.remote, c.idKey, 'mine')
  return c.local
}

/**
 * The conflict inbox as a blocking dialog (WAI-ARIA alertdialog). "Edit merged" edits a string field as
 * plain text and any other value as JSON (applied only once it parses). It starts from mine, except for
 * objects: those start from both sides merged key by key against Before (what only one side changed
 * comes from that side, nested objects alike; a key both changed to different values takes mine). Esc and "Decide later" only close
 * it: every conflict stays in the inbox and half-written merges are kept, so nothing is discarded
 * without an explicit choice. Clicking outside does nothing.
 */
export function ConflictModal({ store, open, onOpenChange, className, labels, renderValue, renderTitle }: ConflictModalProps) {
  const L = { ...LABELS, ...labels }
  const { conflicts, resolve, resolveAll } = useConflicts(store)
  const [unseen, markSeen] = useUnseen(store.sync.name, conflicts, 'modal')
  const [drafts, setDrafts] = useState<Record<string, string | undefined>>({})
  // "Keep all mine / theirs" waiting for its confirmation: a bulk choice is one Tab from where focus
  // starts, and it settles every conflict at once.
  const [bulk, setBulk] = useState<'local' | 'remote' | null>(null)
  // Rendered PAGE at a time: 500 conflicts were 11,000 nodes and a 585 ms task when they arrived (a trial).
  const [shownCount, setShownCount] = useState(PAGE)
  // Drafts whose conflict was settled elsewhere while the dialog was shown (another tab, a later change):
  // kept on screen, not applied, until dismissed. The draft used to vanish without a word.
  const [lost, setLost] = useState<Array<{ c: Conflict; draft: string }>>([])
  // Conflicts this dialog is settling: their drafts go without a notice.
  const settling = useRef(new Set<string>())
  const client = useIsClient()
  const wasShown = useRef(false)
  const ref = useRef<HTMLDivElement>(null)
  const id = useId()
  const wanted = client && (open ?? (unseen || lost.length > 0)) && conflicts.length + lost.length > 0
  const [, recheck] = useState(0)
  const wait = wanted && open === undefined && !wasShown.current ? typingWait() : 0
  useEffect(() => {
    if (!wait) return
    const t = setTimeout(() => recheck((n) => n + 1), wait + 10)
    return () => clearTimeout(t)
  })
  const shown = wanted && !wait
  // Before paint: the dialog does not blink shut when the last conflict goes this way.
  const last = useRef<Conflict[]>([])
  const lastShown = useRef(false)
  useClientLayoutEffect(() => {
    const ids = new Set(conflicts.map((c) => c.id))
    const gone = last.current.filter((c) => !ids.has(c.id) && drafts[c.id] !== undefined)
    last.current = conflicts
    if (!gone.length) return
    const elsewhere = gone.filter((c) => !settling.current.delete(c.id))
    if (lastShown.current && elsewhere.length) setLost((l) => [...l, ...elsewhere.map((c) => ({ c, draft: drafts[c.id]! }))])
    setDrafts((d) => {
      const next = { ...d }
      for (const c of gone) delete next[c.id]
      return next
    })
  }, [conflicts])
  useClientLayoutEffect(() => {
    lastShown.current = shown
  })
  useShownModal(store, shown)
  // The other writer by name when they are present now, else by user id. Listened to through the
  // 'presence:change' event, not subscribePresence (which would make this client present), and only the
  // names: a peer's cursor moving does not re-render the dialog. A tab opened while a conflict was open
  // showed the user id until something else re-rendered it (8 s in a trial), though the peer was there.
  const [, setNames] = useState('')
  useEffect(() => {
    if (!shown) return
    const read = () => setNames(store.sync.presence().map((p) => `${p.user.id}\n${p.user.name ?? ''}`).join('\n'))
    read()
    return store.sync.on('presence:change', read)
  }, [store, shown])
  const nameOf = (userId: string) => store.sync.presence().find((p) => p.user.id === userId)?.user.name ?? userId

  const later = () => {
    setBulk(null)
    setLost([])
    markSeen()
    onOpenChange?.(false)
  }
  // A draft is left in place: the conflict's section goes away once the engine settles it, and stays
  // (draft and all) if that fails; the engine reports the failure in its status, so it is not rethrown here.
  // Any decision ends a pending "Keep all" question.
  const settle = (c: Conflict | null, r: Resolution) => {
    setBulk(null)
    const ids = c ? [c.id] : conflicts.map((x) => x.id)
    for (const i of ids) settling.current.add(i)
    return (c ? resolve(c.id, r) : resolveAll(r)).catch(() => {
      for (const i of ids) settling.current.delete(i)
    })
  }

  useEffect(() => {
    if (open && !conflicts.length && !lost.length) onOpenChange?.(false)
  }, [open, conflicts.length, lost.length])

  // Keys are handled on the document, so Esc and Tab work even when focus has slipped out (a click on the backdrop).
  const keys = useRef<(e: KeyboardEvent) => void>(null)
  keys.current = (e) => {
    const el = ref.current!
    // Keys are the topmost dialog's (another store's dialog opened over this one).
    if (openOverlays[openOverlays.length - 1] !== el.parentElement) return
    if (e.key === 'Escape' && !e.defaultPrevented) {
      e.preventDefault()
      // A "Keep all" question open: Esc answers it (no), as its Cancel does; the dialog stays.
      if (bulk) {
        focusAfter.current = '[data-autofocus]'
        setBulk(null)
      } else later()
    } else if (e.key === 'Tab') {
      const all = [...el.querySelectorAll<HTMLElement>(FOCUSABLE)]
      const active = document.activeElement as HTMLElement
      if (active === all[e.shiftKey ? 0 : all.length - 1] || !el.contains(active)) {
        e.preventDefault()
        all[e.shiftKey ? all.length - 1 : 0]?.focus()
      }
    }
  }

  // Where focus was when the dialog opened, read while rendering it: by the effect below, a kept "Edit
  // merged" draft's textarea (autoFocus) has taken focus already, and focus went nowhere on close.
  const opener = useRef<HTMLElement | null>(null)
  if (shown && !wasShown.current) opener.current = document.activeElement as HTMLElement | null
  wasShown.current = shown

  // Focus: into the dialog on open (the safe action), back to where it was on close.
  useEffect(() => {
    if (!shown) return
    const prev = opener.current
    const onKey = (e: KeyboardEvent) => keys.current!(e)
    document.addEventListener('keydown', onKey)
    const overlay = ref.current?.parentElement
    if (overlay) openOverlays.push(overlay)
    inertBehind()
    // Without scrolling: on a short screen (a phone in landscape, 200% zoom) the whole dialog scrolls, and
    // focusing the footer's safe action opened it at its bottom, title and first conflicts out of view.
    ref.current?.querySelector<HTMLElement>('[data-autofocus]')?.focus({ preventScroll: true })
    return () => {
      if (overlay) openOverlays.splice(openOverlays.indexOf(overlay), 1)
      inertBehind()
      document.removeEventListener('keydown', onKey)
      prev?.focus?.()
      // The opener may show again only after this (a ConflictToast steps back in once the modal is gone).
      if (prev && document.activeElement !== prev) setTimeout(() => prev.isConnected && prev.focus?.())
    }
  }, [shown])

  // Where focus goes after the next render (a selector): Cancel in an editor returns it to that conflict's
  // "Edit merged", Cancel of a bulk choice to "Decide later", not to the dialog's first button.
  const focusAfter = useRef<string | null>(null)
  // When the focused control goes away (its conflict was resolved), keep focus inside.
  useEffect(() => {
    const el = ref.current
    const back = focusAfter.current
    focusAfter.current = null
    if (el && back) el.querySelector<HTMLElement>(back)?.focus()
    if (el && !el.contains(document.activeElement)) el.querySelector<HTMLElement>(FOCUSABLE)?.focus()
  })

  const heading = (c: Conflict, hid: string) => {
    const name = c.field ? recordName(store, c) : undefined
    return (
      <h3 id={hid} className="zync-conflict-title">
        {renderTitle?.(c) ?? (
          <>
            {/* A record's own name in the text's font; an id in the code font. */}
            {c.field || c.entity} {c.field && <span className="zync-muted" data-name={name !== undefined || undefined}>{name ?? c.entity}</span>}
          </>
        )}
      </h3>
    )
  }

  if (!shown) return null
  return createPortal(
    <div className="zync-overlay">
      <div
        ref={ref}
        role="alertdialog"
        aria-modal="true"
        aria-labelledby={id + 't'}
        aria-describedby={id + 'd'}
        className={cx('zync-modal', className)}
      >
        <div className="zync-modal-header">
          <h2 id={id + 't'} className="zync-modal-title">
            {L.title} {conflicts.length > 0 && <span className="zync-count">{conflicts.length}</span>}
          </h2>
          <p id={id + 'd'} className="zync-muted" dir="auto">
            {L.description}
          </p>
        </div>
        <div className="zync-modal-body">
          {lost.map((l, i) => (
            <section key={'settled ' + l.c.id} className="zync-conflict" aria-labelledby={`${id}l${i}`}>
              {heading(l.c, `${id}l${i}`)}
              <p role="status" className="zync-muted" dir="auto">
                {L.settledElsewhere}
              </p>
              <textarea className="zync-textarea" readOnly value={l.draft} aria-label={L.merged} {...(typeof l.c.local === 'string' ? { dir: 'auto' } : { 'data-json': '' })} />
              <div className="zync-actions">{button(L.dismiss, () => setLost((x) => x.filter((y) => y !== l)))}</div>
            </section>
          ))}
          {conflicts.slice(0, shownCount).map((c, i) => {
            const draft = drafts[c.id]
            const text = typeof c.local === 'string'
            let error = ''
            let wrongType = ''
            if (draft !== undefined && !text)
              try {
                // Valid JSON of neither side's type (a string for an object) is refused by resolve(): said here.
                wrongType = shapeMismatch(c, JSON.parse(draft)) ?? ''
              } catch (err) {
                error = (err as Error).message
              }
            const cid = `${id}c${i}`
            const setDraft = (v?: string) => setDrafts((d) => ({ ...d, [c.id]: v }))
            return (
              <section key={c.id} className="zync-conflict" aria-labelledby={cid}>
                {heading(c, cid)}
                <div className="zync-sides">
                  {(['base', 'local', 'remote'] as const).map((side, j) => (
                    <div key={side} className="zync-side" data-side={side}>
                      <div className="zync-side-label">
                        {[L.base, L.mine, L.theirs][j]}
                        {side === 'remote' && c.remoteMeta.userId && <span className="zync-muted"> · {nameOf(c.remoteMeta.userId)}</span>}
                      </div>
                      <div className="zync-value">
                        {renderValue?.(c[side], side, c) ?? <ConflictValue value={c[side]} base={c.base} idKey={c.idKey} />}
                      </div>
                    </div>
                  ))}
                </div>
                {draft === undefined ? (
                  <div className="zync-actions">
                    {button(L.keepMine, () => settle(c, 'local'))}
                    {button(L.keepTheirs, () => settle(c, 'remote'))}
                    <button className="zync-btn zync-btn-ghost" data-edit={cid} onClick={() => setDraft(text ? (c.local as string) : (JSON.stringify(startingPoint(c), null, 2) ?? ''))}>
                      {L.edit}
                    </button>
                  </div>
                ) : (
                  <div className="zync-editor">
                    <label htmlFor={cid + 'e'}>
                      {text ? L.merged : L.mergedJson}
                    </label>
                    <textarea
                      id={cid + 'e'}
                      className="zync-textarea"
                      {...(text ? { dir: 'auto' } : { 'data-json': '' })}
                      value={draft}
                      autoFocus
                      aria-invalid={!!(error || wrongType)}
                      aria-describedby={error || wrongType ? cid + 'x' : undefined}
                      onChange={(e) => setDraft(e.target.value)}
                    />
                    {(error || wrongType) && (
                      <p id={cid + 'x'} role="alert" className="zync-error">
                        {error ? (typeof L.invalidJson === 'function' ? L.invalidJson(error) : `${L.invalidJson}: ${error}`) : typeof L.wrongType === 'function' ? L.wrongType(wrongType) : `${L.wrongType}: ${wrongType}`}
                      </p>
                    )}
                    <div className="zync-actions" ref={error || wrongType ? revealAgain : reveal}>
                      {button(
                        L.cancel,
                        () => {
                          focusAfter.current = `[data-edit="${cid}"]`
                          setDraft()
                        },
                        'zync-btn-ghost',
                      )}
                      <button
                        className="zync-btn zync-btn-primary"
                        disabled={!!(error || wrongType)}
                        onClick={() => settle(c, { value: text ? draft : JSON.parse(draft) })}
                      >
                        {L.apply}
                      </button>
                    </div>
                  </div>
                )}
              </section>
            )
          })}
          {conflicts.length > shownCount && button(L.showMore(conflicts.length - shownCount), () => setShownCount(shownCount + PAGE), 'zync-btn-ghost')}
        </div>
        {conflicts.length > 0 && <div className="zync-modal-footer">
          {bulk && conflicts.length > 1 ? (
            <>
              <p className="zync-muted" dir="auto">{L.confirmAll(conflicts.length)}</p>
              {button(
                L.cancel,
                () => {
                  focusAfter.current = '[data-autofocus]'
                  setBulk(null)
                },
                'zync-btn-ghost',
              )}
              {button(
                bulk === 'local' ? L.keepAllMine : L.keepAllTheirs,
                () => settle(null, bulk),
                'zync-btn-primary',
                undefined,
                focusOnMount,
              )}
            </>
          ) : (
            <>
              {button(L.later, later, 'zync-btn-ghost', true)}
              {conflicts.length > 1 && button(L.keepAllMine, () => setBulk('local'))}
              {conflicts.length > 1 && button(L.keepAllTheirs, () => setBulk('remote'))}
            </>
          )}
        </div>}
      </div>
    </div>,
    document.body,
  )
}
