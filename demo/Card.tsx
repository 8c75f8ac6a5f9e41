import { type FocusEvent, type KeyboardEvent, memo, useLayoutEffect, useRef, useState } from 'react'
import type { Presence } from 'zync'
import { PresenceIndicator } from 'zync/react'
import { COLUMNS, type BoardPresence, type BoardStore, type Card, type ChecklistItem, type Priority, type Status } from './board'
import { Avatar } from './ui'

interface CardProps {
  card: Card
  store: BoardStore
  pane: string
  viewers: Presence<BoardPresence>[] | undefined
}

const PRIORITIES: Priority[] = ['high', 'medium', 'low']

export const CardView = memo(function CardView({ card, store, pane, viewers }: CardProps) {
  const { updateCard, vote, removeCard } = store.getState()
  const ring = viewers?.[0]?.user.color

  // Presence: the card and field this client is on, for everyone else's avatars and "is editing".
  const announce = (field: string | null) => store.sync.setPresence({ pane, focus: { pane, entityId: card.id, field } })
  // The field is the focused control's own data-field or its container's (the checklist's buttons and inputs).
  const onFocus = (e: FocusEvent<HTMLElement>) => announce((e.target as HTMLElement).closest<HTMLElement>('[data-field]')?.dataset.field ?? null)
  const onBlur = (e: FocusEvent<HTMLElement>) => {
    if (!e.currentTarget.contains(e.relatedTarget as Node | null)) store.sync.setPresence({ pane, focus: null })
  }

  return (
    <article
      className="card"
      data-card-id={card.id}
      data-priority={card.priority}
      aria-label={card.title || 'Untitled card'}
      onFocus={onFocus}
      onBlur={onBlur}
      style={ring ? ({ '--ring': ring } as React.CSSProperties) : undefined}
      data-viewed={ring ? true : undefined}
    >
      <div className="card-top">
        <select
          className="chip"
          data-field="priority"
          data-value={card.priority}
          aria-label="Priority"
          value={card.priority ?? 'medium'}
          onChange={(e) => updateCard(card.id, { priority: e.target.value as Priority })}
        >
          {PRIORITIES.map((p) => (
            <option key={p} value={p}>
              {p[0]!.toUpperCase() + p.slice(1)}
            </option>
          ))}
        </select>
        {viewers && viewers.length > 0 && (
          <span className="card-viewers" aria-label={`Viewing: ${viewers.map((v) => v.user.name ?? v.user.id).join(', ')}`}>
            {viewers.slice(0, 3).map((v) => (
              <Avatar key={v.clientId} name={v.user.name ?? v.user.id} color={v.user.color} size={22} />
            ))}
          </span>
        )}
        <button className="icon-btn card-delete" aria-label="Delete card" onClick={() => removeCard(card.id)}>
          ×
        </button>
      </div>

      <EditableText className="card-title" field="title" label="Title" value={card.title ?? ''} onCommit={(title) => updateCard(card.id, { title })} />
      <PresenceIndicator store={store} entityId={card.id} field="title" className="card-editing" />

      <EditableText
        className="card-notes"
        field="notes"
        label="Notes"
        multiline
        placeholder="Add notes…"
        value={card.notes ?? ''}
        onCommit={(notes) => updateCard(card.id, { notes })}
      />
      <PresenceIndicator store={store} entityId={card.id} field="notes" className="card-editing" />

      <Checklist card={card} store={store} />
      <PresenceIndicator store={store} entityId={card.id} field="checklist" className="card-editing" />

      <div className="card-foot">
        <button className="vote" data-field="votes" onClick={() => vote(card.id)}>
          <span className="sr-only">Vote</span>
          <svg viewBox="0 0 16 16" width="12" height="12" aria-hidden="true">
            <path d="M8 3l5 7H3z" fill="currentColor" />
          </svg>
          <span className="vote-count">{card.votes ?? 0}</span>
        </button>
        <select
          className="status-select"
          data-field="status"
          aria-label="Status"
          value={card.status ?? 'todo'}
          onChange={(e) => updateCard(card.id, { status: e.target.value as Status })}
        >
          {COLUMNS.map((c) => (
            <option key={c.status} value={c.status}>
              {c.title}
            </option>
          ))}
        </select>
      </div>
    </article>
  )
})

const EMPTY: ChecklistItem[] = []

/** Where focus goes after a checklist change re-renders the list (a moved row's DOM node may be re-inserted). */
type FocusAfter = { item: string; control: 'up' | 'down' | 'remove' } | { add: true }

const Chevron = ({ up }: { up: boolean }) => (
  <svg viewBox="0 0 12 12" width="12" height="12" aria-hidden="true">
    <path d={up ? 'M2.5 7.5L6 4l3.5 3.5' : 'M2.5 4.5L6 8l3.5-3.5'} stroke="currentColor" strokeWidth="1.6" fill="none" strokeLinecap="round" strokeLinejoin="round" />
  </svg>
)

/**
 * A card's checklist: tick, reorder and remove items, and add one with Enter. The list is an id-keyed
 * array, so zync merges it item by item: moves of different items made on two devices both stay.
 */
