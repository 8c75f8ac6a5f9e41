/**
 * Schemas for every inbound message (zod). Anything that does not parse is refused with a typed
 * error and nothing is applied. Values are checked iteratively (depth, size, keys, prototypes).
 */
import { z } from 'zod'
import { ZyncError, type ZyncErrorCode } from '../core/errors'
import { decodeHlc } from '../core/hlc'
import { assertSafeTree, assertSafeValue, DOC_ID, isUnsafeSegment, LIMITS } from '../core/path'

const MAX_COUNTER = Number.MAX_SAFE_INTEGER
/** A version-vector counter (also a `since` seq). */
const counter = z.number().int().nonnegative().max(MAX_COUNTER)

const jsonValue = z.unknown().superRefine((v, ctx) => {
  try {
    assertSafeValue(v)
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message, params: { zync: (err as ZyncError).code } })
  }
})

const segment = z
  .union([z.string().max(512), z.number().int().nonnegative().max(1_000_000_000)])
  .refine((s) => !isUnsafeSegment(s), { message: 'path segment not allowed', params: { zync: 'UNSAFE_PATH' } })

export const pathSchema = z.array(segment).min(1).max(3, { message: 'ops address at most collection.record.field' })
const queryPath = z.array(segment).min(1).max(LIMITS.maxPathLength)

const safeKey = (max: number) =>
  z.string().min(1).max(max).refine((k) => !isUnsafeSegment(k), { message: 'key not allowed', params: { zync: 'UNSAFE_PATH' } })
const id = safeKey(128)
export const docIdSchema = z
  .string()
  .min(1)
  .max(256)
  .regex(DOC_ID, 'document ids use letters, digits and _ . : @ / -')
  .refine((d) => !isUnsafeSegment(d), { message: 'document id not allowed', params: { zync: 'UNSAFE_PATH' } })

const vector = z
  .record(id, counter)
  .refine((v) => Object.keys(v).length <= 10_000, { message: 'version vector too large', params: { zync: 'BAD_VECTOR' } })
  .refine((v) => Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null, { message: 'vector must be a plain object' })

const hlc = z.string().max(200).refine((s) => decodeHlc(s) !== undefined, { message: 'malformed hybrid logical clock timestamp' })

export const opSchema = z.strictObject({
  id,
  client: id,
  n: z.number().int().positive().max(MAX_COUNTER),
  hlc,
  op: z.enum(['add', 'replace', 'remove']),
  path: pathSchema,
  value: jsonValue.optional(),
  base: vector,
  policy: z.enum(['lww', 'local', 'remote', 'manual', 'counter', 'set', 'custom']).optional(),
  delta: z.number().finite().optional(),
  added: z.array(jsonValue).max(LIMITS.maxKeys).optional(),
  removed: z.array(jsonValue).max(LIMITS.maxKeys).optional(),
  idKey: safeKey(64).optional(),
  removedIds: z.array(z.union([z.string().max(512), z.number()])).max(LIMITS.maxKeys).optional(),
  prev: jsonValue.optional(),
  resolves: id.optional(),
})

/**
 * A compact op once decodeOp has rebuilt it. Its base vector was built from the batch's client table,
 * which the envelope validated (ids, count), with unsafe and repeated keys refused by decodeOp, into
 * a fresh plain object: only the counters are left to check, not each client id again per op (with
 * many writers of one entity, the per-key id checks were most of an op's validation).
 */
export const compactOpSchema = opSchema.extend({
  base: z.record(z.string(), counter),
})

export const joinSchema = z.strictObject({
  v: z.number().int(),
  doc: docIdSchema,
  client: id,
  since: counter,
  at: id.optional(),
})

export const opsSchema = z.strictObject({
  doc: docIdSchema,
  ops: z.array(opSchema).min(1).max(1000),
})

/**
 * The envelope of an ops batch; each op is then parsed with `opSchema` on its own. Ops come as objects
 * (`ops`) or in the compact form the zync client sends (`o` with its client table `k`, core/wire.ts).
 */
const objectOpsEnvelope = z.strictObject({
  doc: docIdSchema,
  ops: z.array(z.unknown()).min(1).max(1000),
})
const compactOpsEnvelope = z.strictObject({
  doc: docIdSchema,
  o: z.array(z.unknown()).min(1).max(1000),
  // The clients of the batch's ops and of their base vectors (a vector has at most 10,000).
  k: z.array(id).min(1).max(10_000),
  // The client takes its own changes applied as sent in the short form (core/wire.ts).
  s: z.literal(1).optional(),
})

export type OpsEnvelope = z.infer<typeof objectOpsEnvelope> | z.infer<typeof compactOpsEnvelope>

/** Parses an ops envelope in either form (chosen by its keys, so refusals name the exact problem). */
export function parseOpsEnvelope(input: unknown): OpsEnvelope {
  const compact = input !== null && typeof input === 'object' && !Array.isArray(input) && Object.hasOwn(input, 'o')
  return compact ? parse(compactOpsEnvelope, input) : parse(objectOpsEnvelope, input)
}

export const historySchema = z.strictObject({
  doc: docIdSchema,
  path: queryPath.optional(),
  limit: z.number().int().positive().max(1000).optional(),
})

export const presenceSchema = z.strictObject({
  doc: docIdSchema,
  state: z.union([z.null(), z.record(safeKey(128), jsonValue)]),
})

export const leaveSchema = z.strictObject({ doc: docIdSchema })

/** Messages wrap values a few levels deep (ops -> op -> value). */
const MESSAGE_DEPTH = LIMITS.maxDepth + 8

/**
 * Checks a whole inbound message before the schema sees it: plain objects and arrays only (no
 * binary attachments), bounded depth, and no own key that could reach a prototype anywhere. The
 * schema alone is not enough: zod's records silently drop a `__proto__` key instead of refusing it.
 * Iterative, so deep input cannot overflow the stack.
 */
function assertSafeMessage(input: unknown): void {
  // Depth counted as before: a message may be MESSAGE_DEPTH levels deep, not one more.
  assertSafeTree(input, { maxDepth: MESSAGE_DEPTH + 1, depthLabel: MESSAGE_DEPTH, scalars: false, what: 'message', plainOnly: '[zync] messages hold plain objects, arrays and JSON values only' })
}

/**
 * Parses or throws a ZyncError whose code says what was wrong. `scanned`: the input is part of a message
 * that already passed the whole-message safety scan (an op inside a parsed ops envelope), so it is not
 * walked again.
 */
export function parse<T>(schema: z.ZodType<T>, input: unknown, scanned = false): T {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new ZyncError('BAD_REQUEST', '[zync] a message must be an object')
  }
  const proto = Object.getPrototypeOf(input)
  if (proto !== Object.prototype && proto !== null) throw new ZyncError('BAD_REQUEST', '[zync] a message must be a plain object')
  if (!scanned) assertSafeMessage(input)
  const r = schema.safeParse(input)
  if (r.success) return r.data
  const issue = r.error.issues[0]!
  const params = (issue as { params?: { zync?: ZyncErrorCode } }).params
  let code: ZyncErrorCode = params?.zync ?? 'BAD_REQUEST'
  if (!params?.zync && issue.code === 'too_big') code = 'TOO_LARGE'
  const where = issue.path.length ? ` at ${issue.path.join('.')}` : ''
  // Issue texts can quote the input (unrecognized key names): keep the answer small.
  throw new ZyncError(code, `[zync] invalid message${where}: ${issue.message}`.slice(0, 300))
}
