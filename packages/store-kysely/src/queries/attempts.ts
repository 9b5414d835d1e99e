/**
 * Statements of the attempts aggregate (limiter counters): reserve, read, lock, settle. A
 * successful redeem writes none of them unless a reset counter exists (see `redeem.ts`).
 */
import { type Kysely, sql } from 'kysely'
import type { SqlDialect } from '../dialect.ts'
import type { RecoveryCodesDatabase } from '../schema.ts'
import type { Db } from './db.ts'

/** The counter columns every limiter statement returns. */
export const ATTEMPT_COLUMNS = ['failures', 'consecutive', 'lockouts', 'locked_until'] as const

/** The statements of the attempts aggregate for dialect `d`. */
export function attemptQueries(d: SqlDialect) {
  const { ts } = d
  return {
    /**
     * Reserve on several keys: one multi-row upsert, rows in the given order (the store sorts them,
     * so concurrent calls lock shared keys in one order). Each row is a conditional increment under
     * that row's lock (`WHERE locked_until <= :now AND failures < :max`, the max picked by
     * `excluded.key`); a row comes back for each key reserved, none for a key that is closed. A new
     * key is inserted with one failure: callers never pass `maxAttempts < 1`.
     */
    reserveAttempts: (db: Db, i: { keys: readonly { key: string; maxAttempts: number }[]; now: number }) =>
      db
        .insertInto('rc_attempts')
        .values(
          i.keys.map((k) => ({
            key: k.key,
            failures: 1,
            consecutive: 1,
            lockouts: 0,
            locked_until: ts(0),
            touched_at: ts(i.now),
          })),
        )
        .onConflict((oc) =>
          oc
            .column('key')
            .doUpdateSet((eb) => ({
              failures: eb('rc_attempts.failures', '+', 1),
              consecutive: eb('rc_attempts.consecutive', '+', 1),
              touched_at: ts(i.now),
            }))
            .where('rc_attempts.locked_until', '<=', ts(i.now))
            .where((eb) =>
              i.keys.length === 1
                ? eb('rc_attempts.failures', '<', i.keys[0]!.maxAttempts)
                : eb.or(
                    i.keys.map((k) =>
                      eb.and([
                        eb('excluded.key', '=', k.key),
                        eb('rc_attempts.failures', '<', k.maxAttempts),
                      ]),
                    ),
                  ),
            ),
        )
        .returning(['key', ...ATTEMPT_COLUMNS]),

    /** The counters of several keys (missing keys: no row). */
    readAttempts: (db: Db, keys: readonly string[]) =>
      db
        .selectFrom('rc_attempts')
        .select(['key', ...ATTEMPT_COLUMNS])
        .where('key', 'in', keys),

    getAttempts: (db: Db, key: string) =>
      db.selectFrom('rc_attempts').select(ATTEMPT_COLUMNS).where('key', '=', key),

    lockAttempts: (db: Db, i: { key: string; until: number }) =>
      db
        .insertInto('rc_attempts')
        .values({ key: i.key, failures: 0, consecutive: 0, lockouts: 1, locked_until: ts(i.until) })
        .onConflict((oc) =>
          oc.column('key').doUpdateSet((eb) => ({
            failures: 0,
            lockouts: eb('rc_attempts.lockouts', '+', 1),
            locked_until: ts(i.until),
          })),
        )
        .returning(ATTEMPT_COLUMNS),

    /** Settle, SQLite, step 1 (same transaction as step 2): delete the reset counters. */
    deleteAttempts: (db: Db, keys: readonly string[]) =>
      db.deleteFrom('rc_attempts').where('key', 'in', keys),

    /**
     * Gives back one reservation on each key (SQLite: settle step 2, after step 1 deleted the reset
     * keys, and the give-back of a denied reserve). The `> 0` guards keep it from going negative
     * under races.
     */
    releaseAttempts: (db: Db, keys: readonly string[]) =>
      db
        .updateTable('rc_attempts')
        .set((eb) => ({
          failures: eb('failures', '-', 1),
          consecutive: eb
            .case()
            .when('consecutive', '>', 0)
            .then(eb('consecutive', '-', 1))
            .else(0)
            .end(),
        }))
        .where('key', 'in', keys)
        .where('failures', '>', 0),

    /**
     * Settle on PostgreSQL, one statement: `l` locks every existing counter named in either list in
     * one fixed order (`ORDER BY key COLLATE "C"`, byte order: the order {@link reserveAttempts}
     * rows are sent in), so a settle and a reserve that share keys cannot deadlock; then the reset
     * counters are deleted (CTE `d`) and the others released (main UPDATE, `failures > 0`). A key in
     * both lists is only deleted: a statement must not modify a row twice. Missing keys: no row in
     * `l`, nothing happens.
     */
    settleAttempts: (db: Db, i: { reset: readonly string[]; release: readonly string[] }) => {
      const all = [...i.reset, ...i.release]
      const locked = (db as Kysely<RecoveryCodesDatabase>).with('l', (qb) =>
        qb
          .selectFrom('rc_attempts')
          .select('key')
          .where('key', 'in', all)
          .orderBy(sql`"key" collate "C"`)
          .forUpdate(),
      )
      if (i.release.length === 0)
        return locked.deleteFrom('rc_attempts').where('key', 'in', (eb) => eb.selectFrom('l').select('l.key'))
      const withDelete =
        i.reset.length === 0
          ? locked
          : (locked.with('d', (qb) =>
              qb
                .deleteFrom('rc_attempts')
                .where('key', 'in', (eb) => eb.selectFrom('l').select('l.key'))
                .where('key', 'in', i.reset),
            ) as unknown as typeof locked)
      const release = withDelete
        .updateTable('rc_attempts')
        .set((eb) => ({
          failures: eb('failures', '-', 1),
          consecutive: eb
            .case()
            .when('consecutive', '>', 0)
            .then(eb('consecutive', '-', 1))
            .else(0)
            .end(),
        }))
        .where('key', 'in', (eb) => eb.selectFrom('l').select('l.key'))
        .where('key', 'in', i.release)
        .where('failures', '>', 0)
      return i.reset.length === 0 ? release : release.where('key', 'not in', i.reset)
    },
  }
}
