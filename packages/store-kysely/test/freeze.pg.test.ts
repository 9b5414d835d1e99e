/**
 * "Dependable under faults": a frozen PostgreSQL. A private cluster (its own data directory and
 * port, never the shared server) is frozen with SIGSTOP — the postmaster and every one of its
 * processes — while 8 generates and 8 redeems run over `createPgPool({ deadlineMs: 300 })`.
 * A frozen server cannot enforce its own `statement_timeout`, so the client-side `query_timeout`
 * (deadline + 1 s) must answer each caller: every call rejects with `STORE_TIMEOUT` (or
 * `STORE_UNAVAILABLE`) within deadline + 2 s. After SIGCONT and 2 s, nothing those calls attempted
 * has committed (every `rc_` table is unchanged: no new batch, the codes unused, the active batches
 * the same, no audit or limiter row), and the store works again.
 *
 * Found by this file (the two "nothing committed" checks below fail until it is fixed): a
 * statement the client sent to the frozen server waits in the backend's socket buffer and, after
 * SIGCONT, runs with a fresh `statement_timeout`; the one-statement `rc_redeem` then commits (code
 * consumed, `login.success` audit row) and so does generate's `regen-claim` reservation, after the
 * caller got `STORE_TIMEOUT`. Closing the client socket (FIN or RST) does not stop it; a deadline
 * carried in the statement itself (checked against `clock_timestamp()`) would.
 *
 * PostgreSQL refuses to run as root: as root, `initdb` and `postgres` run through
 * `runuser -u postgres --` in a temporary directory owned by that user. When the cluster cannot
 * start, the file fails under `CI=true` and is skipped with a message otherwise.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRecoveryCodes, isRecoveryCodesError, type RecoveryCodes } from '@recovery-codes/core'
import {
  checkStoreInvariants,
  createCaptureLogger,
  createManualClock,
  expectInvariantReport,
  TEST_PEPPER,
} from '@recovery-codes/testing'
import { Kysely, PostgresDialect, sql } from 'kysely'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { migrateRecoveryCodes } from '../src/migrations.ts'
import { createPgPool } from '../src/pool.ts'
import { kyselyStore } from '../src/store.ts'

const isCI = process.env.CI === 'true'
const DEADLINE_MS = 300
/** A call must reject within the deadline plus this. */
const BOUND_MS = DEADLINE_MS + 2_000
const CALLS = 8
const TABLES = ['rc_batches', 'rc_codes', 'rc_audit_log', 'rc_attempts', 'rc_email_log'] as const

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The newest PostgreSQL server binaries: `pg_config --bindir`, else `/usr/lib/postgresql/<n>/bin`. */
function pgBinDir(): string | null {
  const candidates: string[] = []
  try {
    candidates.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim())
  } catch {}
  try {
    const versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a))
    for (const v of versions) candidates.push(`/usr/lib/postgresql/${v}/bin`)
  } catch {}
  return candidates.find((d) => existsSync(join(d, 'initdb')) && existsSync(join(d, 'postgres'))) ?? null
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })
}

/** The processes of the cluster: its postmaster (from `postmaster.pid`) and all its children. */
function clusterPids(dataDir: string): number[] {
  const postmaster = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0])
  let children: number[] = []
  try {
    children = execFileSync('pgrep', ['-P', String(postmaster)], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number)
  } catch {} // pgrep exits 1 when there is none
  return [postmaster, ...children]
}

function signal(pids: readonly number[], sig: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, sig)
    } catch {} // already gone
  }
}

/** `T` (stopped) for each pid that still exists. */
function states(pids: readonly number[]): string[] {
  return pids.flatMap((pid) => {
    try {
      return [readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] ?? '?']
    } catch {
      return []
    }
  })
}

interface Cluster {
  url: string
  dataDir: string
  /** What it took to start it (for the report). */
  how: string
  stop(): Promise<void>
}

