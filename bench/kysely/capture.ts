/**
 * Capture and replay of the statements the store sends, so the bench measures whatever the store
 * does (no store SQL is written down here).
 *
 * - {@link capturingDialect} wraps a Kysely dialect: every `executeQuery` on its connections (the
 *   store's statements, and `begin` / `commit` of Kysely transactions, which drivers send through
 *   the same connection) is recorded with its SQL text, its parameters as handed to the driver, and
 *   its result rows. A second Kysely instance over the same database handle / pool is built on it, so
 *   the store's own instance runs unwrapped.
 * - {@link bindStatements} turns one captured successful redeem into a template: each parameter is
 *   bound to the redeem's inputs (user id, digest, now, audit id; strings and JSON built from them),
 *   to a value an earlier statement of the same redeem returned (batch id, remaining, …), to a time
 *   relative to `now` (the PostgreSQL start deadline), or kept as the captured constant.
 * - {@link sqliteReplayer} / {@link pgReplayer} run the template by hand on a raw driver handle:
 *   prepared better-sqlite3 statements, or node-postgres named prepared statements; every
 *   statement's row count must match the capture (a replay that consumes nothing fails loudly).
 */
import type BetterSqlite3 from 'better-sqlite3'
import {
  type DatabaseConnection,
  type Dialect,
  type Driver,
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type QueryResult,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
} from 'kysely'
import type pg from 'pg'

const DAY = 86_400_000

export interface CapturedStatement {
  sql: string
  parameters: readonly unknown[]
  rows: readonly Record<string, unknown>[]
  numAffectedRows: bigint | undefined
}

/** Where a {@link capturingDialect} records; recording happens only while `on`. */
export interface CaptureSink {
  on: boolean
  statements: CapturedStatement[]
}

export function capturingDialect(inner: Dialect, sink: CaptureSink): Dialect {
  return {
    createAdapter: () => inner.createAdapter(),
    createQueryCompiler: () => inner.createQueryCompiler(),
    createIntrospector: (db: Kysely<any>) => inner.createIntrospector(db),
    createDriver: () => capturingDriver(inner.createDriver(), sink),
  }
}

function capturingDriver(d: Driver, sink: CaptureSink): Driver {
  const wrapped = new WeakMap<DatabaseConnection, DatabaseConnection>()
  const unwrapped = new WeakMap<DatabaseConnection, DatabaseConnection>()
  const wrap = (c: DatabaseConnection): DatabaseConnection => {
    let w = wrapped.get(c)
    if (w === undefined) {
      w = {
        async executeQuery(q) {
          const r = (await c.executeQuery(q)) as QueryResult<Record<string, unknown>>
          if (sink.on) {
            sink.statements.push({
              sql: q.sql,
              parameters: [...q.parameters],
              rows: r.rows,
              numAffectedRows: r.numAffectedRows,
            })
          }
          return r as never
        },
        streamQuery: (q, n) => c.streamQuery(q, n),
      }
      wrapped.set(c, w)
      unwrapped.set(w, c)
    }
    return w
  }
  const un = (w: DatabaseConnection) => unwrapped.get(w) ?? w
  return {
    init: () => d.init(),
    acquireConnection: async () => wrap(await d.acquireConnection()),
    // Given the wrapped connection: drivers send BEGIN / COMMIT through it, so they are recorded.
    beginTransaction: (c, s) => d.beginTransaction(c, s),
    commitTransaction: (c) => d.commitTransaction(c),
    rollbackTransaction: (c) => d.rollbackTransaction(c),
    savepoint: (c, n, cq) => d.savepoint!(c, n, cq),
    rollbackToSavepoint: (c, n, cq) => d.rollbackToSavepoint!(c, n, cq),
    releaseSavepoint: (c, n, cq) => d.releaseSavepoint!(c, n, cq),
    releaseConnection: (c) => d.releaseConnection(un(c)),
    // The handle / pool belongs to the store's own instance: never closed from here.
    destroy: async () => {},
  }
}

// ---------------------------------------------------------------------------------------------
// Binding.

/** The inputs of one redeem that change from call to call. */
export interface RedeemVars {
  userId: string
  digest: Buffer
  now: number
  auditId: string
  /** Wall-clock ms at the call (captures only; a replay reads the clock). */
  wall?: number
}

