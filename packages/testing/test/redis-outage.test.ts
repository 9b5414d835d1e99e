/**
 * "Dependable under faults", cache side: the unstorage Redis driver with the options of
 * docs/redis.md fails fast while Redis is down and prints nothing.
 *
 * A private `redis-server` (its own port, no persistence) is started as a child and killed with
 * SIGKILL. With `enableOfflineQueue: false, commandTimeout: 500, maxRetriesPerRequest: 1` and an
 * `'error'` listener on the driver's ioredis client (`driver.getInstance()`):
 * - calls to a frozen Redis (SIGSTOP), calls in flight at the kill and calls during the outage
 *   reject within ~1 s each (commandTimeout, closed connection, no offline queue);
 * - nothing is written to the console or stderr containing "Unhandled error event";
 * - once Redis is back on the same port, the same storage works again.
 * Controls: a client without a listener does print "[ioredis] Unhandled error event" (so the spy
 * sees it), and a driver with ioredis's defaults leaves a call pending during the outage.
 *
 * `redis-server` missing: skipped with a message locally, a failure under `CI=true`.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import net from 'node:net'
import { createStorage, type Storage } from 'unstorage'
import redisDriver from 'unstorage/drivers/redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createCaptureLogger, IS_CI } from '../src/index.ts'

/** The options docs/redis.md recommends. */
const RECOMMENDED = { enableOfflineQueue: false, commandTimeout: 500, maxRetriesPerRequest: 1 } as const
/** A call that has not settled after this long is "pending" (the bound is ~1 s). */
const PENDING_MS = 1_500

function redisServerPath(): string | null {
  try {
    return execFileSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).trim() || null
  } catch {
    return null
  }
}
const REDIS_SERVER = redisServerPath()
if (!REDIS_SERVER && !IS_CI)
  console.warn('[testing] redis-server not found: the Redis outage test is SKIPPED')

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

async function freePort(from = 6390, to = 6490): Promise<number> {
  for (let port = from; port <= to; port++) if (await portIsFree(port)) return port
  throw new Error(`no free port in ${from}–${to}`)
}

async function pingable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(500, () => done(false))
    socket.once('error', () => done(false))
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.once('data', (d) => done(d.toString().startsWith('+PONG')))
  })
}

