import type { Path } from './path'
import type { WirePolicy } from './protocol'

export interface ConflictMeta {
  clientId: string
  userId?: string
  time: number
}

/** An app rule for concurrent writes to one field: returns the value every replica converges on. */
export type ConflictResolver = (args: {
  path: Path
  base: unknown
  local: unknown
  remote: unknown
  localMeta: ConflictMeta
  remoteMeta: ConflictMeta
}) => unknown

/**
 * - 'lww': the later hybrid-logical-clock timestamp wins, ties broken by client id (default).
 * - 'local': the incoming write wins (client wins). 'remote': the server's value wins (server wins).
 * - 'manual': the conflict goes to the inbox for a person to settle.
 * - 'counter': numeric; concurrent increments all count. 'set': arrays of primitives merge as an add/remove set.
 * - a function: your rule, run on the client whose write raced.
 */
export type ConflictPolicy = 'lww' | 'local' | 'remote' | 'manual' | 'counter' | 'set' | ConflictResolver

export interface ConflictsConfig {
  /** Policy for paths no pattern matches. Default 'lww'. */
  default?: ConflictPolicy
  /** Policies by dotted path pattern; `*` matches one segment: `{ 'cards.*.title': 'manual' }`. */
  paths?: Record<string, ConflictPolicy>
  /**
   * Arrays of objects with this key merge by identity (concurrent inserts both survive, edits of
   * different elements both survive). Default 'id'. `false` turns it off: such arrays are whole values.
   */
  idKey?: string | false
}

interface Compiled {
  segs: string[]
  policy: ConflictPolicy
  specificity: number
}

/** Resolves the policy for a path: most specific matching pattern, then the default. */
export class PolicyTable {
  private readonly rules: Compiled[]
  private readonly fallback: ConflictPolicy
  readonly idKey: string | false

  constructor(config: ConflictsConfig = {}) {
    this.fallback = config.default ?? 'lww'
    this.idKey = config.idKey ?? 'id'
    this.rules = Object.entries(config.paths ?? {})
      .map(([pattern, policy]) => {
        const segs = pattern.split('.')
        return { segs, policy, specificity: segs.filter((s) => s !== '*').length * 100 + segs.length }
      })
      .sort((a, b) => b.specificity - a.specificity)
  }

  policyFor(path: Path): ConflictPolicy {
    for (const r of this.rules) if (matches(r.segs, path)) return r.policy
    return this.fallback
  }
}

function matches(segs: string[], path: Path): boolean {
  if (segs.length !== path.length) return false
  for (let i = 0; i < segs.length; i++) if (segs[i] !== '*' && segs[i] !== String(path[i])) return false
  return true
}

export function wirePolicy(p: ConflictPolicy): WirePolicy {
  return typeof p === 'function' ? 'custom' : p
}