/** initdb + postgres in a temporary directory, on a free port, as `postgres` when we are root. */
async function startCluster(): Promise<Cluster> {
  const bin = pgBinDir()
  if (!bin) throw new Error('no PostgreSQL server binaries (initdb, postgres) found')
  const root = process.getuid?.() === 0
  const dir = mkdtempSync(join(tmpdir(), 'rc-freeze-'))
  const dataDir = join(dir, 'data')
  let uid = process.getuid?.() ?? 0
  let gid = process.getgid?.() ?? 0
  if (root) {
    uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim())
    gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim())
    chownSync(dir, uid, gid)
    chmodSync(dir, 0o700)
  }
  const as = (cmd: string, args: string[]): [string, string[]] =>
    root ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]
  const how = root
    ? `as root: runuser -u postgres -- ${bin}/initdb and postgres, in ${dir} (chowned to postgres)`
    : `as uid ${uid}: ${bin}/initdb and postgres in ${dir}`
  const cleanupDir = () => rmSync(dir, { recursive: true, force: true })
  try {
    const [initCmd, initArgs] = as(join(bin, 'initdb'), [
      '-D',
      dataDir,
      '-U',
      'postgres',
      '--auth=trust',
      '-E',
      'UTF8',
      '--no-sync',
      '--no-instructions',
    ])
    execFileSync(initCmd, initArgs, { stdio: 'pipe', timeout: 30_000 })
  } catch (e) {
    cleanupDir()
    const stderr = (e as { stderr?: Buffer }).stderr?.toString().trim()
    throw new Error(`initdb failed (${how}): ${stderr || String(e)}`)
  }

  const port = await freePort()
  const [cmd, args] = as(join(bin, 'postgres'), [
    '-D',
    dataDir,
    '-p',
    String(port),
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    `unix_socket_directories=${dir}`,
    '-c',
    'fsync=off',
    '-c',
    'synchronous_commit=off',
    '-c',
    'full_page_writes=off',
    '-c',
    'max_connections=50',
    '-c',
    'shared_buffers=16MB',
  ])
  const child: ChildProcess = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let log = ''
  child.stderr?.on('data', (d) => {
    log = (log + d).slice(-4_000)
  })
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`
  let pids: number[] = []
  const stop = async () => {
    if (existsSync(join(dataDir, 'postmaster.pid'))) pids = clusterPids(dataDir)
    signal(pids, 'SIGCONT')
    // Immediate shutdown (the postmaster cleans its shared memory up), then SIGKILL what is left.
    signal(pids.slice(0, 1), 'SIGQUIT')
    const exited = child.exitCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', r))
    await Promise.race([exited, sleep(5_000)])
    signal(pids, 'SIGKILL')
    if (child.exitCode === null) child.kill('SIGKILL')
    cleanupDir()
  }
  // Whatever happens to this worker, the cluster does not outlive it.
  process.once('exit', () => {
    signal(pids, 'SIGCONT')
    signal(pids, 'SIGKILL')
  })

  const t0 = Date.now()
  for (;;) {
    if (child.exitCode !== null) {
      await stop()
      throw new Error(`postgres exited with ${child.exitCode} (${how}): ${log.trim()}`)
    }
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1_000 })
    client.on('error', () => {})
    const ok = await client.connect().then(
      () => true,
      () => false,
    )
    await client.end().catch(() => {})
    if (ok) break
    if (Date.now() - t0 > 20_000) {
      await stop()
      throw new Error(`postgres did not accept connections within 20 s (${how}): ${log.trim()}`)
    }
    await sleep(100)
  }
  pids = clusterPids(dataDir)
  return { url, dataDir, how, stop }
}

/** Started at collection so a failure can be reported (CI) or skipped (locally). */
const started: Cluster | Error = await startCluster().catch((e: unknown) =>
  e instanceof Error ? e : new Error(String(e)),
)
if (started instanceof Error && !isCI)
  console.warn(`[freeze] private PostgreSQL cluster could not start: SKIPPED (${started.message})`)

describe.runIf(!(started instanceof Error) || isCI)(
  'frozen PostgreSQL (SIGSTOP of a private cluster)',
  () => {
    const cluster = started instanceof Error ? null : started
    const opened: Kysely<any>[] = []
    let admin: pg.Client | null = null

    beforeAll(async () => {
      if (!cluster)
        throw new Error(
          `private PostgreSQL cluster could not start under CI=true: ${(started as Error).message}`,
        )
      console.info(`[freeze] private cluster: ${cluster.how}`)
      admin = new pg.Client({ connectionString: cluster.url })
      await admin.connect()
      const db = new Kysely<any>({
        dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: cluster.url, max: 1 }) }),
      })
      opened.push(db)
      await migrateRecoveryCodes(db)
    })

    afterAll(async () => {
      // Always, even after a failure: thaw the cluster first (closing a connection to a frozen
      // server waits forever), close our connections (bounded), then kill the cluster.
      if (cluster && existsSync(join(cluster.dataDir, 'postmaster.pid')))
        signal(clusterPids(cluster.dataDir), 'SIGCONT')
      const bounded = (p: Promise<unknown>) => Promise.race([p.catch(() => {}), sleep(3_000)])
      await bounded(admin?.end() ?? Promise.resolve())
      for (const db of opened) await bounded(db.destroy())
      await cluster?.stop()
    })

    /** Every row of every `rc_` table, as text, in a stable order. */
    async function snapshot(): Promise<Record<string, string[]>> {
      const out: Record<string, string[]> = {}
      for (const table of TABLES) {
        const r = await (admin as pg.Client).query<{ t: string }>(
          `select t::text as t from ${table} t order by 1`,
        )
        out[table] = r.rows.map((x) => x.t)
      }
      return out
    }

    interface Outcome {
      op: 'generate' | 'redeem'
      ms: number
      code: string
    }
    /** What the freeze left, for the checks below (each its own test, so each verdict shows). */
    interface Scenario {
      rc: RecoveryCodes
      clock: ReturnType<typeof createManualClock>
      store: ReturnType<typeof kyselyStore>
      logger: ReturnType<typeof createCaptureLogger>
      genUsers: string[]
      redeemUsers: string[]
      batches: Record<string, { batchId: string; codes: string[] }>
      outcomes: Outcome[]
      before: Record<string, string[]>
      after: Record<string, string[]>
    }
    let scenario: Scenario | null = null
    const ran = (): Scenario => {
      if (!scenario) throw new Error('the freeze scenario did not run (see the first test)')
      return scenario
    }

    /** Rows that appeared or disappeared between `before` and `after`, of the given users. */
    function changes(s: Scenario, users: readonly string[], tables: readonly string[] = TABLES) {
      // Limiter keys are hashed: a generate's are its `regen-claim:` counters, a redeem's the rest.
      const mine = (row: string, table: string) =>
        table === 'rc_attempts'
          ? row.startsWith('(regen-claim:') === (users === s.genUsers)
          : users.some((u) => row.includes(u))
      const out: Record<string, { added: number; removed: number }> = {}
      for (const table of tables) {
        const b = new Set(s.before[table]!.filter((r) => mine(r, table)))
        const a = new Set(s.after[table]!.filter((r) => mine(r, table)))
        const added = [...a].filter((r) => !b.has(r)).length
        const removed = [...b].filter((r) => !a.has(r)).length
        if (added || removed) out[table] = { added, removed }
      }
      return out
    }

    it('frozen: 8 generates and 8 redeems each reject with STORE_TIMEOUT/STORE_UNAVAILABLE within deadline + 2 s', async () => {
      const c = cluster as Cluster
      const logger = createCaptureLogger()
      const pool = createPgPool(pg.Pool, {
        connectionString: c.url,
        max: 2 * CALLS + 2,
        application_name: 'rc_freeze',
        deadlineMs: DEADLINE_MS,
        connectionTimeoutMillis: 1_000,
        logger,
      })
      const db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) })
      opened.push(db)
      const clock = createManualClock()
      const store = kyselyStore(db, { startDeadlineMs: DEADLINE_MS })
      const rc = createRecoveryCodes({
        peppers: [{ id: 'k1', secret: TEST_PEPPER }],
        store,
        clock,
        activation: 'immediate',
      })

      // Each user has an active batch; the generate users are past the regeneration cooldown.
      const genUsers = Array.from({ length: CALLS }, (_, i) => `gen_${i}_${crypto.randomUUID()}`)
      const redeemUsers = Array.from({ length: CALLS }, (_, i) => `red_${i}_${crypto.randomUUID()}`)
      const batches: Scenario['batches'] = {}
      for (const userId of [...genUsers, ...redeemUsers]) {
        const g = await rc.generate({ userId, count: 3 })
        if (!g.ok) throw new Error('unexpected cooldown')
        batches[userId] = { batchId: g.batchId, codes: g.codes }
      }
      clock.advance(2 * 86_400_000)
      // Warm the pool: every call finds an open connection (the freeze is of the server, not of connect).
      await Promise.all(Array.from({ length: 2 * CALLS }, () => sql`select pg_sleep(0.02)`.execute(db)))
      const before = await snapshot()

      const outcomes: Outcome[] = []
      // Freeze: the postmaster first (no new children), then every process it has.
      signal(clusterPids(c.dataDir).slice(0, 1), 'SIGSTOP')
      const all = clusterPids(c.dataDir)
      try {
        signal(all, 'SIGSTOP')
        const t0 = Date.now()
        while (!states(all).every((x) => x === 'T') && Date.now() - t0 < 2_000) await sleep(5)
        const frozenStates = states(all)
        expect(
          frozenStates.every((x) => x === 'T'),
          `process states ${frozenStates.join('')}`,
        ).toBe(true)
        const time = async (op: Outcome['op'], call: () => Promise<unknown>) => {
          const t1 = performance.now()
          const code = await call().then(
            (v) => `resolved ${JSON.stringify(v).slice(0, 80)}`,
            (e: unknown) => (isRecoveryCodesError(e) ? e.code : `untyped ${String(e)}`),
          )
          outcomes.push({ op, ms: Math.round(performance.now() - t1), code })
        }
        await Promise.all([
          ...genUsers.map((userId) => time('generate', () => rc.generate({ userId, count: 3 }))),
          ...redeemUsers.map((userId) =>
            time('redeem', () => rc.redeem({ userId, code: batches[userId]!.codes[0]! })),
          ),
        ])
      } finally {
        signal(all, 'SIGCONT')
      }
      // Whatever the server still had of those calls runs now: give it time to commit, if it would.
      await sleep(2_000)
      const after = await snapshot()
      scenario = { rc, clock, store, logger, genUsers, redeemUsers, batches, outcomes, before, after }

      const byOp = (op: Outcome['op']) => outcomes.filter((o) => o.op === op)
      const fmt = (o: Outcome[]) =>
        `${o.length} calls, ${JSON.stringify(Object.fromEntries([...new Set(o.map((x) => x.code))].map((k) => [k, o.filter((x) => x.code === k).length])))}, ` +
        `${Math.min(...o.map((x) => x.ms))}–${Math.max(...o.map((x) => x.ms))} ms`
      console.info(
        `[freeze] ${all.length} processes stopped; deadline ${DEADLINE_MS} ms; generate: ${fmt(byOp('generate'))}; ` +
          `redeem: ${fmt(byOp('redeem'))}; committed after SIGCONT + 2 s: generate users ` +
          `${JSON.stringify(changes(scenario, genUsers))}, redeem users ${JSON.stringify(changes(scenario, redeemUsers))}`,
      )

      expect(outcomes).toHaveLength(2 * CALLS)
      for (const o of outcomes) {
        expect(['STORE_TIMEOUT', 'STORE_UNAVAILABLE'], `${o.op}: ${o.code}`).toContain(o.code)
        expect(o.ms, `${o.op} took ${o.ms} ms`).toBeLessThanOrEqual(BOUND_MS)
      }
    })

    it('after SIGCONT: the 8 generates committed no batch (no new batch, the active batch unchanged)', async () => {
      const s = ran()
      expect(changes(s, s.genUsers, ['rc_batches', 'rc_codes', 'rc_audit_log', 'rc_email_log'])).toEqual({})
      for (const userId of s.genUsers) {
        expect(await s.store.getActiveBatch(userId)).toMatchObject({
          id: s.batches[userId]!.batchId,
          unused: 3,
          used: 0,
        })
      }
    })

    it('after SIGCONT: the 8 generates left no regeneration claim behind (rc_attempts unchanged)', async () => {
      const s = ran()
      expect(changes(s, s.genUsers, ['rc_attempts'])).toEqual({})
    })

    it('after SIGCONT: nothing the 8 redeems attempted committed (the codes unused, no audit or limiter row)', async () => {
      const s = ran()
      expect(changes(s, s.redeemUsers)).toEqual({})
      for (const userId of s.redeemUsers) {
        expect(await s.store.getActiveBatch(userId)).toMatchObject({
          id: s.batches[userId]!.batchId,
          unused: 3,
          used: 0,
        })
      }
    })

    it('after SIGCONT: the store works again through the same pool', async () => {
      const s = ran()
      const t0 = performance.now()
      let g = await s.rc.generate({ userId: s.genUsers[0]!, count: 3 })
      // A regeneration claim the frozen generate committed after the thaw is full: the first
      // generate locks it (COOLDOWN_ACTIVE) and the one after that window succeeds.
      let claimWaitMs = 0
      if (!g.ok && g.reason === 'COOLDOWN_ACTIVE') {
        claimWaitMs = g.retryAfterMs
        s.clock.advance(g.retryAfterMs + 1)
        g = await s.rc.generate({ userId: s.genUsers[0]!, count: 3 })
      }
      expect(g.ok, JSON.stringify(g)).toBe(true)
      // Codes the frozen redeems did not consume: [1] was never sent.
      for (const userId of [...s.genUsers.slice(1), ...s.redeemUsers]) {
        expect(await s.rc.redeem({ userId, code: s.batches[userId]!.codes[1]! })).toMatchObject({ ok: true })
      }
      console.info(
        `[freeze] after the thaw: 1 generate and ${2 * CALLS - 1} redeems succeeded in ${Math.round(performance.now() - t0)} ms` +
          (claimWaitMs
            ? ` (the generate first refused COOLDOWN_ACTIVE for ${claimWaitMs} ms: the leaked claim)`
            : ''),
      )
      expectInvariantReport(
        await checkStoreInvariants(s.store, { userIds: [...s.genUsers, ...s.redeemUsers] }),
        'after the freeze',
      )
      for (const line of s.logger.lines)
        expect(Object.keys(line.fields ?? {}).sort()).toEqual(['code', 'error'])
    })
  },
)
