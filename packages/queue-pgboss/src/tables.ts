/**
 * Read and delete queries on pg-boss's own tables, built with Kysely (compile only: no driver,
 * no connection) and run through pg-boss's `Db`, so identifiers are quoted by the compiler and every
 * value is a bound parameter (R-DB-1). pg-boss 10 has no API for "delete failed jobs" or "count by
 * state over several queues"; these are the only statements the package writes itself.
 */
import {
  type Compilable,
  DummyDriver,
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
} from 'kysely'
import type PgBoss from 'pg-boss'

/** The columns of pg-boss 10's `job` and `archive` tables that this package reads. */
interface JobRow {
  id: string
  name: string
  state: 'created' | 'retry' | 'active' | 'completed' | 'cancelled' | 'failed'
  data: unknown
  start_after: Date
}

interface PgBossTables {
  job: JobRow
  archive: JobRow
  'information_schema.tables': { table_schema: string; table_name: string }
}

const builder = new Kysely<PgBossTables>({
  dialect: {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (db) => new PostgresIntrospector(db),
    createQueryCompiler: () => new PostgresQueryCompiler(),
  },
})

/** A pg-boss schema name: what pg-boss itself accepts (letters, digits, `_`, ≤ 50, no leading digit). */
export const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,49}$/

/** Runs one compiled query through pg-boss's connection. */
async function run<R>(db: PgBoss.Db, query: Compilable<R>): Promise<R[]> {
  const compiled = query.compile()
  const { rows } = await db.executeSql(compiled.sql, [...compiled.parameters])
  return rows as R[]
}

/** Queries over one pg-boss schema, restricted to queue names starting with `namespace`. */
export function pgBossTables(db: PgBoss.Db, schema: string, namespace: string) {
  const q = builder.withSchema(schema)
  const inNamespace = `${namespace.replaceAll('\\', '\\\\').replaceAll('%', '\\%').replaceAll('_', '\\_')}%`
  return {
    /** Whether pg-boss's `job` table exists in `schema` (catches a `boss` built with another schema). */
    async installed(): Promise<boolean> {
      const rows = await run(
        db,
        builder
          .selectFrom('information_schema.tables')
          .select('table_name')
          .where('table_schema', '=', schema)
          .where('table_name', '=', 'job'),
      )
      return rows.length === 1
    },

    /** Deletes failed jobs (live and archived) of the namespace; returns how many. */
    async deleteFailed(): Promise<number> {
      let n = 0
      for (const table of ['job', 'archive'] as const) {
        const rows = await run(
          db,
          q
            .deleteFrom(table)
            .where('name', 'like', inNamespace)
            .where('state', '=', 'failed')
            .returning('id'),
        )
        n += rows.length
      }
      return n
    },

    /** Deletes waiting (created or retry) jobs of one queue; returns how many. */
    async deleteWaiting(queue: string): Promise<number> {
      const rows = await run(
        db,
        q
          .deleteFrom('job')
          .where('name', '=', queue)
          .where('state', 'in', ['created', 'retry'])
          .returning('id'),
      )
      return rows.length
    },

    /** Deletes every job (any state, live and archived) of one queue; returns how many. */
    async deleteAll(queue: string): Promise<number> {
      let n = 0
      for (const table of ['job', 'archive'] as const)
        n += (await run(db, q.deleteFrom(table).where('name', '=', queue).returning('id'))).length
      return n
    },

    /** Waiting jobs of queues under `prefix` (`name`, `data`), oldest first. */
    async waiting(prefix: string): Promise<{ name: string; data: unknown }[]> {
      const like = `${prefix.replaceAll('\\', '\\\\').replaceAll('%', '\\%').replaceAll('_', '\\_')}%`
      return run(
        db,
        q
          .selectFrom('job')
          .select(['name', 'data'])
          .where('name', 'like', like)
          .where('state', 'in', ['created', 'retry'])
          .orderBy('start_after'),
      )
    },

    /** Job counts by state over live and archived jobs of the namespace. */
    async countByState(): Promise<Record<JobRow['state'], number>> {
      const counts: Record<JobRow['state'], number> = {
        created: 0,
        retry: 0,
        active: 0,
        completed: 0,
        cancelled: 0,
        failed: 0,
      }
      for (const table of ['job', 'archive'] as const) {
        const rows = await run(
          db,
          q
            .selectFrom(table)
            .select((eb) => ['state', eb.fn.countAll<string>().as('n')])
            .where('name', 'like', inNamespace)
            .groupBy('state'),
        )
        for (const r of rows) counts[r.state] += Number(r.n)
      }
      return counts
    },
  }
}

/** The queries of {@link pgBossTables}. */
export type PgBossTablesApi = ReturnType<typeof pgBossTables>
