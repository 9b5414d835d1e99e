/**
 * better-auth's two-factor plugin: per user, `twoFactor.backupCodes` holds the unused codes as
 * `symmetricEncrypt({ key: secret, data: JSON.stringify(codes) })`, i.e. hex of
 * `nonce(24) ‖ XChaCha20-Poly1305(SHA-256(secret), nonce, json)`; with versioned secrets
 * (`secrets` / `BETTER_AUTH_SECRETS`) it is wrapped as `$ba$<version>$<hex>`. A used code is
 * removed from the array, so every code read is unused.
 */
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js'
import { sha256 } from '@noble/hashes/sha2.js'
import type { ImportSource } from '@recovery-codes/core'
import type { Kysely } from 'kysely'
import { checkNow, checkRows, type Decrypter, encryptedRowsSource, type RowsInput } from './encrypted-rows.ts'
import { invalidOption } from './errors.ts'
import { keysetRows } from './rows-db.ts'
import type { RowsFileRecord } from './rows-file.ts'

/** The source name, part of every imported id: never change it for a source already imported. */
export const BETTER_AUTH_SOURCE_NAME = 'better-auth'

/** One `twoFactor` row as the reader needs it. */
export interface BetterAuthRow {
  userId: string | number | bigint
  /** The stored value; NULL or empty: the row is skipped. */
  backupCodes: string | null
}

/** better-auth's versioned secrets (its `secrets` option, or `BETTER_AUTH_SECRETS` parsed). */
export interface BetterAuthSecrets {
  /** Every version still in use; values as configured there (text). */
  secrets: readonly { version: number; value: string }[]
  /** `BETTER_AUTH_SECRET`, for values written before versioned secrets (bare hex). */
  legacySecret?: string
}

/** Options of {@link betterAuthSource}. */
export interface BetterAuthSourceOptions {
  /** `{ userId, backupCodes }` rows: from {@link betterAuthRowsFromDb}, {@link readRowsFile} or your own query. */
  rows: RowsInput<BetterAuthRow | RowsFileRecord>
  /** `BETTER_AUTH_SECRET` (text, as better-auth takes it), or its versioned secrets. */
  secret: string | BetterAuthSecrets
  /** The creation time given to every batch (better-auth keeps none), epoch ms. */
  now: number
  /**
   * The plugin's `backupCodeOptions.storeBackupCodes`: `'encrypted'` (its default) or `'plain'`
   * (the JSON array as is). A custom `{ encrypt, decrypt }` cannot be read here: decrypt the rows
   * yourself and pass them as `'plain'`.
   * @default 'encrypted'
   */
  storeBackupCodes?: 'encrypted' | 'plain'
}

const NONCE_BYTES = 24
const TAG_BYTES = 16
const HEX = /^(?:[0-9a-fA-F]{2})+$/
const ENVELOPE = /^\$ba\$(\d{1,9})\$(.*)$/s

/**
 * better-auth two-factor backup codes as an {@link ImportSource}: each row one `active` batch
 * (source id = user id, created `now`, no expiry) of plaintext codes, which the import digests
 * under the current pepper. Configure `import.formats: ['better-auth']` (or the format of a custom
 * generator) so that redeem accepts their shape.
 *
 * `IMPORT_INVALID` naming the user: a value that does not decrypt with the secret (a wrong
 * secret, a tampered value), that is not a better-auth ciphertext, that decrypts to something
 * other than a JSON array of codes, or a user listed twice. Rows with no value, or an empty array,
 * are skipped with a reason.
 *
 * @example
 * ```ts
 * const source = betterAuthSource({
 *   rows: betterAuthRowsFromDb(authDb),
 *   secret: process.env.BETTER_AUTH_SECRET!,
 *   now: Date.now(),
 * })
 * await rc.importCodes(source)
 * ```
 * @throws RecoveryCodesError `INVALID_INPUT` for unusable options.
 */
export function betterAuthSource(options: BetterAuthSourceOptions): ImportSource {
  const rows = checkRows(options?.rows)
  const now = checkNow(options.now)
  const mode = options.storeBackupCodes ?? 'encrypted'
  if (mode !== 'encrypted' && mode !== 'plain') {
    throw invalidOption('storeBackupCodes', "must be 'encrypted' or 'plain'")
  }
  const secret = mode === 'encrypted' ? checkSecret(options.secret) : null
  return encryptedRowsSource({
    name: BETTER_AUTH_SOURCE_NAME,
    table: 'twoFactor',
    valueField: 'backupCodes',
    rows,
    now,
    open: () => (secret === null ? plainReader() : decrypter(secret)),
  })
}

/** Options of {@link betterAuthRowsFromDb}: better-auth's names unless its schema was customised. */
export interface BetterAuthRowsFromDbOptions {
  /** @default 'twoFactor' */
  table?: string
  /** The primary key, for pagination. @default 'id' */
  idColumn?: string
  /** @default 'userId' */
  userIdColumn?: string
  /** @default 'backupCodes' */
  backupCodesColumn?: string
  /** Rows per query, from 1 to 10,000. @default 1000 */
  pageSize?: number
}