type Results = readonly (readonly Record<string, unknown>[])[]
type Bound = (v: RedeemVars, results: Results) => unknown

export interface BoundStatement {
  sql: string
  params: Bound[]
  /** How each parameter is bound (for the log). */
  how: string[]
  expectRows: number
  expectAffected: bigint | undefined
}

/**
 * Binds the parameters of one captured successful redeem `a` (made with `va`), checked against a
 * second one `b` (`vb`, other user, code and time): a parameter equal in both is a constant of the
 * statement; any other must be reproduced exactly from `b`'s inputs and results by its binding
 * (times relative to `now` or to the wall clock at the call within 50 ms: the store may read the
 * clock itself). Throws when the two
 * redeems sent different statements or a parameter cannot be explained.
 */
export function bindStatements(
  a: readonly CapturedStatement[],
  va: RedeemVars,
  b: readonly CapturedStatement[],
  vb: RedeemVars,
): BoundStatement[] {
  if (
    a.length !== b.length ||
    a.some((s, i) => s.sql !== b[i]!.sql || s.parameters.length !== b[i]!.parameters.length)
  ) {
    throw new Error(`bench: two redeems sent different statements (${a.length} vs ${b.length})`)
  }
  if (!a.some((s) => s.parameters.some((p) => Buffer.isBuffer(p) && p.equals(va.digest)))) {
    throw new Error('bench: the captured redeem does not send its digest')
  }
  const resultsB = b.map((s) => s.rows)
  return a.map((s, i) => {
    const how: string[] = []
    const params = s.parameters.map((p, j) => {
      const [fn, label] = bindOne(p, b[i]!.parameters[j], va, vb, a.slice(0, i), resultsB, `#${i}.$${j + 1}`)
      how.push(label)
      return fn
    })
    return { sql: s.sql, params, how, expectRows: s.rows.length, expectAffected: s.numAffectedRows }
  })
}

function same(x: unknown, y: unknown): boolean {
  if (Buffer.isBuffer(x) && Buffer.isBuffer(y)) return x.equals(y)
  if (x instanceof Date && y instanceof Date) return x.getTime() === y.getTime()
  return x === y
}

/** Within 50 ms for a time bound relative to `now`, exact otherwise. */
function reproduces(label: string, got: unknown, want: unknown): boolean {
  if (!(label.startsWith('now') || label.startsWith('wall')) || label === 'now') return same(got, want)
  const g = got instanceof Date ? got.getTime() : got
  const w = want instanceof Date ? want.getTime() : want
  return typeof g === 'number' && typeof w === 'number' && Math.abs(g - w) <= 50
}

