/**
 * The compact change encoding (src/core/wire.ts): whatever a change holds, decoding its encoding gives
 * it back exactly, through JSON as socket.io sends it; the encoding is much smaller than the object; a
 * malformed change is a typed error, never a wrong change.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ZyncError } from '../src/core/errors'
import { encodeHlc } from '../src/core/hlc'
import { entityOf } from '../src/core/path'
import type { Change, OpsResponse } from '../src/core/protocol'
import { decodeChange, decodeChangesMessage, decodeJoinResponse, decodeOpsResponse, encodeChange, encodeChangesMessage, encodeJoinResponse, encodeOpsResponse } from '../src/core/wire'

const viaJson = <T>(v: T): unknown => JSON.parse(JSON.stringify(v))

const nodeId = fc.oneof(fc.constantFrom('c1', 'client.with.dots', 'V1StGXR8_Z5jdHi6B-myT'), fc.string({ minLength: 1, maxLength: 12 }))
const json = fc.jsonValue().map((v) => JSON.parse(JSON.stringify(v)) as unknown)
const stamp = (node: fc.Arbitrary<string>) =>
  fc.tuple(fc.integer({ min: 0, max: 2 ** 48 }), fc.integer({ min: 0, max: 36 ** 6 - 1 }), node).map(([wall, counter, n]) => encodeHlc({ wall, counter, node: n }))
const seg = fc.oneof(fc.string({ minLength: 1, maxLength: 6 }).filter((s) => !['__proto__', 'constructor', 'prototype'].includes(s)), fc.nat(20))

const change: fc.Arbitrary<Change> = fc
  .record(
    {
      seq: fc.integer({ min: 1, max: 2 ** 40 }),
      opId: fc.string({ minLength: 1, maxLength: 24 }),
      client: nodeId,
      n: fc.integer({ min: 1, max: 2 ** 40 }),
      otherNode: fc.boolean(),
      path: fc.array(seg, { minLength: 1, maxLength: 3 }),
      kind: fc.constantFrom('set' as const, 'delete' as const),
      value: json,
      status: fc.constantFrom('applied' as const, 'superseded' as const, 'conflict' as const),
      policy: fc.constantFrom('lww' as const, 'local' as const, 'remote' as const, 'manual' as const, 'counter' as const, 'set' as const, 'custom' as const),
      atDelta: fc.integer({ min: -100_000, max: 100_000 }),
      user: fc.option(fc.string({ maxLength: 10 }), { nil: undefined }),
      proposed: fc.option(json, { nil: undefined }),
      prev: fc.option(json, { nil: undefined }),
      resolves: fc.option(fc.string({ minLength: 1, maxLength: 8 }), { nil: undefined }),
      winner: fc.option(fc.record({ client: nodeId, hlc: stamp(nodeId), at: fc.integer({ min: 0, max: 2 ** 48 }), user: fc.option(fc.string({ maxLength: 6 }), { nil: undefined }) }), { nil: undefined }),
      wall: fc.integer({ min: 0, max: 2 ** 48 }),
      counter: fc.integer({ min: 0, max: 36 ** 6 - 1 }),
      oddStamp: fc.boolean(),
    },
    { requiredKeys: ['seq', 'opId', 'client', 'n', 'otherNode', 'path', 'kind', 'value', 'status', 'policy', 'atDelta', 'wall', 'counter', 'oddStamp'] },
  )
  .map((r) => {
    const node = r.otherNode ? `${r.client}x` : r.client
    // A stamp not in canonical form (upper-case counter digits) must travel whole.
    const hlc = r.oddStamp ? `${String(r.wall).padStart(15, '0')}:${r.counter.toString(36).padStart(6, '0').toUpperCase()}:${node}` : encodeHlc({ wall: r.wall, counter: r.counter, node })
    const c: Change = { seq: r.seq, opId: r.opId, client: r.client, n: r.n, hlc, entity: entityOf(r.path), path: r.path, kind: r.kind, status: r.status, policy: r.policy, at: r.wall + r.atDelta }
    if (r.kind === 'set') c.value = r.value
    if (r.user !== undefined) c.user = r.user
    if ('proposed' in r) c.proposed = r.proposed
    if ('prev' in r) c.prev = r.prev
    if (r.resolves !== undefined) c.resolves = r.resolves
    if (r.winner) c.winner = { client: r.winner.client, hlc: r.winner.hlc, at: r.winner.at, ...(r.winner.user !== undefined ? { user: r.winner.user } : {}) }
    return viaJson(c) as Change
  })

describe('compact change encoding', () => {
  it('decodes every change to exactly what was encoded, through JSON', () => {
    fc.assert(
      fc.property(change, (c) => {
        expect(decodeChange(viaJson(encodeChange(c)))).toStrictEqual(c)
      }),
      { numRuns: 5000 },
    )
  })

  it('round-trips broadcasts, join answers and ops answers', () => {
    fc.assert(
      fc.property(fc.array(change, { maxLength: 5 }), (changes) => {
        expect(decodeChangesMessage(viaJson(encodeChangesMessage({ doc: 'd', changes })))).toStrictEqual({ doc: 'd', changes })
        const join = { ok: true as const, v: 2, seq: 9, changes, serverTime: 5 }
        expect(decodeJoinResponse(viaJson(encodeJoinResponse(join)))).toStrictEqual(join)
        const ops: OpsResponse = {
          ok: true,
          seq: 9,
          results: [
            ...changes.map((c) => ({ id: c.opId, ok: true as const, seq: c.seq, status: c.status, change: c })),
            { id: 'x', ok: true as const, seq: 3, status: 'applied' as const },
            { id: 'y', ok: false as const, code: 'BAD_REQUEST' as const, message: 'no', retryable: false },
          ],
        }
        expect(decodeOpsResponse(viaJson(encodeOpsResponse(ops)))).toStrictEqual(ops)
      }),
      { numRuns: 1000 },
    )
    const refused = { ok: false as const, code: 'FORBIDDEN' as const, message: 'no', retryable: false }
    expect(decodeJoinResponse(encodeJoinResponse(refused))).toStrictEqual(refused)
    expect(decodeOpsResponse(encodeOpsResponse(refused))).toStrictEqual(refused)
  })

  it('is a third of the object form for a typical applied change', () => {
    const client = 'V1StGXR8_Z5jdHi6B-myT'
    const c: Change = {
      seq: 1234,
      opId: 'Uakgb_J5m9g-0JDMbcJqL',
      client,
      user: 'alice',
      n: 87,
      hlc: encodeHlc({ wall: 1_763_780_000_123, counter: 0, node: client }),
      entity: 'todos\u0000t42',
      path: ['todos', 't42', 'title'],
      kind: 'set',
      value: 'Buy milk',
      status: 'applied',
      policy: 'lww',
      at: 1_763_780_000_125,
    }
    const compact = JSON.stringify(encodeChange(c)).length
    const object = JSON.stringify(c).length
    expect(compact).toBeLessThan(object * 0.55)
  })

  it('refuses malformed changes with a typed error', () => {
    for (const w of [null, 5, [], [1, 'a'], [1, 'a', 'c', 1, 'zz', ['x'], 999, 0], [1, 'a', 'c', 1, 'not-a-stamp', ['x'], 0, 0], ['1', 'a', 'c', 1, '1.0', ['x'], 0, 0], [1, 'a', 'c', 1, '1.0', [], 0, 0]]) {
      expect(() => decodeChange(w), JSON.stringify(w)).toThrow(ZyncError)
    }
    expect(() => decodeChangesMessage({ doc: 'd', changes: [] }), 'the object form of protocol 1').toThrow(ZyncError)
  })
})
