/**
 * Statements compiled once: a hot-path builder is compiled with {@link Slot}s in place of its
 * inputs, and every later call reuses the SQL text and fills the parameter array. Only parameters
 * ever vary, never the SQL text (R-DB-1 holds by construction).
 */
import { RecoveryCodesError } from '@recovery-codes/core'
import { type Compilable, type CompiledQuery, type RawBuilder, sql } from 'kysely'

/** A named placeholder for {@link template}. */
export class Slot {
  constructor(readonly name: string) {}
}

/** A compiled statement with named slots: the SQL text, and per parameter a slot name or a constant. */
interface Template {
  sql: string
  query: CompiledQuery['query']
  params: ({ slot: string } | { value: unknown })[]
}

/** A function from slot values to a ready `CompiledQuery` (see {@link template}). */
export type Compiled<I> = (values: I) => CompiledQuery

/**
 * Compiles `build` once with {@link Slot}s as inputs (through the host's Kysely instance, so its
 * plugins apply) and returns a function that turns input values into a `CompiledQuery`: no builder
 * allocation or compilation per call. Each input must be passed to the builder unchanged (slots
 * pass through `ts()` and {@link bytes}); every other parameter is a constant of the statement.
 */
export function template<I extends Record<string, unknown>>(
  build: (slots: I) => Compilable<unknown>,
  names: readonly (keyof I & string)[],
): Compiled<I> {
  let t: Template | undefined
  return (values) => {
    if (t === undefined) {
      const c = compileSlots(build, names)
      t = {
        sql: c.sql,
        query: c.query,
        params: c.parameters.map((p) => (p instanceof Slot ? { slot: p.name } : { value: p })),
      }
    }
    const parameters = t.params.map((p) => ('slot' in p ? values[p.slot] : p.value))
    return { sql: t.sql, query: t.query, parameters, queryId: { queryId: nextQueryId() } }
  }
}

/**
 * {@link template} with the input values by position, in the order of `names`: no record of named
 * values is built per call. When the statement binds exactly those slots in that order (list them in
 * the order the builder binds them), `values` itself becomes the parameter array, so pass a fresh one.
 */
export function positionalTemplate<I extends Record<string, unknown>>(
  build: (slots: I) => Compilable<unknown>,
  names: readonly (keyof I & string)[],
): (values: unknown[]) => CompiledQuery {
  let t: { sql: string; query: CompiledQuery['query']; at: number[]; constants: unknown[] } | undefined
  let same = false
  return (values) => {
    if (t === undefined) {
      const c = compileSlots(build, names)
      // Per parameter: the index of its input, or -1 for a constant of the statement.
      const at = c.parameters.map((p) => (p instanceof Slot ? names.indexOf(p.name as keyof I & string) : -1))
      t = { sql: c.sql, query: c.query, at, constants: [...c.parameters] }
      same = at.length === names.length && at.every((x, j) => x === j)
    }
    let parameters = values
    if (!same) {
      const { at, constants } = t
      parameters = new Array(at.length)
      for (let j = 0; j < at.length; j++) parameters[j] = at[j]! < 0 ? constants[j] : values[at[j]!]
    }
    return { sql: t.sql, query: t.query, parameters, queryId: { queryId: nextQueryId() } }
  }
}

/** `build` compiled with a {@link Slot} for each of `names`. */
function compileSlots<I>(build: (slots: I) => Compilable<unknown>, names: readonly string[]): CompiledQuery {
  const slots = Object.fromEntries(names.map((n) => [n, new Slot(n)])) as unknown as I
  return build(slots).compile()
}

let queryIds = 0
function nextQueryId(): string {
  queryIds = (queryIds + 1) % 1e9
  return `rc${queryIds}`
}

/** A constant statement (transaction control, a clock read), compiled once per store. */
export function constant(
  text: RawBuilder<unknown>,
  db: { getExecutor(): unknown },
): Compiled<Record<string, never>> {
  return template<Record<string, never>>(() => ({ compile: () => text.compile(db as never) }), [])
}

/** Slot names `p0 … p{n-1}`. */
export const slotNames = (p: string, n: number): string[] => Array.from({ length: n }, (_, j) => `${p}${j}`)

/** `values` as slots `p0 …` of `into`. */
export function slotValues(
  p: string,
  values: readonly unknown[],
  into: Record<string, unknown> = {},
): Record<string, unknown> {
  values.forEach((v, j) => {
    into[`${p}${j}`] = v
  })
  return into
}

/** `v1, v2, …` with every value bound as a parameter; empty for no values (`array[]`). */
export function boundList(values: readonly unknown[]): RawBuilder<unknown> {
  let out: RawBuilder<unknown> = sql``
  values.forEach((v, j) => {
    out = j === 0 ? sql`${v}` : sql`${out}, ${v}`
  })
  return out
}

/** Raw 32-byte digests go to the driver as a `Buffer` (better-sqlite3, pg and mysql2 bind it as a blob). */
export function bytes(d: Uint8Array): Buffer {
  if (d instanceof Slot) return d as never
  if (!(d instanceof Uint8Array)) throw new RecoveryCodesError('INVALID_INPUT', 'digest must be a Uint8Array')
  return Buffer.isBuffer(d) ? d : Buffer.from(d.buffer, d.byteOffset, d.byteLength)
}
