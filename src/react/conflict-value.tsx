import type { ReactNode } from 'react'
import { wordDiff } from './word-diff'

const json = (v: unknown): string => (v === undefined ? '—' : JSON.stringify(v))
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null

/**
 * Shows `value` as a change from `base`: words inserted and deleted for strings; for objects, each key
 * added or removed (the line marked) or changed (~~before~~ after), nested objects key by key, indented;
 * for arrays, items added and removed, matched by value (not by position); any other value replaced as
 * ~~before~~ after.
 */
export function ConflictValue({ value, base }: { value: unknown; base: unknown }): ReactNode {
  if (typeof value === 'string' && typeof base === 'string')
    return wordDiff(base, value).map(([op, t], i) => (op ? op > 0 ? <ins key={i}>{t}</ins> : <del key={i}>{t}</del> : t))
  if (Array.isArray(value)) {
    const was = Array.isArray(base) ? base.map(json) : []
    const now = value.map(json)
    return (
      <ul className="zync-kv">
        {now.map((v, i) => (
          <li key={i}>{was.includes(v) ? v : <ins>{v}</ins>}</li>
        ))}
        {was
          .filter((v) => !now.includes(v))
          .map((v, i) => (
            <li key={'-' + i}>
              <del>{v}</del>
            </li>
          ))}
      </ul>
    )
  }
  if (isObj(value)) {
    const was = isObj(base) && !Array.isArray(base) ? base : {}
    const keys = [...new Set([...Object.keys(value), ...Object.keys(was)])]
    return (
      <ul className="zync-kv">
        {keys.map((k) => {
          const v = value[k]
          const key = <span className="zync-key">{k}</span>
          if (!(k in value))
            return (
              <li key={k}>
                <del>
                  {key} {json(was[k])}
                </del>
              </li>
            )
          // A nested object, key by key (one changed key does not light up the whole value), changed or not.
          if (isObj(v) && !Array.isArray(v) && isObj(was[k]) && !Array.isArray(was[k]))
            return (
              <li key={k}>
                {key} <ConflictValue value={v} base={was[k]} />
              </li>
            )
          const old = json(was[k])
          return (
            <li key={k}>
              {json(v) === old ? (
                <>
                  {key} {old}
                </>
              ) : k in was ? (
                <>
                  {key}{' '}
                  <span>
                    <del>{old}</del> <ins>{json(v)}</ins>
                  </span>
                </>
              ) : (
                <ins>
                  {key} {json(v)}
                </ins>
              )}
            </li>
          )
        })}
      </ul>
    )
  }
  if (json(value) === json(base)) return json(value)
  return base === undefined ? (
    <ins>{json(value)}</ins>
  ) : (
    <>
      <del>{json(base)}</del> <ins>{json(value)}</ins>
    </>
  )
}
