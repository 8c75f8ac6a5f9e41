/*
 * The stored form of a document's snapshot: JSON lines that build it up, so a big one is read back a
 * slice at a time, with turns of the event loop between slices (one JSON.parse of a 350k-field document's
 * 40-60 MB snapshot held the node's event loop ~0.4-0.6 s on its first join after a restart, and turning
 * its field metas into a Map as long again).
 *
 *   zync-snapshot 2
 *   ["e",[],{"seq":42}]                      entries assigned into the container at the path ([] = the snapshot)
 *   ["o",["state"]]                          an empty object at the path (then its entries)
 *   ["m",["fields"]]                         an empty Map (DocState's field metas: read back as a Map)
 *   ["a",["state","list"]]                   an empty array
 *   ["p",["state","list"],[1,2,3]]           items pushed onto the array at the path
 *
 * The containers json-bytes opens (the snapshot, its maps and state, collections, any large container)
 * are written entry by entry, up to 512 entries per line; everything else goes whole inside its line.
 * Keys keep their order. JSON never holds a raw line break, so a line break ends a line. Text that does
 * not start with the header is the earlier form, one JSON object, and is read as it always was.
 */
import { CHUNK_ENTRIES, opens, SPLIT_DEPTH, yieldToLoop } from '../json-bytes'
import type { ServerSnapshot } from './types'

const HEADER = 'zync-snapshot 2\n'
const SLICE_MS = 8

type Container = Record<string, unknown> | unknown[] | Map<string, unknown>
type Key = string | number

/** The lines that build `value` (entries of the container at `path`, already made), in order. */
function* lines(value: Container, path: Key[], depth: number): Generator<string, void, undefined> {
  const array = Array.isArray(value)
  const map = value instanceof Map ? value : undefined
  // As json-bytes: a Map's entries (field metas) are opened only when large, as deep containers are.
  const childDepth = map ? Math.max(depth + 1, SPLIT_DEPTH) : depth + 1
  const at = JSON.stringify(path)
  let chunk: unknown[] | Record<string, unknown> | undefined
  let n = 0
  const flush = (): string => {
    // A null-prototype chunk: a key such as "__proto__" is an own key there, as in the source.
    const line = `["${array ? 'p' : 'e'}",${at},${JSON.stringify(chunk)}]`
    chunk = undefined
    n = 0
    return line
  }
  // An array's keys are its indices: an opened item's path ends with its index.
  for (const k of array ? value.keys() : map ? map.keys() : Object.keys(value)) {
    const v = map ? map.get(k as string) : (value as Record<Key, unknown>)[k]
    const none = v === undefined || typeof v === 'function' || typeof v === 'symbol'
    // As JSON.stringify: what has no JSON form is null in an array, and left out with its key in an object.
    if (none && !array) continue
    if (!none && opens(v, childDepth)) {
      if (n > 0) yield flush()
      const inner = [...path, k]
      yield `["${v instanceof Map ? 'm' : Array.isArray(v) ? 'a' : 'o'}",${JSON.stringify(inner)}]`
      yield* lines(v as Container, inner, childDepth)
    } else {
      if (array) ((chunk ??= []) as unknown[]).push(none ? null : v)
      else ((chunk ??= Object.create(null) as Record<string, unknown>) as Record<string, unknown>)[k as string] = v
      if (++n >= CHUNK_ENTRIES) yield flush()
    }
  }
  if (n > 0) yield flush()
}

/** A snapshot as its stored text, written in slices with a turn of the event loop whenever one has run for 8 ms. */
export async function snapshotText(snapshot: ServerSnapshot): Promise<string> {
  const out: string[] = [HEADER]
  let started = performance.now()
  for (const line of lines(snapshot as unknown as Container, [], 0)) {
    out.push(line, '\n')
    if (performance.now() - started >= SLICE_MS) {
      await yieldToLoop()
      started = performance.now()
    }
  }
  return out.join('')
}

function put(into: Container, key: Key, value: unknown): void {
  if (into instanceof Map) into.set(key as string, value)
  // An own key, as JSON.parse makes it: assigning would set the prototype instead.
  else if (key === '__proto__') Object.defineProperty(into, key, { value, enumerable: true, writable: true, configurable: true })
  else (into as Record<Key, unknown>)[key] = value
}

function corrupt(why: string): Error {
  return new Error(`[zync] a stored snapshot is corrupt: ${why}`)
}

/**
 * A stored snapshot read back, a slice at a time with a turn of the event loop whenever one has run for
 * 8 ms. Field metas come back as a Map from this form, as an object from the earlier one.
 */
export async function parseSnapshotText(text: string): Promise<ServerSnapshot> {
  if (!text.startsWith(HEADER)) return JSON.parse(text) as ServerSnapshot
  const root: Record<string, unknown> = {}
  let started = performance.now()
  for (let pos = HEADER.length; pos < text.length; ) {
    let end = text.indexOf('\n', pos)
    if (end < 0) end = text.length
    const [kind, path, payload] = JSON.parse(text.slice(pos, end)) as [string, Key[], unknown]
    pos = end + 1
    if (!Array.isArray(path)) throw corrupt('a line without a path')
    let at: Container = root
    const last = kind === 'e' || kind === 'p' ? path.length : path.length - 1
    for (let i = 0; i < last; i++) {
      const next: unknown = at instanceof Map ? at.get(path[i] as string) : (at as Record<Key, unknown>)[path[i]!]
      if (next === null || typeof next !== 'object') throw corrupt(`nothing at ${JSON.stringify(path.slice(0, i + 1))}`)
      at = next as Container
    }
    if (kind === 'e') {
      if (payload === null || typeof payload !== 'object' || Array.isArray(at)) throw corrupt(`entries at ${JSON.stringify(path)}`)
      for (const k of Object.keys(payload)) put(at, k, (payload as Record<string, unknown>)[k])
    } else if (kind === 'p') {
      if (!Array.isArray(payload) || !Array.isArray(at)) throw corrupt(`items at ${JSON.stringify(path)}`)
      for (const v of payload) at.push(v)
    } else if (kind === 'o' || kind === 'm' || kind === 'a') {
      put(at, path[last]!, kind === 'o' ? {} : kind === 'm' ? new Map() : [])
    } else throw corrupt(`unknown line ${JSON.stringify(kind)}`)
    if (performance.now() - started >= SLICE_MS) {
      await yieldToLoop()
      started = performance.now()
    }
  }
  return root as unknown as ServerSnapshot
}
