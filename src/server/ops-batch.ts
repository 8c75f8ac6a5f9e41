import { ZyncError, toWireError, type WireError } from '../core/errors'
import { decodeHlc } from '../core/hlc'
import type { Op, OpResult } from '../core/protocol'
import { decodeOp } from '../core/wire'
import { compactOpSchema, opSchema, parse } from './schema'

export type Refusal = WireError & { id: string }

/**
 * Validates each op of a batch on its own (the items of an envelope parseOpsEnvelope accepted), so one
 * malformed op is refused without stalling the others, and refuses ops stamped more than
 * `rejectFutureMs` ahead of `now` (CLOCK_SKEW). With `clients`, the items are compact ops
 * (core/wire.ts), decoded first and checked with compactOpSchema. `refusedAt` holds the
 * positions of the refused items, so answers can be put back in request order (`inRequestOrder`).
 */
export function splitOps(raw: readonly unknown[], now: number, rejectFutureMs: number, clients?: readonly string[]): { accepted: Op[]; refused: Refusal[]; refusedAt: Set<number> } {
  const accepted: Op[] = []
  const refused: Refusal[] = []
  const refusedAt = new Set<number>()
  let previousPath: unknown
  raw.forEach((item, i) => {
    let op: Op
    const rid = clients ? (Array.isArray(item) ? item[0] : undefined) : (item as { id?: unknown } | null)?.id
    const id = typeof rid === 'string' && rid.length > 0 && rid.length <= 128 ? rid : '?'
    try {
      const obj = clients ? decodeOp(item, clients, previousPath) : item
      if (clients) previousPath = (obj as { path?: unknown }).path
      // The envelope (parseOpsEnvelope) scanned the whole message; a compact op decodes into fixed keys,
      // client ids from the validated table and the scanned values.
      // Validated: zod's output says `policy?: WirePolicy | undefined` where Op says `policy?: WirePolicy`
      // (no key is set to undefined by a parse).
      op = parse(clients ? compactOpSchema : opSchema, obj, true) as Op
    } catch (err) {
      refused.push({ ...toWireError(err, id), id })
      refusedAt.add(i)
      return
    }
    if (decodeHlc(op.hlc)!.wall > now + rejectFutureMs) {
      const err = new ZyncError('CLOCK_SKEW', `[zync] op ${op.id} is stamped too far in the future; check the client clock`, { opId: op.id })
      refused.push({ ...toWireError(err, op.id), id: op.id })
      refusedAt.add(i)
    } else accepted.push(op)
  })
  return { accepted, refused, refusedAt }
}

/** Answers in the order of the request's items: `results` answer the accepted ops, in order. */
export function inRequestOrder(results: readonly OpResult[], refused: readonly Refusal[], refusedAt: ReadonlySet<number>): OpResult[] {
  const out: OpResult[] = []
  let a = 0
  let r = 0
  const n = results.length + refused.length
  for (let i = 0; i < n; i++) out.push(refusedAt.has(i) ? refused[r++]! : results[a++]!)
  return out
}

/**
 * The acknowledgement of one op. An applied or superseded change reaches the author in the broadcast
 * (same socket, earlier packet) or, if that was missed, through a catch-up (a superseded op changed
 * nothing a snapshot would have to show), so its ack is short. A conflict keeps its change: a snapshot
 * would not carry what the author needs to raise it (proposed value, base, winner). Duplicates were
 * not broadcast again: they keep it too.
 */
export function ackResult(r: OpResult): OpResult {
  return r.ok && !r.duplicate && r.change && r.status !== 'conflict' ? { id: r.id, ok: true, seq: r.seq, status: r.status } : r
}
