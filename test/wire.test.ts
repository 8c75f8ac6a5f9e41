/**
 * The compact change encoding (src/core/wire.ts): whatever a change holds, decoding its encoding gives
 * it back exactly, through JSON as socket.io sends it; the encoding is much smaller than the object; a
 * malformed change is a typed error, never a wrong change.
 */
import fc from 'fast-check'
import { describe, expect, it, vi } from 'vitest'
import { ZyncError } from '../src/core/errors'
import { encodeHlc } from '../src/core/hlc'
import { entityOf } from '../src/core/path'
import type { Change, Op, OpsResponse } from '../src/core/protocol'
import {
  decodeChangesMessage,
  decodeJoinResponse,
  decodeOneChange,
  decodeOp,
  decodeOpsResponse,
  encodeChangesMessage,
  encodeCompactOpsResponse,
  encodeJoinResponse,
  encodeOneChange,
  encodeOpsRequest,
  encodeOpsResponse,
} from '../src/core/wire'

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

  const op: fc.Arbitrary<Op> = fc
    .record(
      {
        id: fc.string({ minLength: 1, maxLength: 24 }),
        client: nodeId,
        n: fc.integer({ min: 1, max: 2 ** 40 }),
        wall: fc.integer({ min: 0, max: 2 ** 48 }),
        counter: fc.integer({ min: 0, max: 36 ** 6 - 1 }),
        op: fc.constantFrom('add' as const, 'replace' as const, 'remove' as const),
        path: fc.constantFrom(['a'], ['a', 'b'], ['a', 'b', 'c'], ['x', 3]),
        value: json,
        base: fc.dictionary(fc.string({ minLength: 1, maxLength: 4 }), fc.nat()),
        policy: fc.option(fc.constantFrom('lww' as const, 'counter' as const, 'set' as const, 'manual' as const), { nil: undefined }),
        delta: fc.option(fc.integer(), { nil: undefined }),
        added: fc.option(fc.array(json, { maxLength: 3 }), { nil: undefined }),
        idKey: fc.option(fc.constant('id'), { nil: undefined }),
        prev: fc.option(json, { nil: undefined }),
        resolves: fc.option(fc.string({ minLength: 1, maxLength: 8 }), { nil: undefined }),
      },
      { requiredKeys: ['id', 'client', 'n', 'wall', 'counter', 'op', 'path', 'value', 'base'] },
    )
    .map(({ wall, counter, value, ...r }) => {
      const o = { ...r, hlc: encodeHlc({ wall, counter, node: r.client }), ...(r.op !== 'remove' ? { value } : {}) } as Op
      for (const k of Object.keys(o) as Array<keyof Op>) if (o[k] === undefined && k !== 'prev') delete o[k]
      return viaJson(o) as Op
    })

