import type { ReactNode } from 'react'
import { wordDiff } from './word-diff'

const json = (v: unknown): string => (v === undefined ? '—' : JSON.stringify(v))
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null

/**
 * Shows `value` as a change from `base`: words inserted and deleted for strings, changed keys
 * (or array items) for objects, the whole value marked when anything else differs.
 */
export function ConflictValue({ value, base }: { value: unknown; base: unknown }): ReactNode {
  if (typeof value === 'string' && typeof base === 'string')
    return wordDiff(base, value).map(([op, t], i) => (op ? op > 0 ? <ins key={i}>{t}</ins> : <del key={i}>{t}</del> : t))
  if (isObj(value)) {
    const was = isObj(base) ? base : {}
    const keys = [...new Set([...Object.keys(value), ...Object.keys(was)])]
    return (
      <ul className="zync-kv">
        {keys.map((k) => {
          const v = json(value[k])
          const line = (
            <>
              <span className="zync-key">{k}</span> {k in value ? v : json(was[k])}
            </>
          )
          return (
            <li key={k}>{!(k in value) ? <del>{line}</del> : v !== json(was[k]) ? <ins>{line}</ins> : line}</li>
          )
        })}
      </ul>
    )
  }
  return json(value) === json(base) ? json(value) : <ins>{json(value)}</ins>
}