/**
 * The `twoFactor` rows of a better-auth database, streamed in primary-key order (rows whose
 * `backupCodes` is NULL left out). Re-iterable: each iteration queries anew.
 *
 * @example
 * ```ts
 * betterAuthSource({ rows: betterAuthRowsFromDb(db, { table: 'two_factor', userIdColumn: 'user_id',
 *   backupCodesColumn: 'backup_codes' }), secret, now })
 * ```
 */
export function betterAuthRowsFromDb(
  // biome-ignore lint/suspicious/noExplicitAny: another system's database, of a schema we do not type
  db: Kysely<any>,
  options: BetterAuthRowsFromDbOptions = {},
): AsyncIterable<BetterAuthRow> {
  return keysetRows<BetterAuthRow>(
    db,
    {
      table: options.table ?? 'twoFactor',
      idColumn: options.idColumn ?? 'id',
      userIdColumn: options.userIdColumn ?? 'userId',
      valueColumn: options.backupCodesColumn ?? 'backupCodes',
      valueKey: 'backupCodes',
      pageSize: options.pageSize,
    },
    { valueColumn: 'backupCodesColumn' },
  )
}

interface ResolvedSecret {
  /** The unversioned secret (a plain string, or `legacySecret`). */
  bare: string | null
  versions: ReadonlyMap<number, string>
}

function checkSecret(secret: unknown): ResolvedSecret {
  if (typeof secret === 'string') {
    if (secret.length === 0) throw invalidOption('secret', 'must not be empty')
    return { bare: secret, versions: new Map() }
  }
  const s = secret as Partial<BetterAuthSecrets> | null
  if (typeof s !== 'object' || s === null || !Array.isArray(s.secrets) || s.secrets.length === 0) {
    throw invalidOption(
      'secret',
      'must be BETTER_AUTH_SECRET (text) or { secrets: [{ version, value }], legacySecret? }',
    )
  }
  const versions = new Map<number, string>()
  for (const [i, e] of s.secrets.entries()) {
    if (!Number.isSafeInteger(e?.version) || e.version < 0 || versions.has(e.version)) {
      throw invalidOption(`secret.secrets.${i}.version`, 'must be a distinct non-negative integer')
    }
    if (typeof e.value !== 'string' || e.value.length === 0) {
      throw invalidOption(`secret.secrets.${i}.value`, 'must be a non-empty string')
    }
    versions.set(e.version, e.value)
  }
  if (s.legacySecret !== undefined && (typeof s.legacySecret !== 'string' || s.legacySecret.length === 0)) {
    throw invalidOption('secret.legacySecret', 'must be a non-empty string')
  }
  return { bare: s.legacySecret ?? null, versions }
}

/** Decrypts as better-auth's `symmetricDecrypt`; each secret's key is derived once per read. */
function decrypter(secret: ResolvedSecret): Decrypter {
  const keys = new Map<string, Uint8Array>()
  const keyOf = (s: string) => {
    let k = keys.get(s)
    if (k === undefined) {
      k = sha256(new TextEncoder().encode(s))
      keys.set(s, k)
    }
    return k
  }
  return {
    decrypt(value, fail) {
      let hex = value
      let source: string
      const envelope = ENVELOPE.exec(value)
      if (envelope !== null) {
        const version = Number(envelope[1])
        const s = secret.versions.get(version)
        if (s === undefined) {
          fail(
            secret.versions.size === 0
              ? `backupCodes is encrypted under secret version ${version}: pass the versioned secrets`
              : `backupCodes is encrypted under secret version ${version}, which is not in secrets`,
          )
        }
        source = s!
        hex = envelope[2]!
      } else {
        if (value.startsWith('[')) fail("backupCodes is not encrypted (storeBackupCodes: 'plain'?)")
        if (secret.bare === null) {
          fail('backupCodes is an unversioned ciphertext and no legacySecret (BETTER_AUTH_SECRET) was given')
        }
        source = secret.bare!
      }
      if (!HEX.test(hex) || hex.length < 2 * (NONCE_BYTES + TAG_BYTES)) {
        fail('backupCodes is not a better-auth ciphertext (hex of nonce, ciphertext and tag)')
      }
      const bytes = hexToBytes(hex)
      try {
        return xchacha20poly1305(keyOf(source), bytes.subarray(0, NONCE_BYTES)).decrypt(
          bytes.subarray(NONCE_BYTES),
        )
      } catch {
        return fail(
          'backupCodes does not decrypt with the given secret (a wrong secret, or a tampered value)',
        )
      }
    },
    close() {
      for (const k of keys.values()) k.fill(0)
      keys.clear()
    },
  }
}

/** `storeBackupCodes: 'plain'`: the JSON array as stored. */
function plainReader(): Decrypter {
  return {
    decrypt(value, fail) {
      if (!value.startsWith('[')) {
        fail("backupCodes is not a JSON array (storeBackupCodes: 'encrypted'?)")
      }
      return new TextEncoder().encode(value)
    },
    close() {},
  }
}

function hexToBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2)
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16)
  return out
}
