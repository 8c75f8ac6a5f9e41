import type { PendingOperation } from 'zync'
import { usePendingOperations } from 'zync/react'
import type { BoardStore, Card } from './board'

const FIELD: Record<string, string> = { title: 'title', notes: 'notes', status: 'status', priority: 'priority', votes: 'votes', checklist: 'checklist' }

function preview(v: unknown): string {
  if (v === undefined) return ''
  if (Array.isArray(v)) return v.length === 1 ? '1 item' : `${v.length} items`
  if (typeof v === 'string') return `“${v.length > 40 ? v.slice(0, 39) + '…' : v}”`
  if (typeof v === 'number' || typeof v === 'boolean') return String(v)
  if (v && typeof v === 'object' && 'title' in v) return preview((v as Card).title)
  return JSON.stringify(v).slice(0, 40)
}

function describe(op: PendingOperation, cards: Record<string, Card>): { what: string; value: string } {
  const [root, id, field] = op.path.map(String)
  if (root !== 'cards' || id === undefined) return { what: op.path.join('.'), value: preview(op.value) }
  const name = cards[id]?.title ?? id
  if (field === undefined) {
    if (op.op === 'remove') return { what: 'Delete card', value: '' }
    return { what: op.op === 'add' ? 'New card' : 'Card', value: preview(op.value ?? name) }
  }
  const short = name.length > 28 ? name.slice(0, 27) + '…' : name
  return { what: `${FIELD[field] ?? field} of “${short}”`, value: field === 'votes' ? 'vote' : preview(op.value) }
}

/** The pane's outbox: every change persisted locally and not yet acknowledged by the server. */
export function Outbox({ store, cards }: { store: BoardStore; cards: Record<string, Card> }) {
  const ops = usePendingOperations(store)
  return (
    <details className="outbox" open>
      <summary>
        <span className="outbox-title">Outbox</span>
        <span className="outbox-count" data-count={ops.length}>
          {ops.length}
        </span>
        <span className="muted">{ops.length === 0 ? 'everything is on the server' : ops.length === 1 ? 'change waiting for the server' : 'changes waiting for the server'}</span>
      </summary>
      {ops.length > 0 && (
        <ol className="outbox-list" aria-label="Pending changes">
          {ops.map((op) => {
            const d = describe(op, cards)
            const state = op.inFlight ? 'sending' : op.attempts > 0 ? `retry ${op.attempts}` : op.persisted ? 'saved' : 'saving'
            return (
              <li key={op.id} data-op-id={op.id}>
                <span className={`op-kind op-${op.op}`}>{op.op === 'add' ? 'add' : op.op === 'remove' ? 'del' : 'set'}</span>
                <span className="op-what">{d.what}</span>
                <span className="op-value">{d.value}</span>
                <span className="op-state" data-state={state}>
                  {state}
                </span>
              </li>
            )
          })}
        </ol>
      )}
    </details>
  )
}
