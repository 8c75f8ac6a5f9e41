import { memo, useMemo, useState } from 'react'
import { useStore } from 'zustand'
import { ConflictModal, OfflineBanner, PresenceAvatars, SyncStatusBadge, usePresence, useSyncStatus } from 'zync/react'
import type { Presence } from 'zync'
import { COLUMNS, cardsIn, type BoardPresence, type BoardStore, type Card, type Status } from './board'
import { Column } from './Column'
import { offlineFlag, type PaneConfig } from './config'
import { Outbox } from './Outbox'
import { Avatar, Switch } from './ui'

export function Pane({ pane, store }: { pane: PaneConfig; store: BoardStore }) {
  const status = useSyncStatus(store)
  const cards = useStore(store, (s) => s.cards)
  const { others } = usePresence<BoardPresence>(store)
  // One name per other person, as the avatars show them (the same person in two windows or browsers is
  // one; this pane's own user in another browser is not someone else).
  const people = [...new Map(others.filter((p) => p.user.id !== pane.user.id).map((p) => [p.user.id, p.user.name ?? p.user.id])).values()]
  const [online, setOnline] = useState(() => !offlineFlag(pane.dbName))
  // The modal opens on its own for a new conflict; one put off with "Decide later" is reopened from here.
  const [review, setReview] = useState(false)

  const switchOnline = (on: boolean) => {
    setOnline(on)
    offlineFlag(pane.dbName, !on)
    if (on) store.sync.connect()
    else store.sync.disconnect()
  }

  // Who views which card: the first peer focused on a card gives it a ring in their colour.
  const viewers = useMemo(() => {
    const m = new Map<string, typeof others>()
    for (const p of others) {
      const id = p.state.focus?.entityId
      if (id) m.set(id, [...(m.get(id) ?? []), p])
    }
    return m
  }, [others])

  const name = pane.user.name
  return (
    <section
      className="pane"
      aria-label={`${name}'s ${pane.device}`}
      data-pane={pane.key}
      data-ready={status.ready}
      data-connection={status.connection}
      data-seq={status.seq}
      data-pending={status.pending + status.unpersisted}
      style={{ '--me': pane.user.color } as React.CSSProperties}
    >
      <header className="pane-head">
        <div className="pane-who">
          <Avatar name={name} color={pane.user.color} size={36} />
          <div className="pane-title">
            <h2>
              {name}
              <span className="pane-device">’s {pane.device}</span>
            </h2>
            <p className="muted mono" title={`client id ${pane.clientId}`}>
              {pane.dbName}
            </p>
          </div>
        </div>
        <div className="pane-controls">
          <SyncStatusBadge store={store} />
          {status.conflicts > 0 && (
            <button type="button" className="zync-btn review-btn" onClick={() => setReview(true)}>
              Review
            </button>
          )}
          <Switch checked={online} onChange={switchOnline} label="Online" />
        </div>
      </header>

      <div className="pane-people">
        <PresenceAvatars store={store} max={4} label={(n) => (n === 1 ? '1 other person here' : `${n} other people here`)} />
        <span className="muted">
          {people.length === 0 ? (online ? 'Nobody else here right now' : 'Offline: nobody can see you') : `${people.join(', ')} ${people.length === 1 ? 'is' : 'are'} here`}
        </span>
      </div>

      <OfflineBanner store={store} className="pane-banner" />

      <Board cards={cards} store={store} pane={pane.key} viewers={viewers} />

      <Outbox store={store} cards={cards} />

      <ConflictModal
        store={store}
        open={review || undefined}
        onOpenChange={(open) => !open && setReview(false)}
        labels={{ title: `${name}’s ${pane.device}: resolve conflicts` }}
        // Conflicts name entities by id (cards/49910f86): head each with the card's title instead (the
        // title before the clash when the title itself is in question).
        renderTitle={(c) => {
          const card = cards[c.entity.slice(c.entity.indexOf('/') + 1)]
          const name = c.field === 'title' && typeof c.base === 'string' ? c.base : card?.title
          return name === undefined ? undefined : `Card “${name}”${c.field ? ` · ${c.field}` : ''}`
        }}
      />
    </section>
  )
}

interface BoardProps {
  cards: Record<string, Card>
  store: BoardStore
  pane: string
  viewers: Map<string, Presence<BoardPresence>[]>
}

// Memoized: sync status changes (pending counts, connection) re-render the pane's header, not the cards.
const Board = memo(function Board({ cards, store, pane, viewers }: BoardProps) {
  return (
    <div className="board">
      {COLUMNS.map((col) => (
        <Column key={col.status} title={col.title} status={col.status as Status} cards={cardsIn(cards, col.status)} store={store} pane={pane} viewers={viewers} />
      ))}
    </div>
  )
})
