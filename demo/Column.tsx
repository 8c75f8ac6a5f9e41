import { useState } from 'react'
import type { Presence } from 'zync'
import type { BoardPresence, BoardStore, Card, Status } from './board'
import { CardView } from './Card'

interface ColumnProps {
  title: string
  status: Status
  cards: Card[]
  store: BoardStore
  pane: string
  viewers: Map<string, Presence<BoardPresence>[]>
}

export function Column({ title, status, cards, store, pane, viewers }: ColumnProps) {
  const [adding, setAdding] = useState(false)
  const [draft, setDraft] = useState('')
  const add = () => {
    const t = draft.trim()
    if (t) store.getState().addCard(status, t)
    setDraft('')
  }
  return (
    <div role="group" className="column" data-status={status} aria-label={title}>
      <header className="column-head">
        <h3>{title}</h3>
        <span className="column-count">{cards.length}</span>
      </header>
      <div className="column-cards">
        {cards.map((c) => (
          <CardView key={c.id} card={c} store={store} pane={pane} viewers={viewers.get(c.id)} />
        ))}
        {cards.length === 0 && !adding && <p className="column-empty">No cards</p>}
      </div>
      {adding ? (
        <form
          className="composer"
          onSubmit={(e) => {
            e.preventDefault()
            add()
          }}
        >
          <input
            autoFocus
            className="composer-input"
            aria-label={`New card in ${title}`}
            placeholder="What needs doing?"
            value={draft}
            onChange={(e) => setDraft(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === 'Escape') {
                setDraft('')
                setAdding(false)
              }
            }}
            onBlur={() => {
              add()
              setAdding(false)
            }}
          />
        </form>
      ) : (
        <button className="add-card" onClick={() => setAdding(true)}>
          <span aria-hidden="true">+</span> Add card
        </button>
      )}
    </div>
  )
}
