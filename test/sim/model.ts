/**
 * The reference model the simulation checks the server against. It replays the server's log with
 * its own, independent rules per policy and field (not DocState's code) and derives what every
 * field must hold so that no acknowledged write is lost:
 * - plain fields: the status each op must have got (concurrency from the op's base vector against the
 *   field's last writer), and for 'lww' the value of the op with the highest (clamped) timestamp;
 * - counters: initial value plus the sum of every delta;
 * - sets: per element, present iff its latest add is at or after its latest remove;
 * - id-keyed arrays: an op changes only the elements that differ between what it saw and what it made;
 *   an element someone else changed differently since is a clash. Under 'lww' an element is present iff
 *   its latest write is after its latest delete, with the value of the latest write; under 'remote' a
 *   clashing change is dropped; under 'manual' an op with a clash is a conflict. Order: first insert.
 */
import { deepEqual } from '../../src/core/diff'
import { decodeHlc } from '../../src/core/hlc'
import { placeIds } from '../../src/core/order-key'
import type { Op } from '../../src/core/protocol'
import type { LogEntry } from '../../src/server/storage/types'

export type FieldKind = 'lww' | 'local' | 'remote' | 'manual' | 'custom' | 'counter' | 'set' | 'ids' | 'ids:remote' | 'ids:manual' | 'obj'

interface Writer {
  client: string
  n: number
  hlc: string
}

interface FieldModel {
  kind: FieldKind
  value: unknown
  writer?: Writer
  /** lww: the op with the highest stamp seen on this field (any status). */
  top?: { hlc: string; value: unknown; removed: boolean; opId: string }
  counter: number
  set: Map<string, { a: string; r: string }>
  ids: Map<string, { v: unknown; h: string; d: string; o: string; m?: string }>
}

export interface ModelOptions {
  kindOf: (field: string) => FieldKind
  idKey: string
  maxDriftMs: number
  /** Entities whose records are deleted and re-created: only the log-wide checks apply to them. */
  volatile?: (entity: string) => boolean
}

const SEP = '\u0000'

function newField(kind: FieldKind): FieldModel {
  return { kind, value: undefined, counter: 0, set: new Map(), ids: new Map() }
}

function idOf(item: unknown, key: string): string {
  const v = (item as Record<string, unknown>)[key]
  return `${typeof v}:${String(v)}`
}