/** Starts a private redis-server on `port` and waits until it answers PING. */
async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn(
    REDIS_SERVER as string,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'],
    { stdio: 'ignore' },
  )
  const end = Date.now() + 10_000
  while (Date.now() < end) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`)
    if (await pingable(port)) return child
    await sleep(50)
  }
  child.kill('SIGKILL')
  throw new Error(`redis-server on ${port} did not answer within 10 s`)
}

async function kill9(child: ChildProcess | null): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((r) => child.once('exit', r))
  child.kill('SIGKILL')
  await exited
}

/** How one call ended, and after how long. */
interface Outcome {
  op: string
  ms: number
  result: 'resolved' | 'rejected' | 'pending'
  error?: string
}

async function timed(op: string, call: () => Promise<unknown>): Promise<Outcome> {
  const t0 = performance.now()
  const settled = call().then(
    () => ({ result: 'resolved' as const }),
    (e: unknown) => ({ result: 'rejected' as const, error: e instanceof Error ? e.message : String(e) }),
  )
  const r = await Promise.race([settled, sleep(PENDING_MS).then(() => ({ result: 'pending' as const }))])
  return { op, ms: Math.round(performance.now() - t0), ...r }
}

/** The recommended storage: the driver, its client with an 'error' listener, and the storage. */
function recommendedCache(url: string, base: string) {
  const driver = redisDriver({ url, base, ...RECOMMENDED })
  const client = driver.getInstance?.()
  if (!client) throw new Error('the unstorage redis driver exposes no client')
  const errors: string[] = []
  client.on('error', (error: Error & { code?: string }) => {
    errors.push(error.code ?? error.name)
  })
  return { client, errors, cache: createStorage({ driver }) }
}

async function ready(client: { status: string }, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (client.status !== 'ready') {
    if (Date.now() > end) throw new Error(`redis client not ready within ${timeoutMs} ms (${client.status})`)
    await sleep(20)
  }
}

describe.runIf(REDIS_SERVER !== null || IS_CI)('unstorage redis driver during a Redis outage', () => {
  let port = 0
  let redis: ChildProcess | null = null
  const storages: Storage[] = []

  beforeAll(async () => {
    if (!REDIS_SERVER) throw new Error('redis-server not found on PATH (required under CI=true)')
    port = await freePort()
    redis = await startRedis(port)
  })

  afterAll(async () => {
    for (const s of storages) await s.dispose().catch(() => {})
    await kill9(redis)
  })

  it('fails fast, prints nothing, and works again once Redis is back', async () => {
    const url = `redis://127.0.0.1:${port}`
    const { client, errors, cache } = recommendedCache(url, 'rc-outage')
    storages.push(cache)
    // A default driver (ioredis's offline queue and 20 retries per request), for comparison.
    const defaultsDriver = redisDriver({ url, base: 'rc-outage-defaults' })
    const defaultsClient = defaultsDriver.getInstance?.()
    defaultsClient?.on('error', () => {})
    const defaults = createStorage({ driver: defaultsDriver })
    storages.push(defaults)
    await ready(client)
    if (defaultsClient) await ready(defaultsClient)

    await cache.setItem('k', 'v', { ttl: 60 })
    expect(await cache.getItem('k')).toBe('v')

    const logger = createCaptureLogger()
    const restore = logger.captureConsole()
    let frozen: Outcome[]
    let inFlight: Outcome[]
    let during: Outcome[]
    let pendingDefault: Outcome
    let control: string
    let quietLines = 0
    try {
      // Redis frozen (SIGSTOP): the connection is up but nothing answers; commandTimeout bounds it.
      redis?.kill('SIGSTOP')
      frozen = await Promise.all([
        timed('getItem (frozen)', () => cache.getItem('k')),
        timed('setItem (frozen)', () => cache.setItem('k2', 'v2')),
      ])
      // Calls in flight when the frozen Redis is killed with SIGKILL.
      const flying = [
        timed('getItem (in flight)', () => cache.getItem('k')),
        timed('setItem (in flight)', () => cache.setItem('k2', 'v2')),
      ]
      await sleep(100)
      await kill9(redis)
      redis = null
      inFlight = await Promise.all(flying)

      // Calls during the outage, one after another, while ioredis keeps reconnecting.
      during = []
      const end = Date.now() + 2_000
      for (let i = 0; Date.now() < end; i++) {
        during.push(await timed('getItem', () => cache.getItem('k')))
        during.push(await timed('setItem', () => cache.setItem(`k${i}`, 'v', { ttl: 60 })))
        await sleep(100)
      }
      pendingDefault = await timed('getItem (ioredis defaults)', () => defaults.getItem('k'))

      quietLines = logger.lines.length
      // Control: the same client without a listener prints ioredis's warning, which the spy sees.
      const bare = redisDriver({ url, base: 'rc-outage-bare', ...RECOMMENDED }).getInstance?.()
      const t0 = Date.now()
      while (!logger.text().includes('Unhandled error event') && Date.now() - t0 < 5_000) await sleep(20)
      bare?.disconnect()
      control = logger.text().includes('Unhandled error event') ? 'printed' : 'not printed'
    } finally {
      restore()
    }
    const beforeControl = logger.lines.slice(0, quietLines)

    // Redis back on the same port: the same storage reconnects and works.
    redis = await startRedis(port)
    const t1 = performance.now()
    await ready(client)
    const reconnectMs = Math.round(performance.now() - t1)
    await cache.setItem('k', 'again', { ttl: 60 })
    expect(await cache.getItem('k')).toBe('again')

    const all = [...frozen, ...inFlight, ...during]
    const summary = (o: Outcome[]) =>
      `${o.length} calls, ${o.filter((x) => x.result === 'rejected').length} rejected, ` +
      `${o.filter((x) => x.result === 'resolved').length} resolved, max ${Math.max(...o.map((x) => x.ms))} ms`
    console.info(
      `[redis outage] frozen (SIGSTOP): ${summary(frozen)}; in flight at kill -9: ${summary(inFlight)}; ` +
        `during the outage: ${summary(during)}; ` +
        `client 'error' events ${errors.length} (${[...new Set(errors)].join(', ')}); ` +
        `ioredis defaults: ${pendingDefault.result} after ${pendingDefault.ms} ms; ` +
        `no-listener control: ${control}; reconnected ${reconnectMs} ms after the restart`,
    )

    for (const o of all) {
      expect(o.result, `${o.op}: ${o.error ?? ''}`).not.toBe('pending')
      expect(o.ms, o.op).toBeLessThanOrEqual(1_100)
    }
    expect(during.length).toBeGreaterThanOrEqual(4)
    for (const o of [...frozen, ...inFlight, ...during]) expect(o.result, o.op).toBe('rejected')
    expect(errors.length).toBeGreaterThan(0)
    // Nothing printed "Unhandled error event" (to console or stderr) before the control client.
    expect(beforeControl.filter((l) => l.message.includes('Unhandled error event'))).toEqual([])
    expect(control).toBe('printed')
    expect(pendingDefault.result).toBe('pending')
  })
})
