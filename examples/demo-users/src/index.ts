/**
 * The demo's own user table and first factor: email + password hashed with scrypt
 * (node:crypto). Unknown emails do the same scrypt work as wrong passwords.
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto'
import type { Kysely } from 'kysely'

const N = 16_384
const R = 8
const P = 1
const KEY_LEN = 32

function derive(password: string, salt: Buffer): Promise<Buffer> {
  return new Promise((ok, ko) =>
    scrypt(
      password.normalize('NFKC'),
      salt,
      KEY_LEN,
      { N, r: R, p: P, maxmem: 64 * 1024 * 1024 },
      (e, key) => (e ? ko(e) : ok(key)),
    ),
  )
}

/** `scrypt$N$r$p$salt$hash` (base64url). */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16)
  const key = await derive(password, salt)
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64url')}$${key.toString('base64url')}`
}

/** Constant-time check of `password` against a {@link hashPassword} string. */
export async function checkPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$')
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false
  const expected = Buffer.from(parts[5]!, 'base64url')
  const key = await derive(password, Buffer.from(parts[4]!, 'base64url'))
  return key.length === expected.length && timingSafeEqual(key, expected)
}

/** A user row of the demo. */
export interface DemoUser {
  id: string
  email: string
  password_hash: string
}

/** The users table, created on start. */
export interface UsersDatabase {
  demo_users: DemoUser
}

// Checked when the email is unknown, so both paths cost one scrypt.
const DUMMY_HASH = hashPassword(randomBytes(16).toString('hex'))

/** Password failures allowed per account within {@link PASSWORD_WINDOW_MS}, then refused. */
export const MAX_PASSWORD_FAILURES = 5
/** How long password failures count, and how long a throttled account waits. */
export const PASSWORD_WINDOW_MS = 15 * 60_000
const MAX_TRACKED = 10_000

/**
 * The demo's user store over the same database as the recovery codes.
 *
 * Password guessing is throttled per account (in process, as fits this single-process demo):
 * after {@link MAX_PASSWORD_FAILURES} failures within {@link PASSWORD_WINDOW_MS} every attempt,
 * right or wrong, answers like a wrong password (still paying one scrypt) until the window
 * passes. A success clears the account's count.
 */
export function demoUsers(db: Kysely<UsersDatabase>, now: () => number = Date.now) {
  const normalizeEmail = (email: string) => email.trim().normalize('NFKC').toLowerCase()
  const failures = new Map<string, { count: number; since: number }>()
  const throttled = (key: string): boolean => {
    const f = failures.get(key)
    if (f === undefined) return false
    if (now() - f.since >= PASSWORD_WINDOW_MS) {
      failures.delete(key)
      return false
    }
    return f.count >= MAX_PASSWORD_FAILURES
  }
  const fail = (key: string): void => {
    const f = failures.get(key)
    if (f === undefined || now() - f.since >= PASSWORD_WINDOW_MS) {
      // Bounded: a spray of distinct emails cannot grow the map without limit.
      if (failures.size >= MAX_TRACKED) failures.delete(failures.keys().next().value as string)
      failures.set(key, { count: 1, since: now() })
    } else f.count++
  }
  const check = async (key: string, password: string, hash: string | undefined): Promise<boolean> => {
    const blocked = throttled(key)
    const ok = await checkPassword(password, hash ?? (await DUMMY_HASH))
    if (ok && hash !== undefined && !blocked) {
      failures.delete(key)
      return true
    }
    if (!blocked) fail(key)
    return false
  }
  return {
    async migrate(): Promise<void> {
      await db.schema
        .createTable('demo_users')
        .ifNotExists()
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('email', 'text', (c) => c.notNull().unique())
        .addColumn('password_hash', 'text', (c) => c.notNull())
        .execute()
    },
    /** Creates the user unless the email exists; returns its id. */
    async seed(email: string, password: string): Promise<string> {
      const found = await db
        .selectFrom('demo_users')
        .select('id')
        .where('email', '=', normalizeEmail(email))
        .executeTakeFirst()
      if (found) {
        // Keep the printed password true even when it was changed through the environment.
        await db
          .updateTable('demo_users')
          .set({ password_hash: await hashPassword(password) })
          .where('id', '=', found.id)
          .execute()
        return found.id
      }
      const id = `user_${randomBytes(8).toString('hex')}`
      await db
        .insertInto('demo_users')
        .values({ id, email: normalizeEmail(email), password_hash: await hashPassword(password) })
        .execute()
      return id
    },
    async signIn(email: string, password: string): Promise<string | null> {
      const key = normalizeEmail(email)
      const row = await db.selectFrom('demo_users').selectAll().where('email', '=', key).executeTakeFirst()
      return (await check(`email:${key}`, password, row?.password_hash)) && row ? row.id : null
    },
    async verify(userId: string, password: string): Promise<boolean> {
      const row = await db.selectFrom('demo_users').selectAll().where('id', '=', userId).executeTakeFirst()
      // Re-authentication counts against the same account as sign-in.
      const key = row ? `email:${row.email}` : `id:${userId}`
      return check(key, password, row?.password_hash)
    },
    async emailOf(userId: string): Promise<string | null> {
      const row = await db
        .selectFrom('demo_users')
        .select('email')
        .where('id', '=', userId)
        .executeTakeFirst()
      return row?.email ?? null
    },
    async idOf(email: string): Promise<string | null> {
      const row = await db
        .selectFrom('demo_users')
        .select('id')
        .where('email', '=', normalizeEmail(email))
        .executeTakeFirst()
      return row?.id ?? null
    },
  }
}
