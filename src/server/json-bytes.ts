/*
 * A large answer (the join of a big document: its snapshot and the log tail) serialized without holding
 * the event loop: JSON.stringify's exact output, as UTF-8 bytes, built in slices of a few milliseconds
 * with a turn of the event loop between them, so the node's other clients are served meanwhile.
 *
 * Sent as bytes, the answer is an opaque binary attachment to socket.io: it does not walk the payload
 * looking for binary parts (its `hasBinary` recursion visits every node), does not stringify it again,
 * and the WebSocket writes the bytes as they are (a string is measured and encoded to UTF-8 first).
 *
 * The value must not change until the promise resolves (the join answer is built from a snapshot the
 * document host no longer writes to, and from log entries read for it).
 */

/**
 * Objects this shallow are always opened: the answer, its snapshot and the snapshot's state and vectors
 * (depth 2 of a join answer), whatever their number of keys, since one key can hold a whole document.
 */
export const SPLIT_DEPTH = 3
/** Other containers are opened when they have more entries than this (a collection, the change list). */
const SPLIT_ENTRIES = 32
/** Below this depth everything is stringified whole (the server limits a value's depth anyway). */
const MAX_SPLIT_DEPTH = 16
/** Pending text converted to bytes at a time. */
const CHUNK_CHARS = 1 << 16

/** One turn of the event loop (after pending I/O): what the node's other clients get between slices of long work. */
export const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve))

function isPlainContainer(v: unknown): v is Record<string, unknown> | unknown[] {
  if (v === null || typeof v !== 'object') return false
  if (Array.isArray(v)) return true
  const proto = Object.getPrototypeOf(v) as unknown
  // Anything else (a Date, a class with toJSON) is left to JSON.stringify whole.
  return (proto === Object.prototype || proto === null) && typeof (v as { toJSON?: unknown }).toJSON !== 'function'
}

/** Text gathered from whole children before it is handed on as one piece. */
const PIECE_CHARS = 1 << 14

/** Opened (written entry by entry) rather than stringified whole. A Map is written as the object of its entries. */
export function opens(v: unknown, depth: number): v is Record<string, unknown> | unknown[] | ReadonlyMap<string, unknown> {
  if (v instanceof Map) return true
  if (depth > MAX_SPLIT_DEPTH || !isPlainContainer(v)) return false
  // A change record (an array of 8 to 10 items) goes whole, not item by item.
  if (Array.isArray(v)) return v.length > SPLIT_ENTRIES
  if (depth < SPLIT_DEPTH) return true
  let n = 0
  for (const _ in v) if (++n > SPLIT_ENTRIES) return true
  return false
}

/** Children written together in one JSON.stringify call (one call per small child cost ~3x JSON.stringify's own time). */
export const CHUNK_ENTRIES = 512

/**
 * JSON.stringify(value) in pieces of up to ~16 KB, in order: large or shallow containers opened, the
 * rest whole. Consecutive children that are not opened are stringified together, a chunk at a time (an
 * object's as one object: the same keys in the same order; an array's as one array).
 */
function* pieces(value: unknown, depth: number): Generator<string, void, undefined> {
  if (!opens(value, depth)) {
    // undefined (a function, a symbol) at the top is not valid JSON; callers never pass it.
    yield JSON.stringify(value) ?? 'null'
    return
  }
  const array = Array.isArray(value)
  const map = value instanceof Map ? (value as ReadonlyMap<string, unknown>) : undefined
  // A Map's entries (a snapshot's field metas) are opened only when large, as deep containers are.
  const childDepth = map ? Math.max(depth + 1, SPLIT_DEPTH) : depth + 1
  let text = array ? '[' : '{'
  let first = true
  let chunk: unknown[] | Record<string, unknown> | undefined
  let inChunk = 0
  const flush = () => {
    if (inChunk === 0) return
    const json = JSON.stringify(chunk)
    if (!first) text += ','
    first = false
    text += json.slice(1, -1)
    chunk = undefined
    inChunk = 0
  }
  for (const k of array ? value.keys() : map ? map.keys() : Object.keys(value)) {
    const v = map ? map.get(k as string) : (value as Record<string | number, unknown>)[k]
    const none = v === undefined || typeof v === 'function' || typeof v === 'symbol'
    // As JSON.stringify: what has no JSON form is null in an array, and left out with its key in an object.
    if (none && !array) continue
    if (!none && opens(v, childDepth)) {
      flush()
      if (!first) text += ','
      first = false
      if (!array) text += `${JSON.stringify(k)}:`
      yield text
      text = ''
      yield* pieces(v, childDepth)
    } else {
      // A null-prototype chunk: a key such as "__proto__" is an own key there, as in the source.
      if (array) ((chunk ??= []) as unknown[]).push(none ? null : v)
      else ((chunk ??= Object.create(null) as Record<string, unknown>) as Record<string, unknown>)[k as string] = v
      if (++inChunk >= CHUNK_ENTRIES) flush()
    }
    if (text.length >= PIECE_CHARS) {
      yield text
      text = ''
    }
  }
  flush()
  yield text + (array ? ']' : '}')
}

/** Hands each piece of `value`'s JSON to `take`, with a turn of the event loop whenever a slice has run for `sliceMs`. */
async function eachPiece(value: unknown, sliceMs: number, take: (piece: string) => void): Promise<void> {
  let started = performance.now()
  for (const piece of pieces(value, 0)) {
    take(piece)
    if (performance.now() - started >= sliceMs) {
      await yieldToLoop()
      started = performance.now()
    }
  }
}

/**
 * `JSON.stringify(value)` as UTF-8 bytes, yielding to the event loop whenever a slice has run for
 * `sliceMs`. Values are JSON data (plain objects, arrays, strings, finite numbers, booleans, null).
 */
export async function jsonBytesYielding(value: unknown, sliceMs = 8): Promise<Buffer> {
  const out: Buffer[] = []
  let text = ''
  await eachPiece(value, sliceMs, (piece) => {
    text += piece
    if (text.length < CHUNK_CHARS) return
    out.push(Buffer.from(text, 'utf8'))
    text = ''
  })
  if (text.length > 0) out.push(Buffer.from(text, 'utf8'))
  return out.length === 1 ? out[0]! : Buffer.concat(out)
}