/** Replays `log` and returns the problems found (empty when the server did right). */
export function checkLog(log: LogEntry[], serverState: Record<string, unknown>, o: ModelOptions): string[] {
  const problems: string[] = []
  const fields = new Map<string, FieldModel>()
  const recordWriter = new Map<string, Writer>()
  const ids = new Set<string>()
  const fail = (m: string) => {
    if (problems.length < 30) problems.push(m)
  }

  for (const e of log) {
    if (ids.has(e.opId)) fail(`op ${e.opId} is in the log twice`)
    ids.add(e.opId)
    const op: Op = e.op
    if (op.hlc !== e.hlc) fail(`seq ${e.seq}: stored op stamp differs from the entry stamp`)
    const wall = decodeHlc(e.hlc)?.wall ?? Infinity
    if (wall > e.at + o.maxDriftMs) fail(`seq ${e.seq}: stamp ${e.hlc} is more than ${o.maxDriftMs} ms ahead of server time ${e.at} (not clamped)`)
    if (o.volatile?.(e.entity)) continue

    if (e.path.length === 2) {
      // Record writes (setup): every field starts from the record's value.
      if (e.status !== 'applied') fail(`seq ${e.seq}: record write not applied (${e.status})`)
      const rec = (op.value ?? {}) as Record<string, unknown>
      for (const [f, v] of Object.entries(rec)) {
        const fm = newField(o.kindOf(f))
        fm.value = v
        if (fm.kind === 'counter') fm.counter = v as number
        if (fm.kind === 'set') for (const x of v as unknown[]) fm.set.set(JSON.stringify(x), { a: '0', r: '' })
        if (fm.kind.startsWith('ids')) (v as unknown[]).forEach((x, i) => fm.ids.set(idOf(x, o.idKey), { v: x, h: '0', d: '', o: `0#${i.toString(36).padStart(4, '0')}` }))
        fields.set(e.entity + SEP + f, fm)
      }
      recordWriter.set(e.entity, { client: e.client, n: e.n, hlc: e.hlc })
      continue
    }
    if (e.path.length !== 3) {
      fail(`seq ${e.seq}: unexpected path ${e.path.join('.')}`)
      continue
    }
    const field = String(e.path[2])
    const key = e.entity + SEP + field
    let fm = fields.get(key)
    if (!fm) fields.set(key, (fm = newField(o.kindOf(field))))
    const where = `seq ${e.seq} ${e.path.join('.')} (${fm.kind}, op ${e.opId} by ${e.client})`

    if (fm.kind === 'counter') {
      if (e.status !== 'applied') fail(`${where}: counter op ${e.status}`)
      if (typeof op.delta !== 'number') fail(`${where}: counter op without delta`)
      fm.counter += op.delta ?? 0
      continue
    }
    if (fm.kind === 'set') {
      if (e.status !== 'applied') fail(`${where}: set op ${e.status}`)
      for (const x of op.added ?? []) {
        const k = JSON.stringify(x)
        const t = fm.set.get(k) ?? { a: '', r: '' }
        if (e.hlc > t.a) t.a = e.hlc
        fm.set.set(k, t)
      }
      for (const x of op.removed ?? []) {
        const k = JSON.stringify(x)
        const t = fm.set.get(k) ?? { a: '', r: '' }
        if (e.hlc > t.r) t.r = e.hlc
        fm.set.set(k, t)
      }
      continue
    }
    if (fm.kind.startsWith('ids')) {
      const prev = new Map(((op.prev as unknown[]) ?? []).map((x) => [idOf(x, o.idKey), x]))
      const next = (op.value as unknown[]) ?? []
      const nextById = new Map(next.map((x) => [idOf(x, o.idKey), x]))
      const present = (id: string) => {
        const r = fm.ids.get(id)
        return r && r.h > r.d ? r.v : undefined
      }
      const clashes = new Set<string>()
      for (const id of new Set([...prev.keys(), ...nextById.keys()])) {
        const base = prev.get(id)
        const mine = nextById.get(id)
        if (!deepEqual(base, mine) && !deepEqual(present(id), base) && !deepEqual(present(id), mine)) clashes.add(id)
      }
      const expected = fm.kind === 'ids:manual' && clashes.size > 0 ? 'conflict' : 'applied'
      if (e.status !== expected) fail(`${where}: id-array op ${e.status}, the model expects ${expected} (clashes ${[...clashes].join(', ')})`)
      if (e.status !== 'applied') continue
      const skip = (id: string) => fm.kind === 'ids:remote' && clashes.has(id)
      // Placement (which elements moved, and their new keys) is the shared order-key code; the model
      // checks what is done with it: a new place wins by move stamp, values by write stamp.
      const seenAt = new Map([...prev.keys()].map((id, i) => [id, i]))
      const current = [...fm.ids.values()].filter((r) => r.h > r.d).map((r) => r.o)
      const placed = placeIds(next.map((x) => idOf(x, o.idKey)), seenAt, (id) => fm.ids.get(id)?.o, e.hlc, current)
      const move = (r: { o: string; m?: string }, key: string | undefined) => {
        if (key === undefined) return
        if (e.hlc > (r.m ?? '') || (e.hlc === r.m && key < r.o)) {
          r.o = key
          r.m = e.hlc
        }
      }
      next.forEach((x) => {
        const id = idOf(x, o.idKey)
        const r = fm.ids.get(id)
        if (prev.has(id) && deepEqual(prev.get(id), x)) {
          if (r) move(r, placed.get(id))
          return
        }
        if (skip(id)) return
        if (!r) fm.ids.set(id, { v: x, h: e.hlc, d: '', o: placed.get(id)! })
        else {
          if (e.hlc > r.h) {
            r.v = x
            r.h = e.hlc
          }
          move(r, placed.get(id))
        }
      })
      for (const id of prev.keys()) {
        if (nextById.has(id) || skip(id)) continue
        const r = fm.ids.get(id)
        if (r && e.hlc > r.d) r.d = e.hlc
      }
      continue
    }

    // Plain values: the status follows from concurrency with the field's last writer.
    const w = fm.writer ?? recordWriter.get(e.entity)
    const concurrent = w !== undefined && w.client !== op.client && (op.base[w.client] ?? 0) < w.n
    // An object value (last-writer-wins): a concurrent write merges by key against what it saw.
    const byKey = fm.kind === 'obj' && concurrent && op.op !== 'remove' && isObj(op.prev) && isObj(op.value) && isObj(fm.value)
    let expected: string
    if (byKey) expected = 'applied'
    else if (fm.kind === 'lww' || fm.kind === 'obj') expected = !concurrent || e.hlc > w!.hlc ? 'applied' : 'superseded'
    else if (fm.kind === 'local') expected = 'applied'
    else if (fm.kind === 'remote') expected = concurrent ? 'superseded' : 'applied'
    // 'manual' and app functions: a concurrent write of the value the field holds decides nothing.
    else expected = concurrent && !deepEqual(op.op === 'remove' ? undefined : op.value, fm.value) ? 'conflict' : 'applied'
    if (e.status !== expected) fail(`${where}: status ${e.status}, the model expects ${expected} (writer ${JSON.stringify(w)}, base ${JSON.stringify(op.base)})`)
    if (fm.kind === 'lww' && (!fm.top || e.hlc > fm.top.hlc)) fm.top = { hlc: e.hlc, value: op.value, removed: op.op === 'remove', opId: e.opId }
    if (e.status === 'applied') {
      fm.value = byKey ? keyMerge(op.prev as Obj, op.value as Obj, fm.value as Obj, e.hlc > w!.hlc) : op.op === 'remove' ? undefined : op.value
      fm.writer = { client: e.client, n: e.n, hlc: e.hlc }
    }
  }

  // Final values against the server state.
  for (const [key, fm] of fields) {
    const [entity, field] = key.split(SEP) as [string, string]
    const [col, rec] = entity.split('/') as [string, string]
    const actual = ((serverState[col] as Record<string, Record<string, unknown>> | undefined)?.[rec] ?? {})[field]
    let expected: unknown
    if (fm.kind === 'counter') expected = fm.counter
    else if (fm.kind === 'set') {
      expected = [...fm.set.entries()]
        .filter(([, t]) => t.a !== '' && t.a >= t.r)
        .sort((x, y) => (x[1].a < y[1].a ? -1 : x[1].a > y[1].a ? 1 : x[0] < y[0] ? -1 : 1))
        .map(([k]) => JSON.parse(k) as unknown)
    } else if (fm.kind.startsWith('ids')) {
      expected = [...fm.ids.entries()]
        .filter(([, r]) => r.h > r.d)
        .sort((x, y) => (x[1].o < y[1].o ? -1 : x[1].o > y[1].o ? 1 : x[0] < y[0] ? -1 : 1))
        .map(([, r]) => r.v)
    } else {
      expected = fm.value
      if (fm.kind === 'lww' && fm.top) {
        const topValue = fm.top.removed ? undefined : fm.top.value
        if (!deepEqual(topValue, fm.value)) fail(`${entity}.${field} (lww): the highest-stamped write ${fm.top.opId} (${fm.top.hlc}) is not the final value`)
      }
    }
    if (!deepEqual(actual, expected)) fail(`${entity}.${field} (${fm.kind}): server has ${JSON.stringify(actual)}, the model expects ${JSON.stringify(expected)}`)
  }
  return problems
}

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v)

/**
 * The spec of a by-key merge of flat objects, written apart from src/core/merge.ts: every key the op
 * changed relative to what it saw is written over the current value, unless the current value changed
 * that key too (to something else) and the op's stamp is not the later one.
 */
function keyMerge(prev: Obj, mine: Obj, cur: Obj, mineLater: boolean): Obj {
  const out: Obj = { ...cur }
  for (const k of new Set([...Object.keys(prev), ...Object.keys(mine)])) {
    if (deepEqual(mine[k], prev[k])) continue
    const clash = !deepEqual(cur[k], prev[k]) && !deepEqual(cur[k], mine[k])
    if (clash && !mineLater) continue
    if (mine[k] === undefined) delete out[k]
    else out[k] = mine[k]
  }
  return out
}
