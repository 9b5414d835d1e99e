import {
  demoUsers,
  MAX_PASSWORD_FAILURES,
  PASSWORD_WINDOW_MS,
  type UsersDatabase,
} from '@recovery-codes/example-demo-users'
import Database from 'better-sqlite3'
import { Kysely, SqliteDialect } from 'kysely'
import { afterAll, describe, expect, it } from 'vitest'

describe('demo users: password throttle', () => {
  const db = new Kysely<UsersDatabase>({ dialect: new SqliteDialect({ database: new Database(':memory:') }) })
  afterAll(() => db.destroy())
  let t = 1_000_000
  const users = demoUsers(db, () => t)

  it('refuses every attempt after the limit, per account, until the window passes; a success clears the count', async () => {
    await users.migrate()
    const alice = await users.seed('alice@example.test', 'alice-pw')
    const bob = await users.seed('bob@example.test', 'bob-pw')
    for (let i = 0; i < MAX_PASSWORD_FAILURES - 1; i++)
      expect(await users.signIn('alice@example.test', 'x')).toBeNull()
    // Below the limit a success still works, and clears the count.
    expect(await users.signIn(' Alice@Example.test ', 'alice-pw')).toBe(alice)
    for (let i = 0; i < MAX_PASSWORD_FAILURES; i++)
      expect(await users.signIn('alice@example.test', 'x')).toBeNull()
    expect(await users.signIn('alice@example.test', 'alice-pw')).toBeNull()
    // Re-authentication counts against the same account.
    expect(await users.verify(alice, 'alice-pw')).toBe(false)
    // Another account is not affected.
    expect(await users.signIn('bob@example.test', 'bob-pw')).toBe(bob)
    // Refused attempts do not extend the window: it ends where it began.
    t += PASSWORD_WINDOW_MS - 1
    expect(await users.signIn('alice@example.test', 'alice-pw')).toBeNull()
    t += 1
    expect(await users.signIn('alice@example.test', 'alice-pw')).toBe(alice)
    expect(await users.verify(alice, 'alice-pw')).toBe(true)
  })
})
