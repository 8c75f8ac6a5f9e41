import { ZyncError } from './errors'

/** A path into the synced state: object keys and array indexes. */
export type Path = ReadonlyArray<string | number>

const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype'])

/** Limits shared by the client and the server. */
export const LIMITS = {
  maxPathLength: 16,
  maxDepth: 64,
  maxStringLength: 1_000_000,
  maxKeys: 10_000,
} as const

/** What a document id (a store's `name`) may be: 1 to 256 letters, digits and _ . : @ / -. */
export const DOC_ID = /^[\w.:@/-]{1,256}$/

/** True for a document id the server accepts (DOC_ID, and no prototype key such as '__proto__'). */
export const isDocId = (name: unknown): boolean => typeof name === 'string' && DOC_ID.test(name) && !isUnsafeSegment(name)

/** True when a path segment could reach an object's prototype. Checked everywhere a path is applied. */
export function isUnsafeSegment(seg: unknown): boolean {
  if (typeof seg === 'number') return !Number.isInteger(seg) || seg < 0
  if (typeof seg !== 'string') return true
  return FORBIDDEN.has(seg)
}

export function assertSafePath(path: unknown): asserts path is Path {
  if (!Array.isArray(path)) throw new ZyncError('UNSAFE_PATH', '[zync] a path must be an array of strings and integers')
  if (path.length === 0 || path.length > LIMITS.maxPathLength) {
    throw new ZyncError('UNSAFE_PATH', `[zync] a path must have 1 to ${LIMITS.maxPathLength} segments`)
  }
  for (const seg of path) {
    if (isUnsafeSegment(seg)) throw new ZyncError('UNSAFE_PATH', `[zync] path segment ${JSON.stringify(String(seg))} is not allowed`)
    if (typeof seg === 'string' && seg.length > 512) throw new ZyncError('TOO_LARGE', `[zync] a key is at most 512 characters (got ${seg.length})`)
  }
}

/**
 * Walks a JSON-like tree iteratively (deep input cannot overflow the stack): plain objects and arrays
 * only, no prototype-reaching keys, bounded depth and key counts. With `scalars`, also finite numbers,
 * bounded strings and nothing but JSON types.
 */
export function assertSafeTree(value: unknown, o: { maxDepth: number; scalars: boolean; what: string; plainOnly: string; depthLabel?: number }): void {
  // Two parallel stacks, values and their depths: no pair is allocated per node (every inbound message
  // and every op value is walked here).
  const stack: unknown[] = [value]
  const depths: number[] = [0]
  while (stack.length > 0) {
    const v = stack.pop()
    const depth = depths.pop()!
    if (v === null || typeof v === 'boolean') continue
    if (typeof v !== 'object') {
      if (!o.scalars) continue
      if (typeof v === 'number') {
        if (!Number.isFinite(v)) throw new ZyncError('BAD_REQUEST', `[zync] numbers must be finite (got ${v})`)
        continue
      }
      if (typeof v === 'string') {
        if (v.length > LIMITS.maxStringLength) throw new ZyncError('TOO_LARGE', '[zync] string longer than 1 MB')
        continue
      }
      throw new ZyncError('BAD_REQUEST', `[zync] values must be JSON (got ${typeof v})`)
    }
    if (depth >= o.maxDepth) throw new ZyncError('TOO_DEEP', `[zync] ${o.what} nested deeper than ${o.depthLabel ?? o.maxDepth}`)
    if (Array.isArray(v)) {
      if (v.length > LIMITS.maxKeys) throw new ZyncError('TOO_LARGE', `[zync] array longer than ${LIMITS.maxKeys}`)
      for (const item of v) {
        stack.push(item)
        depths.push(depth + 1)
      }
      continue
    }
    const proto = Object.getPrototypeOf(v)
    if (proto !== Object.prototype && proto !== null) throw new ZyncError('BAD_REQUEST', `${o.plainOnly} (got ${(v as object).constructor?.name || 'an object with a prototype'})`)
    const keys = Object.keys(v)
    if (keys.length > LIMITS.maxKeys) throw new ZyncError('TOO_LARGE', `[zync] object with more than ${LIMITS.maxKeys} keys`)
    for (const k of keys) {
      if (FORBIDDEN.has(k)) throw new ZyncError('UNSAFE_PATH', `[zync] key ${JSON.stringify(k)} is not allowed`)
      stack.push((v as Record<string, unknown>)[k])
      depths.push(depth + 1)
    }
  }
}

/** Checks a value before it is synced or applied: JSON only, depth at most LIMITS.maxDepth. */
export function assertSafeValue(value: unknown): void {
  assertSafeTree(value, { maxDepth: LIMITS.maxDepth, scalars: true, what: 'value', plainOnly: '[zync] only plain objects can be synced' })
}

/** '%', NUL, and with `slash` '/' too, as %25, %00, %2F (see entityOf). */
const escapeSegment = (seg: string | number, slash: boolean): string => {
  const s = String(seg)
  return /[%\u0000/]/.test(s) ? s.replace(slash ? /[%\u0000/]/g : /[%\u0000]/g, (c) => (c === '%' ? '%25' : c === '/' ? '%2F' : '%00')) : s
}
const unescapeSegment = (s: string): string => (s.includes('%') ? s.replace(/%(25|2F|00)/g, (_, h: string) => (h === '25' ? '%' : h === '2F' ? '/' : '\u0000')) : s)

/**
 * Entity = the first two segments (a record in a keyed collection, or a top-level key); field = the
 * third. Named `collection/id`, or the key for a top-level key; '%', NUL, and '/' outside a record id,
 * are escaped (%25, %00, %2F). Unescaped, the top-level key "notes/n1" and the record notes.n1 were one
 * entity to the conflict rules, as were ["a/b", "c"] and ["a", "b/c"] (an acknowledged write was lost
 * as superseded by an unrelated key), and a NUL in an id broke the server's field index after a restart.
 * Names without those characters read as they are.
 */
export function entityOf(path: Path): string {
  return path.length >= 2 ? `${escapeSegment(path[0]!, true)}/${escapeSegment(path[1]!, false)}` : escapeSegment(path[0]!, true)
}

/**
 * The path of a record entity (as entityOf names it), or undefined for a top-level key or a segment
 * that could reach a prototype. The id may contain '/': the collection ends at the first.
 */
export function recordPathOf(entity: string): Path | undefined {
  const i = entity.indexOf('/')
  if (i <= 0) return undefined
  const path = [unescapeSegment(entity.slice(0, i)), unescapeSegment(entity.slice(i + 1))]
  return path.some(isUnsafeSegment) ? undefined : path
}

export function fieldOf(path: Path): string {
  return path.length >= 3 ? String(path[2]) : ''
}

/** Paths of ops never go below the field: deeper changes replace the field value whole. */
export const OP_DEPTH = 3

export function pathKey(path: Path): string {
  // Called several times per op (coalescing, indexing): a loop, not map + join, to skip an array.
  let key = path.length > 0 ? String(path[0]) : ''
  for (let i = 1; i < path.length; i++) key += '\u0000' + String(path[i])
  return key
}

export function pathToString(path: Path): string {
  return path.map(String).join('.')
}

/** Whether `path` is `prefix` or lies under it (segments compared as strings: 0 and '0' are one key). */
export function isUnder(path: Path, prefix: Path): boolean {
  return path.length >= prefix.length && prefix.every((seg, i) => String(seg) === String(path[i]))
}
