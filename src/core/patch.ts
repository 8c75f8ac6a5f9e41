import { assertSafePath, type Path } from './path'
import { isPlainObject } from './diff'

/** Reads the value at `path`, or undefined. Only own properties are followed. */
export function getAt(state: unknown, path: Path): unknown {
  let cur: unknown = state
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object') return undefined
    if (!Object.hasOwn(cur, seg)) return undefined
    cur = (cur as Record<string | number, unknown>)[seg]
  }
  return cur
}

/**
 * Returns a new state with `value` set at `path` (or the key deleted when `remove`), copying only the
 * objects along the path (structural sharing). Rejects prototype-reaching segments. Missing containers
 * on the way are created as plain objects.
 */
export function setAt<T extends Record<string, unknown>>(state: T, path: Path, value: unknown, remove = false): T {
  assertSafePath(path)
  return setRec(state, path, 0, value, remove) as T
}

function setRec(node: unknown, path: Path, i: number, value: unknown, remove: boolean): unknown {
  const seg = path[i]!
  const container: Record<string | number, unknown> | unknown[] = Array.isArray(node)
    ? node.slice()
    : isPlainObject(node)
      ? { ...node }
      : {}
  const c = container as Record<string | number, unknown>
  if (i === path.length - 1) {
    if (remove) {
      if (Array.isArray(container) && typeof seg === 'number') container.splice(seg, 1)
      else delete c[seg]
    } else {
      c[seg] = value
    }
    return container
  }
  const child = Object.hasOwn(c, seg) ? c[seg] : undefined
  if (remove && child === undefined) return node
  c[seg] = setRec(child, path, i + 1, value, remove)
  return container
}
