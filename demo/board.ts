import { createStore } from 'zustand/vanilla'
import { sync, type ConflictsConfig, type PresenceUser } from 'zync'

export type Status = 'todo' | 'doing' | 'done'
export type Priority = 'low' | 'medium' | 'high'

export interface ChecklistItem {
  id: string
  text: string
  done: boolean
}

export interface Card {
  id: string
  title: string
  notes: string
  status: Status
  priority: Priority
  votes: number
  createdAt: number
  /**
   * An id-keyed array: zync merges it item by item (two people adding, ticking or reordering
   * different items all keep their changes). Absent on cards made before checklists: read as [].
   */
  checklist?: ChecklistItem[]
}

export interface BoardState {
  cards: Record<string, Card>
  addCard: (status: Status, title: string) => string
  updateCard: (id: string, patch: Partial<Omit<Card, 'id' | 'votes' | 'createdAt'>>) => void
  vote: (id: string) => void
  removeCard: (id: string) => void
  /** Appends an item to a card's checklist; returns its id (undefined if the card or text is missing). */
  addItem: (cardId: string, text: string) => string | undefined
  toggleItem: (cardId: string, itemId: string) => void
  /** Moves an item one place up (-1) or down (1); nothing at the ends. */
  moveItem: (cardId: string, itemId: string, delta: -1 | 1) => void
  removeItem: (cardId: string, itemId: string) => void
}

export const COLUMNS: ReadonlyArray<{ status: Status; title: string }> = [
  { status: 'todo', title: 'To do' },
  { status: 'doing', title: 'In progress' },
  { status: 'done', title: 'Done' },
]

/**
 * The board's conflict policies: two people renaming one card offline is a decision for a person,
 * concurrent votes all count, and every other field merges per field (the later write wins).
 */
export const BOARD_CONFLICTS: ConflictsConfig = {
  default: 'lww',
  paths: { 'cards.*.title': 'manual', 'cards.*.votes': 'counter' },
}

export interface BoardOptions {
  /** Document id on the server. */
  doc: string
  /** Sync server URL. */
  url: string
  /** IndexedDB database: one per simulated device. */
  dbName: string
  clientId: string
  user: Required<Pick<PresenceUser, 'id' | 'name' | 'color'>>
  /** Start disconnected (the pane's Online switch was off before a reload). */
  offline?: boolean
}

export const newCardId = (): string => Math.random().toString(36).slice(2, 10)

/** The state with one card's checklist replaced by `fn(items)`; the same state when nothing changes. */
function withChecklist(s: BoardState, cardId: string, fn: (items: ChecklistItem[]) => ChecklistItem[]): BoardState | Partial<BoardState> {
  const card = s.cards[cardId]
  if (!card) return s
  const items = card.checklist ?? []
  const next = fn(items)
  return next === items ? s : { cards: { ...s.cards, [cardId]: { ...card, checklist: next } } }
}

export function createBoard(o: BoardOptions) {
  return createStore<BoardState>()(
    sync(
      (set, get) => ({
        cards: {},
        addCard: (status, title) => {
          const id = newCardId()
          const card: Card = { id, title, notes: '', status, priority: 'medium', votes: 0, createdAt: Date.now() }
          set((s) => ({ cards: { ...s.cards, [id]: card } }))
          return id
        },
        updateCard: (id, patch) =>
          set((s) => {
            const card = s.cards[id]
            return card ? { cards: { ...s.cards, [id]: { ...card, ...patch } } } : s
          }),
        vote: (id) =>
          set((s) => {
            const card = s.cards[id]
            return card ? { cards: { ...s.cards, [id]: { ...card, votes: (card.votes ?? 0) + 1 } } } : s
          }),
        removeCard: (id) =>
          set((s) => {
            const { [id]: _gone, ...rest } = s.cards
            return { cards: rest }
          }),
        // Checklist actions: a new array each time (the middleware diffs it against the previous one).
        addItem: (cardId, text) => {
          const t = text.trim()
          if (!t || !get().cards[cardId]) return undefined
          const id = newCardId()
          set((s) => withChecklist(s, cardId, (items) => [...items, { id, text: t, done: false }]))
          return id
        },
        toggleItem: (cardId, itemId) =>
          set((s) =>
            withChecklist(s, cardId, (items) => (items.some((it) => it.id === itemId) ? items.map((it) => (it.id === itemId ? { ...it, done: !it.done } : it)) : items)),
          ),
        moveItem: (cardId, itemId, delta) =>
          set((s) =>
            withChecklist(s, cardId, (items) => {
              const i = items.findIndex((it) => it.id === itemId)
              const j = i + delta
              if (i < 0 || j < 0 || j >= items.length) return items
              const next = [...items]
              ;[next[i], next[j]] = [next[j]!, next[i]!]
              return next
            }),
          ),
        removeItem: (cardId, itemId) =>
          set((s) => withChecklist(s, cardId, (items) => (items.some((it) => it.id === itemId) ? items.filter((it) => it.id !== itemId) : items))),
      }),
      {
        name: o.doc,
        url: o.url,
        dbName: o.dbName,
        clientId: o.clientId,
        user: o.user,
        // The demo server trusts these (see demo/server.ts); a real one would check a token.
        auth: { userId: o.user.id, name: o.user.name, color: o.user.color },
        conflicts: BOARD_CONFLICTS,
        autoConnect: !o.offline,
      },
    ),
  )
}

export type BoardStore = ReturnType<typeof createBoard>

/** Presence state of a client: which pane it is, and the card and field it views or edits. */
export interface Focus {
  pane: string
  entityId: string
  field: string | null
}
export interface BoardPresence {
  pane: string
  focus: Focus | null
}

/** Cards of one column, oldest first. */
export function cardsIn(cards: Record<string, Card>, status: Status): Card[] {
  return Object.values(cards)
    .filter((c) => (c.status ?? 'todo') === status)
    .sort((a, b) => (a.createdAt ?? 0) - (b.createdAt ?? 0) || a.id.localeCompare(b.id))
}