function Checklist({ card, store }: { card: Card; store: BoardStore }) {
  const items = card.checklist ?? EMPTY
  const { addItem, toggleItem, moveItem, removeItem } = store.getState()
  const [draft, setDraft] = useState('')
  const root = useRef<HTMLDivElement>(null)
  const focusAfter = useRef<FocusAfter | null>(null)

  // Keeps keyboard focus on the control that was used, once the list has re-rendered.
  useLayoutEffect(() => {
    const want = focusAfter.current
    const el = root.current
    if (!want || !el) return
    focusAfter.current = null
    const pick = (sel: string) => el.querySelector<HTMLElement>(sel)
    let target: HTMLElement | null = null
    if ('add' in want) target = pick('.checklist-add')
    else {
      const row = `[data-item-id="${CSS.escape(want.item)}"]`
      const other = want.control === 'up' ? 'down' : 'up'
      target = pick(`${row} [data-control="${want.control}"]:not(:disabled)`) ?? pick(`${row} [data-control="${other}"]:not(:disabled)`) ?? pick(`${row} input`)
    }
    if (target && document.activeElement !== target) target.focus()
  })

  const move = (it: ChecklistItem, delta: -1 | 1) => {
    focusAfter.current = { item: it.id, control: delta < 0 ? 'up' : 'down' }
    moveItem(card.id, it.id, delta)
  }
  const remove = (i: number) => {
    const next = items[i + 1] ?? items[i - 1]
    focusAfter.current = next ? { item: next.id, control: 'remove' } : { add: true }
    removeItem(card.id, items[i]!.id)
  }
  const add = () => {
    if (draft.trim()) addItem(card.id, draft)
    setDraft('')
  }
  const done = items.filter((it) => it.done).length

  return (
    <div ref={root} className="checklist" data-field="checklist" role="group" aria-label="Checklist">
      {items.length > 0 && (
        <>
          <div className="checklist-head">
            <span>Checklist</span>
            <span className="checklist-progress" aria-hidden="true">
              <span style={{ width: `${(100 * done) / items.length}%` }} />
            </span>
            <span className="checklist-count">
              {done}/{items.length}
            </span>
          </div>
          <ul className="checklist-items">
            {items.map((it, i) => (
              <li key={it.id} className="checklist-item" data-item-id={it.id} data-done={it.done || undefined}>
                <label className="checklist-label">
                  <input type="checkbox" className="checklist-box" checked={it.done} onChange={() => toggleItem(card.id, it.id)} />
                  <span className="checklist-text">{it.text}</span>
                </label>
                <span className="checklist-actions">
                  <button type="button" className="icon-btn checklist-btn" data-control="up" aria-label={`Move ${it.text} up`} disabled={i === 0} onClick={() => move(it, -1)}>
                    <Chevron up />
                  </button>
                  <button
                    type="button"
                    className="icon-btn checklist-btn"
                    data-control="down"
                    aria-label={`Move ${it.text} down`}
                    disabled={i === items.length - 1}
                    onClick={() => move(it, 1)}
                  >
                    <Chevron up={false} />
                  </button>
                  <button type="button" className="icon-btn checklist-btn" data-control="remove" aria-label={`Remove ${it.text}`} onClick={() => remove(i)}>
                    ×
                  </button>
                </span>
              </li>
            ))}
          </ul>
        </>
      )}
      <input
        className="checklist-add"
        aria-label="Add checklist item"
        placeholder="+ Add item"
        value={draft}
        spellCheck={false}
        onChange={(e) => setDraft(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === 'Enter') {
            e.preventDefault()
            add()
          } else if (e.key === 'Escape') {
            setDraft('')
            e.currentTarget.blur()
          }
        }}
      />
    </div>
  )
}

interface EditableTextProps {
  value: string
  onCommit: (value: string) => void
  field: string
  label: string
  className: string
  multiline?: boolean
  placeholder?: string
}

/**
 * Text that edits in place (a textarea, so long titles wrap). The draft is local while the field has focus and is committed on Enter
 * or blur, only if the user changed it, so a remote edit that arrives meanwhile is not overwritten
 * by an untouched draft. Esc puts the value back.
 */
function EditableText({ value, onCommit, field, label, className, multiline, placeholder }: EditableTextProps) {
  const [draft, setDraft] = useState<string | null>(null)
  const started = useRef(value)
  const ref = useRef<HTMLTextAreaElement>(null)
  const shown = draft ?? value

  // The text wraps and the field grows with it.
  useLayoutEffect(() => {
    const el = ref.current
    if (!el) return
    el.style.height = '0px'
    el.style.height = `${el.scrollHeight}px`
  }, [shown])

  const cancelled = useRef(false)
  const commit = () => {
    if (!cancelled.current && draft !== null && draft !== started.current) onCommit(multiline ? draft : draft.trim() || started.current)
    cancelled.current = false
    setDraft(null)
  }
  // Enter (Ctrl/Cmd+Enter in notes) commits through blur; Esc cancels.
  const onKeyDown = (e: KeyboardEvent<HTMLElement>) => {
    if (e.key === 'Escape') cancelled.current = true
    if (e.key === 'Escape' || (e.key === 'Enter' && (!multiline || e.metaKey || e.ctrlKey))) {
      e.preventDefault()
      e.currentTarget.blur()
    }
  }
  const common = {
    ref,
    className,
    'data-field': field,
    'aria-label': label,
    placeholder,
    value: shown,
    spellCheck: false,
    onFocus: () => {
      started.current = value
      setDraft(value)
    },
    onChange: (e: { target: { value: string } }) => setDraft(e.target.value),
    onBlur: commit,
    onKeyDown,
  }
  return <textarea rows={1} {...common} />
}
