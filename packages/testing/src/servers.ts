/**
 * Real-server plumbing shared by the test suites and benchmarks that talk to PostgreSQL.
 * Suites skip with a message locally when the server is down and fail under `CI=true`.
 */

/** The PostgreSQL the tests use: `PG_URL`, else the local server's `test` database. */
export const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

/** True under CI, where an unreachable server must fail the run rather than skip tests. */
export const IS_CI = process.env.CI === 'true' || process.env.CI === '1'

/**
 * `null` when PostgreSQL at `url` answers `select 1` within 3 s; the reason otherwise.
 * `pg` is loaded lazily (an optional peer), so suites that never touch PostgreSQL need not have it.
 */
export async function probePostgres(url: string = PG_URL): Promise<string | null> {
  const { default: pg } = await import('pg')
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 })
  try {
    await client.connect()
    await client.query('select 1')
    return null
  } catch (e) {
    return e instanceof Error ? e.message || e.name : String(e)
  } finally {
    await client.end().catch(() => {})
  }
}
