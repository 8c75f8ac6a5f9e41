import { Fragment, type ReactNode } from 'react'
import { wordDiff } from './word-diff'

const json = (v: unknown): string => (v === undefined ? '—' : JSON.stringify(v))
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null
const isRecord = (v: unknown): v is Record<string, unknown> => isObj(v) && !Array.isArray(v)
/** The id of an array element that is an object with one under `idKey`, else undefined. */
const idOf = (v: unknown, idKey: string): string | undefined => {
  const id = isObj(v) ? v[idKey] : undefined
  return typeof id === 'string' || typeof id === 'number' ? `${typeof id}:${id}` : undefined
}

/**
 * Shows `value` as a change from `base`: words inserted and deleted for strings; for objects, each key
 * added or removed (the line marked) or changed (~~before~~ after), nested objects key by key, indented;
 * for arrays, items added and removed, matched by value (not by position), and an object with an id
 * (under `idKey`, default `'id'`) that was there before shown edited key by key where it is; objects in an
 * array are shown key by key whether kept, added or removed; any other value replaced as ~~before~~ after.
 */
export function ConflictValue({ value, base, idKey = 'id' }: { value: unknown; base: unknown; idKey?: string | undefined }): ReactNode {
  if (typeof value === 'string' && typeof base === 'string')
    return wordDiff(base, value).map(([op, t], i) => {
      if (!op) return t
      // The spaces around a changed run stay outside its mark: an underlined leading space read as "_word".
      const [, before = '', core = '', after = ''] = /^(\s*)([\s\S]*?)(\s*)$/.exec(t) ?? []
      const mark = op > 0 ? <ins>{core || t}</ins> : <del>{core || t}</del>
      return core ? (
        <Fragment key={i}>
          {before}
          {mark}
          {after}
        </Fragment>
      ) : (
        <Fragment key={i}>{mark}</Fragment>
      )
    })
  if (Array.isArray(value)) {
    const before = Array.isArray(base) ? base : []
    const was = before.map(json)
    const now = value.map(json)
    // An element with an id that was there before is shown as edited, key by key, where it is now.
    const earlier = new Map(before.map((x) => [idOf(x, idKey), x]))
    const ids = new Set(value.map((x) => idOf(x, idKey) ?? json(x)))
    // Records are shown key by key whether kept, edited, added (every key marked) or removed: a list of
    // records reads as one kind of line, not compact JSON beside expanded keys.
    return (
      <ul className="zync-kv">
        {now.map((v, i) => {
          const x = value[i]
          const id = idOf(x, idKey)
          const kept = was.includes(v)
          return (
            <li key={i} className={isRecord(x) ? 'zync-item' : undefined}>
              {isRecord(x) ? <ConflictValue value={x} base={kept ? x : id !== undefined && earlier.has(id) ? earlier.get(id) : {}} idKey={idKey} /> : kept ? v : <ins>{v}</ins>}
            </li>
          )
        })}
        {before
          .filter((x, i) => !now.includes(was[i]!) && !ids.has(idOf(x, idKey) ?? was[i]!))
          .map((x, i) => (
            <li key={'-' + i} className={isRecord(x) ? 'zync-item' : undefined}>
              {isRecord(x) ? <ConflictValue value={{}} base={x} idKey={idKey} /> : <del>{json(x)}</del>}
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
                {key} <ConflictValue value={v} base={was[k]} idKey={idKey} />
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
  // Text new on this side (a record both devices created) reads as text, as it does against a base.
  return base === undefined ? (
    <ins>{typeof value === 'string' ? value : json(value)}</ins>
  ) : (
    <>
      <del>{json(base)}</del> <ins>{json(value)}</ins>
    </>
  )
}
