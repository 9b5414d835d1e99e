import { EventEmitter } from 'node:events'
import { isRecoveryCodesError } from '@recovery-codes/core'
import { createCaptureLogger } from '@recovery-codes/testing'
import { Kysely, PostgresDialect, type PostgresPool } from 'kysely'
import { describe, expect, it } from 'vitest'
import { createPgPool } from '../src/pool.ts'
import { kyselyStore } from '../src/store.ts'

/** Stands in for `pg.Pool`: records its config; `'connect'` hands out a client emitter. */
class FakePool extends EventEmitter {
  constructor(readonly config: Record<string, unknown> = {}) {
    super()
  }
}

const SECRET_URL = 'postgres://app:hunter2@db.internal:5432/prod'

describe('createPgPool', () => {
  it('derives the database-enforced deadline and the client timeouts from deadlineMs (default 5000)', () => {
    expect(createPgPool(FakePool, { connectionString: SECRET_URL }).config).toEqual({
      connectionString: SECRET_URL,
      connectionTimeoutMillis: 5000,
      idleTimeoutMillis: 10_000,
      statement_timeout: 5000,
      lock_timeout: 5000,
      idle_in_transaction_session_timeout: 5000,
      query_timeout: 6000,
    })
    expect(createPgPool(FakePool, { deadlineMs: 300 }).config).toMatchObject({
      statement_timeout: 300,
      lock_timeout: 300,
      idle_in_transaction_session_timeout: 300,
      query_timeout: 1300,
    })
  })

  it('passes other options through, lets explicit ones win, and leaves the input untouched', () => {
    const input = Object.freeze({ max: 3, lock_timeout: 100, connectionTimeoutMillis: 1, deadlineMs: 400 })
    const { config } = createPgPool(FakePool, input)
    expect(config).toMatchObject({
      max: 3,
      lock_timeout: 100,
      connectionTimeoutMillis: 1,
      statement_timeout: 400,
    })
    expect(config).not.toHaveProperty('deadlineMs')
    expect(config).not.toHaveProperty('logger')
    expect(input).toEqual({ max: 3, lock_timeout: 100, connectionTimeoutMillis: 1, deadlineMs: 400 })
  })

  it('refuses a deadline that is not a positive integer', () => {
    for (const deadlineMs of [0, -1, 1.5, Number.NaN]) {
      expect(() => createPgPool(FakePool, { deadlineMs }), String(deadlineMs)).toThrow(
        expect.objectContaining({ code: 'CONFIG_INVALID' }),
      )
    }
  })

  it('listens for errors on the pool and on every client, logging name and SQLSTATE once', () => {
    const logger = createCaptureLogger()
    const pool = createPgPool(FakePool, { connectionString: SECRET_URL, logger })
    const client = new EventEmitter()
    pool.emit('connect', client)
    const terminated = Object.assign(new Error(`terminating connection (${SECRET_URL})`), { code: '57P01' })
    // A checked-out client: only its own listener is there. Without one, emit() would throw.
    expect(() => client.emit('error', terminated)).not.toThrow()
    // An idle client: pg-pool re-emits the same error on the pool; logged once.
    expect(() => pool.emit('error', terminated, client)).not.toThrow()
    expect(() => pool.emit('error', new Error('other'))).not.toThrow()
    expect(logger.lines.map((l) => [l.level, l.fields])).toEqual([
      ['warn', { error: 'Error', code: '57P01' }],
      ['warn', { error: 'Error', code: undefined }],
    ])
    expect(logger.text()).not.toContain('hunter2')
    expect(logger.text()).not.toContain('db.internal')
  })

  it('swallows errors without a logger', () => {
    const pool = createPgPool(FakePool, {})
    const client = new EventEmitter()
    pool.emit('connect', client)
    expect(() => client.emit('error', new Error('x'))).not.toThrow()
    expect(() => pool.emit('error', new Error('y'))).not.toThrow()
  })
})

describe('store errors at a deadline → STORE_TIMEOUT', () => {
  /** A store whose every query fails with `error` (a fake pool under the real PostgresDialect). */
  function failingStore(error: unknown) {
    const pool = {
      connect: async () => ({
        query: async () => {
          throw error
        },
        release: () => {},
      }),
      end: async () => {},
    } as unknown as PostgresPool
    return kyselyStore(new Kysely<any>({ dialect: new PostgresDialect({ pool }) }))
  }
  const pgError = (code: string, message: string) =>
    Object.assign(new Error(message), { code, severity: 'ERROR' })

  it.each([
    [
      '57014 (statement_timeout)',
      pgError('57014', 'canceling statement due to statement timeout'),
      'SQLSTATE 57014',
    ],
    ['55P03 (lock_timeout)', pgError('55P03', 'canceling statement due to lock timeout'), 'SQLSTATE 55P03'],
    ["pg's client-side query_timeout", new Error('Query read timeout'), 'client query_timeout'],
    ['a wrapped 57014', new Error('outer', { cause: pgError('57014', 'x') }), 'SQLSTATE 57014'],
  ])('%s', async (_, error, why) => {
    const e = await failingStore(error)
      .getActiveBatch('u1')
      .catch((x: unknown) => x)
    expect(isRecoveryCodesError(e, 'STORE_TIMEOUT')).toBe(true)
    expect(e).toMatchObject({
      status: 503,
      message: `store-kysely: getActiveBatch timed out (${why})`,
      cause: error,
    })
  })

  it.each([
    [
      '57P01 (admin_shutdown)',
      pgError('57P01', 'terminating connection due to administrator command'),
      ' (SQLSTATE 57P01)',
    ],
    ['a connect timeout', new Error('timeout exceeded when trying to connect'), ''],
    ['a code without severity', Object.assign(new Error('x'), { code: 'ECONNRESET' }), ''],
    ['a non-error', 'boom', ''],
  ])('%s stays STORE_UNAVAILABLE', async (_, error, why) => {
    const e = await failingStore(error)
      .getActiveBatch('u1')
      .catch((x: unknown) => x)
    expect(isRecoveryCodesError(e, 'STORE_UNAVAILABLE')).toBe(true)
    expect(e).toMatchObject({ message: `store-kysely: getActiveBatch failed${why}`, cause: error })
    // The driver's message text never reaches ours.
    expect((e as Error).message).not.toContain('terminating')
  })
})