describe('compact change encoding', () => {
  it('decodes every change to exactly what was encoded, through JSON', () => {
    fc.assert(
      fc.property(change, (c) => {
        expect(decodeOneChange(viaJson(encodeOneChange(c)) as { c: unknown; u?: unknown })).toStrictEqual(c)
      }),
      { numRuns: 5000 },
    )
  })

  it('round-trips broadcasts, join answers and ops answers', () => {
    fc.assert(
      fc.property(fc.array(change, { maxLength: 5 }), (changes) => {
        // Broadcasts: superseded changes travel without proposed, prev and winner (readers only advance past them).
        const trimmed = changes.map((c) => {
          if (c.status !== 'superseded') return c
          const { proposed: _p, prev: _q, winner: _w, ...rest } = c
          return rest
        })
        expect(decodeChangesMessage(viaJson(encodeChangesMessage({ doc: 'd', changes })))).toStrictEqual({ doc: 'd', changes: trimmed })
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
        // A compact answer that carries the batch's own changes (a lone writer's ack).
        const withChanges = { ok: true as const, seq: 9, results: [{ id: 'a', ok: true as const, seq: 9, status: 'applied' as const }], changes }
        expect(decodeOpsResponse(viaJson(encodeCompactOpsResponse(withChanges)), ['a'])).toStrictEqual(withChanges)
      }),
      { numRuns: 1000 },
    )
    const refused = { ok: false as const, code: 'FORBIDDEN' as const, message: 'no', retryable: false }
    expect(decodeJoinResponse(encodeJoinResponse(refused))).toStrictEqual(refused)
    expect(decodeOpsResponse(encodeOpsResponse(refused))).toStrictEqual(refused)
  })

  it('is under 40% of the object form for typical applied changes', () => {
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
    // In a broadcast of 16 such changes by one user: the user id is sent once.
    const changes = Array.from({ length: 16 }, (_, i) => ({ ...c, seq: c.seq + i }))
    const compact = JSON.stringify(encodeChangesMessage({ doc: 'd', changes })).length
    const object = JSON.stringify({ doc: 'd', changes }).length
    expect(compact).toBeLessThan(object * 0.4)
  })

  it('refuses malformed changes with a typed error', () => {
    for (const w of [null, 5, [], [1, 'a'], [1, 'a', 'c', 1, 'zz', ['x'], 999, 0], [1, 'a', 'c', 1, 'not-a-stamp', ['x'], 0, 0], ['1', 'a', 'c', 1, '1.0', ['x'], 0, 0], [1, 'a', 'c', 1, '1.0', [], 0, 0]]) {
      expect(() => decodeOneChange({ c: w }), JSON.stringify(w)).toThrow(ZyncError)
    }
    // A user index outside the message's user table.
    expect(() => decodeOneChange({ c: [1, 'a', 'c', 1, '1.0', ['x'], 64 * 3, 0, 1], u: ['only-one'] })).toThrow(ZyncError)
    expect(() => decodeOneChange({ c: [1, 'a', 'c', 1, '1.0', ['x'], 0, 0, 1], u: [5] })).toThrow(ZyncError)
    expect(() => decodeChangesMessage({ doc: 'd', changes: [] }), 'the object form of protocol 1').toThrow(ZyncError)
  })

  it('round-trips ops batches (client → server) and their positional answers', () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 6 }), (list) => {
        const wire = viaJson(encodeOpsRequest({ doc: 'd', ops: list })) as { o: unknown[]; k: string[] }
        let previous: unknown
        const back = wire.o.map((w) => {
          const o = decodeOp(w, wire.k, previous)
          previous = o.path
          return o
        })
        expect(back).toStrictEqual(list)
        const answer = {
          ok: true as const,
          seq: 50,
          results: list.map((o, i) =>
            i % 3 === 1
              ? { id: o.id, ok: true as const, seq: i + 1, status: 'applied' as const }
              : i % 3 === 2
                ? { id: o.id, ok: true as const, seq: i + 1, status: 'superseded' as const }
                : { id: o.id, ok: false as const, code: 'FORBIDDEN' as const, message: 'no', retryable: false, opId: o.id },
          ),
        }
        expect(decodeOpsResponse(viaJson(encodeCompactOpsResponse(answer)), list.map((o) => o.id))).toStrictEqual(answer)
      }),
      { numRuns: 2000 },
    )
  })

  it('gives a client that asks for it its own changes applied as sent as their op index, decoded to the same changes', () => {
    fc.assert(
      fc.property(fc.uniqueArray(op, { minLength: 1, maxLength: 8, selector: (o) => o.id }), fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }), fc.boolean(), (list, merged, withUser) => {
        const onServer = list.map((o) => viaJson(o) as Op) // what the server parsed from the request
        const at = 1_700_000_000_000
        const results = list.map((o, i) => ({ id: o.id, ok: true as const, seq: 10 + i, status: 'applied' as const }))
        const changes = onServer.map((o, i): Change => {
          const c: Change = { seq: 10 + i, opId: o.id, client: o.client, n: o.n, hlc: o.hlc, entity: entityOf(o.path), path: o.path, kind: o.op === 'remove' ? 'delete' : 'set', status: 'applied', policy: o.policy ?? 'lww', at }
          if (withUser) c.user = 'u1'
          // A merged (or counter, set) result is another value than the op's: it travels whole.
          if (o.op !== 'remove') c.value = merged[i] ? viaJson(o.value) : o.value
          if (o.resolves !== undefined) c.resolves = o.resolves
          return c
        })
        const answer = { ok: true as const, seq: 10 + list.length - 1, results, changes }
        const wire = viaJson(encodeCompactOpsResponse(answer, onServer)) as { x: { c: unknown[] } }
        const asSent = changes.filter((c, i) => c.kind === 'delete' || c.value === onServer[i]!.value).length
        expect(wire.x.c.filter((e) => typeof e === 'number')).toHaveLength(asSent)
        expect(decodeOpsResponse(wire, list)).toStrictEqual(viaJson(answer))
        // Without the request's ops, or for a client that did not ask, every change travels whole.
        if (asSent > 0) expect(() => decodeOpsResponse(wire, list.map((o) => o.id))).toThrow(ZyncError)
        expect(decodeOpsResponse(viaJson(encodeCompactOpsResponse(answer)), list.map((o) => o.id))).toStrictEqual(viaJson(answer))
      }),
      { numRuns: 1000 },
    )
  })
})

describe('ZyncError across copies of zync', () => {
  it('instanceof holds for a ZyncError of another copy of the module, and only for ZyncErrors', async () => {
    // A second evaluation of the module: another class, as the CLI's bundle, the CommonJS build beside
    // the ESM one, or a second installed version have.
    vi.resetModules()
    const copy = '../src/core/errors?copy'
    const other = (await import(/* @vite-ignore */ copy)) as typeof import('../src/core/errors')
    expect(other.ZyncError).not.toBe(ZyncError)
    const theirs = new other.ZyncError('INTERNAL', 'identity provider unreachable', { retryable: true })
    expect(theirs instanceof ZyncError).toBe(true)
    expect(new ZyncError('FORBIDDEN', 'no') instanceof other.ZyncError).toBe(true)
    const lookalike = Object.assign(new Error('x'), { name: 'ZyncError', code: 'INTERNAL', retryable: true })
    expect(lookalike instanceof ZyncError).toBe(false)
    expect({ code: 'INTERNAL' } instanceof ZyncError).toBe(false)
    expect((null as unknown as object) instanceof ZyncError).toBe(false)
    // Other error classes keep the usual check.
    class Other extends Error {}
    expect(theirs instanceof Other).toBe(false)
    expect(new Other() instanceof Error).toBe(true)
  })
})