function bindOne(
  pa: unknown,
  pb: unknown,
  va: RedeemVars,
  vb: RedeemVars,
  earlierA: readonly CapturedStatement[],
  resultsB: Results,
  where: string,
): [Bound, string] {
  if (same(pa, pb)) return [() => pa, 'const']
  // JSON text: bound leaf by leaf, the output in the captured key order.
  if (typeof pa === 'string' && typeof pb === 'string' && /^\s*[[{]/.test(pa)) {
    try {
      const [fn, label] = bindJson(JSON.parse(pa), JSON.parse(pb), va, vb, earlierA, resultsB, where)
      return [(x, r) => JSON.stringify(fn(x, r)), `json{${label}}`]
    } catch (e) {
      if (!(e instanceof SyntaxError)) throw e
    }
  }
  for (const [fn, label] of candidates(pa, va, earlierA)) {
    if (reproduces(label, fn(vb, resultsB), pb)) return [fn, label]
  }
  throw new Error(`bench: cannot bind parameter ${where} (${String(pa)} / ${String(pb)})`)
}

function bindJson(
  ja: unknown,
  jb: unknown,
  va: RedeemVars,
  vb: RedeemVars,
  earlierA: readonly CapturedStatement[],
  resultsB: Results,
  where: string,
): [Bound, string] {
  if (ja !== null && typeof ja === 'object' && jb !== null && typeof jb === 'object') {
    const keys = Object.keys(ja)
    const ob = jb as Record<string, unknown>
    const oa = ja as Record<string, unknown>
    const parts = keys.map(
      (k) => [k, bindJson(oa[k], ob[k], va, vb, earlierA, resultsB, `${where}.${k}`)] as const,
    )
    const build = (x: RedeemVars, r: Results) => {
      if (Array.isArray(ja)) return parts.map(([, [f]]) => f(x, r))
      return Object.fromEntries(parts.map(([k, [f]]) => [k, f(x, r)]))
    }
    const label = parts
      .filter(([, [, l]]) => l !== 'const')
      .map(([k, [, l]]) => `${k}:${l}`)
      .join(',')
    return [build, label]
  }
  return bindOne(ja, jb, va, vb, earlierA, resultsB, where)
}

/** Ways `v` may have been derived from the redeem's inputs and earlier results, most direct first. */
function candidates(v: unknown, vars: RedeemVars, earlier: readonly CapturedStatement[]): [Bound, string][] {
  const out: [Bound, string][] = []
  if (Buffer.isBuffer(v)) {
    if (v.equals(vars.digest)) out.push([(x) => x.digest, 'digest'])
  } else if (v instanceof Date) {
    const off = v.getTime() - vars.now
    if (off === 0) out.push([(x) => new Date(x.now), 'now'])
    else out.push([(x) => new Date(x.now + off), `now${off >= 0 ? '+' : ''}${off}ms`])
    // A time the store takes from the clock itself (PostgreSQL's start deadline), not from `now`.
    if (vars.wall !== undefined) {
      const w = v.getTime() - vars.wall
      out.push([(x) => new Date((x.wall ?? Date.now()) + w), `wall${w >= 0 ? '+' : ''}${w}ms`])
    }
  } else if (typeof v === 'number') {
    if (v === vars.now) out.push([(x) => x.now, 'now'])
    const off = v - vars.now
    if (off !== 0 && Math.abs(off) < DAY) out.push([(x) => x.now + off, `now${off >= 0 ? '+' : ''}${off}ms`])
    if (vars.wall !== undefined && Math.abs(v - vars.wall) < DAY) {
      const w = v - vars.wall
      out.push([(x) => (x.wall ?? Date.now()) + w, `wall${w >= 0 ? '+' : ''}${w}ms`])
    }
  } else if (typeof v === 'string') {
    if (v === vars.userId) out.push([(x) => x.userId, 'userId'])
    if (v === vars.auditId) out.push([(x) => x.auditId, 'auditId'])
    for (const name of ['userId', 'auditId'] as const) {
      if (v !== vars[name] && v.includes(vars[name])) {
        const parts = v.split(vars[name])
        out.push([(x) => parts.join(x[name]), `string(…${name}…)`])
      }
    }
  }
  // A value an earlier statement of the redeem returned (the latest first).
  for (let s = earlier.length - 1; s >= 0; s--) {
    for (const [r, row] of earlier[s]!.rows.entries()) {
      for (const [col, x] of Object.entries(row)) {
        if (same(x, v)) out.push([(_, res) => res[s]?.[r]?.[col], `result#${s}[${r}].${col}`])
        // MySQL: a `varbinary` id comes back from the driver as bytes and is sent on as its text.
        else if (typeof v === 'string' && Buffer.isBuffer(x) && x.toString('utf8') === v) {
          out.push([(_, res) => utf8(res[s]?.[r]?.[col]), `result#${s}[${r}].${col}(utf8)`])
        }
      }
    }
  }
  return out
}

const utf8 = (x: unknown) => (Buffer.isBuffer(x) ? x.toString('utf8') : x)

function check(b: BoundStatement, i: number, rows: number, affected: bigint | undefined) {
  if (rows !== b.expectRows || (b.expectAffected !== undefined && affected !== b.expectAffected)) {
    throw new Error(
      `bench: replayed statement #${i} returned ${rows} rows / ${affected} changes, the capture ${b.expectRows} / ${b.expectAffected}: ${b.sql.slice(0, 120)}`,
    )
  }
}

/** One redeem's statements as prepared better-sqlite3 statements on `raw` (synchronous). */
export function sqliteReplayer(raw: BetterSqlite3.Database, bound: readonly BoundStatement[]) {
  const stmts = bound.map((b) => raw.prepare(b.sql))
  return (vars: RedeemVars): void => {
    const results: Record<string, unknown>[][] = []
    try {
      for (let i = 0; i < stmts.length; i++) {
        const st = stmts[i]!
        const b = bound[i]!
        const params = b.params.map((f) => f(vars, results))
        if (st.reader) {
          const rows = st.all(params) as Record<string, unknown>[]
          check(b, i, rows.length, undefined)
          results.push(rows)
        } else {
          const info = st.run(params)
          check(b, i, 0, BigInt(info.changes))
          results.push([])
        }
      }
    } catch (e) {
      if (raw.inTransaction) raw.exec('rollback')
      throw e
    }
  }
}

/**
 * One redeem's statements on a raw node-postgres client: statements with parameters as named
 * prepared statements (`rc_replay_<i>`), the others as simple queries; `unnamed` sends every
 * parameterized statement unnamed instead (parsed and planned on every call).
 */
export function pgReplayer(client: pg.ClientBase, bound: readonly BoundStatement[], unnamed = false) {
  const prefix = `rc_replay_${Math.random().toString(36).slice(2, 8)}_`
  return async (vars: RedeemVars): Promise<void> => {
    const results: Record<string, unknown>[][] = []
    for (let i = 0; i < bound.length; i++) {
      const b = bound[i]!
      const values = b.params.map((f) => f(vars, results))
      const r =
        values.length === 0
          ? await client.query(b.sql)
          : unnamed
            ? await client.query(b.sql, values)
            : await client.query({ name: `${prefix}${i}`, text: b.sql, values })
      const isMod = r.command === 'INSERT' || r.command === 'UPDATE' || r.command === 'DELETE'
      check(b, i, r.rows.length, isMod ? BigInt(r.rowCount ?? 0) : undefined)
      results.push(r.rows)
    }
  }
}

/** Sends one statement (text, values, its index in the redeem) and returns its rows. */
export type StatementExec = (
  text: string,
  values: unknown[],
  i: number,
) => Promise<{ rows: Record<string, unknown>[] }>

/** Runs the bound statements of one redeem through `exec` (row counts checked against the capture). */
export function pgExec(bound: readonly BoundStatement[], exec: StatementExec) {
  return async (vars: RedeemVars) => {
    const results: Record<string, unknown>[][] = []
    for (let i = 0; i < bound.length; i++) {
      const b = bound[i]!
      const values = b.params.map((f) => f(vars, results))
      const r = await exec(b.sql, values, i)
      if (r.rows.length !== b.expectRows)
        throw new Error(`bench: statement #${i} returned ${r.rows.length} rows`)
      results.push(r.rows)
    }
  }
}

/** A one-line summary of a bound redeem, for the log. */
export function describeBound(bound: readonly BoundStatement[]): string {
  return bound
    .map((b, i) => `#${i} ${b.sql.replace(/\s+/g, ' ').slice(0, 70)}… [${b.how.join(', ')}]`)
    .join('\n    ')
}

/**
 * A Kysely instance with the dialect's adapter and compiler whose driver answers every statement
 * with the rows captured for its SQL text, without I/O: a store over it runs all its JavaScript
 * (checks, statement templates, Kysely's executor, result mapping) and nothing else.
 */
export function cannedKysely(dialect: 'sqlite' | 'postgres', captured: readonly CapturedStatement[]) {
  const canned = new Map<string, Record<string, unknown>[]>()
  for (const s of captured) canned.set(s.sql, [...s.rows])
  const conn: DatabaseConnection = {
    executeQuery: async (q) => ({ rows: canned.get(q.sql) ?? [] }) as QueryResult<never>,
    streamQuery: () => {
      throw new Error('no streaming')
    },
  }
  const driver: Driver = {
    init: async () => {},
    acquireConnection: async () => conn,
    beginTransaction: async () => {},
    commitTransaction: async () => {},
    rollbackTransaction: async () => {},
    releaseConnection: async () => {},
    destroy: async () => {},
  }
  const pg = dialect === 'postgres'
  return new Kysely<any>({
    dialect: {
      createAdapter: () => (pg ? new PostgresAdapter() : new SqliteAdapter()),
      createDriver: () => driver,
      createQueryCompiler: () => (pg ? new PostgresQueryCompiler() : new SqliteQueryCompiler()),
      createIntrospector: (db) => (pg ? new PostgresIntrospector(db) : new SqliteIntrospector(db)),
    },
  })
}
