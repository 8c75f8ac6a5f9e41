import { type FocusEvent, type KeyboardEvent, memo, useLayoutEffect, useRef, useState } from 'react'
import type { Presence } from 'zync'
import { PresenceIndicator } from 'zync/react'
import { COLUMNS, type BoardPresence, type BoardStore, type Card, type Priority, type Status } from './board'
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
  const onFocus = (e: FocusEvent<HTMLElement>) => announce((e.target as HTMLElement).dataset.field ?? null)
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
