import { ZyncError } from './errors'
import { OP_DEPTH, type Path } from './path'
import type { WirePolicy } from './protocol'

export interface ConflictMeta {
  clientId: string
  userId?: string
  time: number
}

/**
 * An app rule for concurrent writes to one field: returns the value every replica converges on. Runs
 * synchronously on the client whose write raced; must be deterministic. Throwing, returning a promise,
 * or `undefined` where neither side removed the field sends the conflict to the inbox instead (as
 * 'manual'), with an INVALID_RESOLUTION warning.
 */
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
 * - a function: your rule, run on the client whose write raced (see ConflictResolver).
 */
export type ConflictPolicy = 'lww' | 'local' | 'remote' | 'manual' | 'counter' | 'set' | ConflictResolver

export interface ConflictsConfig {
  /** Policy for paths no pattern matches. Default 'lww'. */
  default?: ConflictPolicy
  /**
   * Policies by dotted path pattern; `*` matches one segment: `{ 'cards.*.title': 'manual' }`. A shorter
   * pattern covers everything below it too (`'cards'`: every field of every card); the most specific
   * pattern wins. Ops go at most three segments deep (collection.record.field; a value below a field is
   * written whole, an object there merging by key), so a pattern has one to three segments. Default `{}`.
   */
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
    this.fallback = checked(config.default ?? 'lww', 'default')
    this.idKey = config.idKey ?? 'id'
    if (this.idKey !== false && (typeof this.idKey !== 'string' || this.idKey === '')) throw invalid(`idKey must be a property name or false (got ${JSON.stringify(config.idKey)})`)
    const paths = config.paths ?? {}
    if (typeof paths !== 'object' || Array.isArray(paths)) throw invalid("paths must be an object of patterns, e.g. { 'cards.*.title': 'manual' }")
    this.rules = Object.entries(paths)
      .map(([pattern, policy]) => {
        const segs = pattern.split('.')
        const where = `paths[${JSON.stringify(pattern)}]`
        if (segs.some((seg) => seg === '' || (seg !== '*' && seg.includes('*')))) throw invalid(`${where}: segments are names or * separated by dots, e.g. 'cards.*.title'`)
        // Never matched: an op's path stops at the field, and what is below it is written whole.
        if (segs.length > OP_DEPTH) throw invalid(`${where}: ops are at most ${OP_DEPTH} segments deep (collection.record.field) and a value below a field is written whole; set the policy on '${segs.slice(0, OP_DEPTH).join('.')}'`)
        checked(policy, where)
        return { segs, policy, specificity: segs.filter((s) => s !== '*').length * 100 + segs.length }
      })
      .sort((a, b) => b.specificity - a.specificity)
  }

  policyFor(path: Path): ConflictPolicy {
    for (const r of this.rules) if (matches(r.segs, path)) return r.policy
    return this.fallback
  }
}

const POLICIES = ['lww', 'local', 'remote', 'manual', 'counter', 'set']
const invalid = (m: string): ZyncError => new ZyncError('BAD_REQUEST', `[zync] conflicts.${m}`)

function checked(p: ConflictPolicy, where: string): ConflictPolicy {
  if (typeof p !== 'function' && !POLICIES.includes(p)) throw invalid(`${where}: unknown policy ${JSON.stringify(p)} (use ${POLICIES.join(', ')} or a function)`)
  return p
}

/** The pattern matches the path or a path above it. */
function matches(segs: string[], path: Path): boolean {
  if (segs.length > path.length) return false
  for (let i = 0; i < segs.length; i++) if (segs[i] !== '*' && segs[i] !== String(path[i])) return false
  return true
}

export function wirePolicy(p: ConflictPolicy): WirePolicy {
  return typeof p === 'function' ? 'custom' : p
}
