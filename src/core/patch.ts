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
 * How many leading segments of `path` reach an array that the path goes on through (ops write object
 * keys; arrays are whole values, so such a path was made for another shape of the state), or 0.
 */
export function arrayAlong(state: unknown, path: Path): number {
  let cur: unknown = state
  for (let i = 0; i < path.length - 1; i++) {
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, path[i]!)) return 0
    cur = (cur as Record<string | number, unknown>)[path[i]!]
    if (Array.isArray(cur)) return i + 1
  }
  return 0
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
  // A key into an array is a path made for another shape of the state: the array gives way to an
  // object (a key set on an array would be a hidden property, lost in JSON and unseen by the app).
  const container: Record<string | number, unknown> | unknown[] = Array.isArray(node) && typeof seg === 'number'
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
  if (remove && (child === null || typeof child !== 'object')) return node
  c[seg] = setRec(child, path, i + 1, value, remove)
  return container
}

/**
 * Like setAt, but containers already copied in this epoch (`fresh`) are written in place.
 * `deeper` (default: `fresh`) tracks the containers two levels down and below (records and their
 * fields) on their own, for a caller that hands those out more often than the root and its children.
 */
export function setAtCow<T extends Record<string, unknown>>(state: T, path: Path, value: unknown, remove: boolean, fresh: WeakSet<object>, deeper: WeakSet<object> = fresh): T {
  assertSafePath(path)
  const root = own(state, fresh) as Record<string | number, unknown>
  let parent: Record<string | number, unknown> = root
  for (let i = 0; i < path.length - 1; i++) {
    const seg = path[i]!
    const child = Object.hasOwn(parent, seg) ? parent[seg] : undefined
    // Nothing to remove below a missing value or a scalar: removing names.u1.first where names.u1 is
    // 'Ann' turned 'Ann' into {} (an adversarial trial; the stores that applied the change kept 'Ann').
    if (remove && (child === null || typeof child !== 'object')) return root as T
    const c = (Array.isArray(child) && typeof path[i + 1] !== 'number' ? own(undefined, fresh) : own(child, i === 0 ? fresh : deeper)) as Record<string | number, unknown>
    parent[seg] = c
    parent = c
  }
  const last = path[path.length - 1]!
  if (remove) {
    if (Array.isArray(parent) && typeof last === 'number') parent.splice(last, 1)
    else delete parent[last]
  } else parent[last] = value
  return root as T
}

/** `node` itself when it was copied in this epoch, else a copy of it (a new object when it is no container). */
function own(node: unknown, fresh: WeakSet<object>): Record<string | number, unknown> | unknown[] {
  if (node !== null && typeof node === 'object' && fresh.has(node)) return node as Record<string, unknown>
  const copy: Record<string | number, unknown> | unknown[] = Array.isArray(node) ? node.slice() : isPlainObject(node) ? { ...node } : {}
  fresh.add(copy)
  return copy
}
