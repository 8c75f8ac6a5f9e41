import { ZyncError, toWireError, type WireError } from '../core/errors'
import { decodeHlc } from '../core/hlc'
import type { Op, OpResult } from '../core/protocol'
import { opSchema, parse } from './schema'

export type Refusal = WireError & { id: string }

/**
 * Validates each op of a batch on its own, so one malformed op is refused without stalling the
 * others, and refuses ops stamped more than `rejectFutureMs` ahead of `now` (CLOCK_SKEW).
 */
export function splitOps(raw: readonly unknown[], now: number, rejectFutureMs: number): { accepted: Op[]; refused: Refusal[] } {
  const accepted: Op[] = []
  const refused: Refusal[] = []
  for (const item of raw) {
    let op: Op
    try {
      op = parse(opSchema, item)
    } catch (err) {
      const rid = (item as { id?: unknown } | null)?.id
      const id = typeof rid === 'string' && rid.length > 0 && rid.length <= 128 ? rid : '?'
      refused.push({ ...toWireError(err, id), id })
      continue
    }
    if (decodeHlc(op.hlc)!.wall > now + rejectFutureMs) {
      const err = new ZyncError('CLOCK_SKEW', `[zync] op ${op.id} is stamped too far in the future; check the client clock`, { opId: op.id })
      refused.push({ ...toWireError(err, op.id), id: op.id })
    } else accepted.push(op)
  }
  return { accepted, refused }
}

/**
 * The acknowledgement of one op. An applied change reaches the author in the broadcast (same socket,
 * earlier packet) or, if that was missed, in the state of a catch-up snapshot, so its ack is short.
 * A conflict or superseded op keeps its change: a snapshot would not carry what the author needs to
 * raise the conflict (proposed value, base, winner). Duplicates were not broadcast: they keep it too.
 */
export function ackResult(r: OpResult): OpResult {
  return r.ok && !r.duplicate && r.change && r.status === 'applied' ? { id: r.id, ok: true, seq: r.seq, status: r.status } : r
}
