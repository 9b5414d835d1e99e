/**
 * Laravel Fortify: `users.two_factor_recovery_codes = encrypt(json_encode($codes))`, Laravel's
 * Encrypter with `serialize = true`. The stored value is `base64(json { iv, value, mac, tag })`:
 * `value` = base64 of AES-CBC (PKCS#7) over the PHP-serialized string `s:<bytes>:"<json>";` under
 * `APP_KEY`, `mac` = hex HMAC-SHA256(key, iv_base64 ‖ value_base64), `tag` empty (the AES-GCM
 * ciphers put the tag there and leave `mac` empty). Fortify replaces a used code with a new one,
 * so every code read is unused.
 */
import { createDecipheriv, createHmac, timingSafeEqual } from 'node:crypto'
import type { ImportSource } from '@recovery-codes/core'
import type { Kysely } from 'kysely'
import {
  checkNow,
  checkRows,
  type Decrypter,
  encryptedRowsSource,
  type RowFail,
  type RowsInput,
} from './encrypted-rows.ts'
import { invalidOption } from './errors.ts'
import { keysetRows } from './rows-db.ts'
import type { RowsFileRecord } from './rows-file.ts'

/** The source name, part of every imported id: never change it for a source already imported. */
export const FORTIFY_SOURCE_NAME = 'fortify'

/** Laravel's ciphers (`config('app.cipher')`) and their key sizes. */
export const LARAVEL_CIPHERS = Object.freeze({
  'aes-128-cbc': Object.freeze({ key: 16, iv: 16, aead: false }),
  'aes-256-cbc': Object.freeze({ key: 32, iv: 16, aead: false }),
  'aes-128-gcm': Object.freeze({ key: 16, iv: 12, aead: true }),
  'aes-256-gcm': Object.freeze({ key: 32, iv: 12, aead: true }),
})

/** A cipher of {@link LARAVEL_CIPHERS}. */
export type LaravelCipher = keyof typeof LARAVEL_CIPHERS

/** One `users` row as the reader needs it. */
export interface FortifyRow {
  userId: string | number | bigint
  /** `two_factor_recovery_codes`; NULL or empty: the row is skipped. */
  recoveryCodes: string | null
}

/** Options of {@link fortifySource}. */
export interface FortifySourceOptions {
  /** `{ userId, recoveryCodes }` rows: from {@link fortifyRowsFromDb}, {@link readRowsFile} or your own query. */
  rows: RowsInput<FortifyRow | RowsFileRecord>
  /** `APP_KEY`: `base64:<key>` or the raw key text, as Laravel reads it. */
  appKey: string
  /** `APP_PREVIOUS_KEYS`, tried after `appKey` as Laravel does. @default [] */
  previousKeys?: readonly string[]
  /** `config('app.cipher')`. @default 'aes-256-cbc' */
  cipher?: LaravelCipher
  /** The creation time given to every batch (Fortify keeps none), epoch ms. */
  now: number
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
const MAC_HEX = /^[0-9a-f]{64}$/
const GCM_TAG_BYTES = 16

/**
 * Laravel Fortify recovery codes as an {@link ImportSource}: each row one `active` batch (source
 * id = user id, created `now`, no expiry) of plaintext codes, which the import digests under the
 * current pepper. Configure `import.formats: ['fortify']` so that redeem accepts their shape.
 *
 * `IMPORT_INVALID` naming the user: a MAC that does not verify under any given key (a wrong
 * `APP_KEY`, a tampered value; compared in constant time), a payload that is not Laravel's, a
 * plaintext that is not exactly a PHP-serialized string `s:N:"…";` (N checked in bytes) of a JSON
 * array of codes, or a user listed twice. Rows with no value are skipped with a reason.
 *
 * @example
 * ```ts
 * const source = fortifySource({ rows: fortifyRowsFromDb(laravelDb), appKey: process.env.APP_KEY!, now: Date.now() })
 * await rc.importCodes(source)
 * ```
 * @throws RecoveryCodesError `INVALID_INPUT` for unusable options (a key of the wrong size).
 */
export function fortifySource(options: FortifySourceOptions): ImportSource {
  const rows = checkRows(options?.rows)
  const now = checkNow(options.now)
  const cipher = options.cipher ?? 'aes-256-cbc'
  if (!Object.hasOwn(LARAVEL_CIPHERS, cipher)) {
    throw invalidOption('cipher', `must be one of ${Object.keys(LARAVEL_CIPHERS).join(', ')}`)
  }
  const previous = options.previousKeys ?? []
  if (!Array.isArray(previous)) throw invalidOption('previousKeys', 'must be a list of keys')
  const keyTexts: readonly string[] = [options.appKey, ...previous]
  // Checked now, so that a wrong key size fails before anything is read; parsed again per read.
  for (const [i, k] of keyTexts.entries()) {
    parseAppKey(k, cipher, i === 0 ? 'appKey' : `previousKeys.${i - 1}`).fill(0)
  }
  return encryptedRowsSource({
    name: FORTIFY_SOURCE_NAME,
    table: 'users',
    valueField: 'recoveryCodes',
    rows,
    now,
    open: () =>
      laravelDecrypter(
        keyTexts.map((k) => parseAppKey(k, cipher, 'appKey')),
        cipher,
      ),
  })
}

/** Options of {@link fortifyRowsFromDb}: Fortify's names unless the app changed them. */
export interface FortifyRowsFromDbOptions {
  /** @default 'users' */
  table?: string
  /** The primary key, which is the user id. @default 'id' */
  idColumn?: string
  /** @default 'two_factor_recovery_codes' */
  recoveryCodesColumn?: string
  /** Rows per query, from 1 to 10,000. @default 1000 */
  pageSize?: number
}

/**
 * The users of a Laravel database that have recovery codes, streamed in primary-key order.
 * Re-iterable: each iteration queries anew.
 *
 * @example
 * ```ts
 * fortifySource({ rows: fortifyRowsFromDb(db), appKey, now })
 * ```
 */
export function fortifyRowsFromDb(
  // biome-ignore lint/suspicious/noExplicitAny: another system's database, of a schema we do not type
  db: Kysely<any>,
  options: FortifyRowsFromDbOptions = {},
): AsyncIterable<FortifyRow> {
  const id = options.idColumn ?? 'id'
  return keysetRows<FortifyRow>(
    db,
    {
      table: options.table ?? 'users',
      idColumn: id,
      userIdColumn: id,
      valueColumn: options.recoveryCodesColumn ?? 'two_factor_recovery_codes',
      valueKey: 'recoveryCodes',
      pageSize: options.pageSize,
    },
    { valueColumn: 'recoveryCodesColumn' },
  )
}

/**
 * The key bytes of an `APP_KEY`, as Laravel's `EncryptionServiceProvider::parseKey`.
 *
 * @throws RecoveryCodesError `INVALID_INPUT` (never quoting the key).
 */
function parseAppKey(text: unknown, cipher: LaravelCipher, path: string): Buffer {
  if (typeof text !== 'string' || text.length === 0) throw invalidOption(path, 'must be the APP_KEY text')
  let key: Buffer
  if (text.startsWith('base64:')) {
    const b64 = text.slice('base64:'.length)
    if (!BASE64.test(b64)) throw invalidOption(path, "is not valid base64 after 'base64:'")
    key = Buffer.from(b64, 'base64')
  } else {
    key = Buffer.from(text, 'utf8')
  }
  const size = LARAVEL_CIPHERS[cipher].key
  if (key.length !== size) {
    key.fill(0)
    throw invalidOption(path, `must be ${size} bytes for ${cipher} (after base64 decoding)`)
  }
  return key
}

interface Payload {
  iv: string
  value: string
  mac: string
  tag?: string
}

/** Decrypts as Laravel's `Encrypter::decrypt` (keys in order), then unwraps `s:N:"…";`. */
function laravelDecrypter(keys: Buffer[], cipher: LaravelCipher): Decrypter {
  const spec = LARAVEL_CIPHERS[cipher]
  return {
    decrypt(value, fail) {
      const payload = readPayload(value, fail)
      const iv = strictBase64(payload.iv)
      if (iv === null || iv.length !== spec.iv) fail(`recoveryCodes has no ${spec.iv}-byte IV for ${cipher}`)
      const ciphertext = strictBase64(payload.value)
      if (ciphertext === null || ciphertext.length === 0) fail('recoveryCodes has no base64 ciphertext')
      let plaintext: Buffer | null = null
      if (spec.aead) {
        const tag = strictBase64(payload.tag ?? '')
        if (tag === null || tag.length !== GCM_TAG_BYTES)
          fail(`recoveryCodes has no ${GCM_TAG_BYTES}-byte tag for ${cipher}`)
        for (const key of keys) {
          plaintext = tryDecrypt(cipher, key, iv!, ciphertext!, tag!)
          if (plaintext !== null) break
        }
        if (plaintext === null)
          fail('recoveryCodes does not decrypt with the given APP_KEY (a wrong key, or a tampered value)')
      } else {
        if (payload.tag !== undefined && payload.tag !== '') {
          fail(`recoveryCodes carries an AEAD tag, which ${cipher} does not use`)
        }
        if (!MAC_HEX.test(payload.mac)) fail('recoveryCodes has no hex HMAC-SHA256 mac')
        const key = keys.find((k) => macMatches(k, payload))
        if (key === undefined) {
          fail('recoveryCodes MAC does not verify with the given APP_KEY (a wrong key, or a tampered value)')
        }
        plaintext = tryDecrypt(cipher, key!, iv!, ciphertext!, null)
        if (plaintext === null) fail('recoveryCodes does not decrypt (bad padding) although its MAC verifies')
      }
      return unserializeString(plaintext!, fail)
    },
    close() {
      for (const k of keys) k.fill(0)
    },
  }
}

function readPayload(value: string, fail: RowFail): Payload {
  const json = strictBase64(value)
  let p: unknown
  try {
    p = json === null ? undefined : JSON.parse(json.toString('utf8'))
  } catch {
    p = undefined
  }
  const o = p as Partial<Record<keyof Payload, unknown>> | undefined
  if (
    typeof o !== 'object' ||
    o === null ||
    typeof o.iv !== 'string' ||
    typeof o.value !== 'string' ||
    typeof o.mac !== 'string' ||
    (o.tag !== undefined && typeof o.tag !== 'string')
  ) {
    return fail('recoveryCodes is not a Laravel encrypted payload (base64 of JSON { iv, value, mac, tag })')
  }
  return o as Payload
}

/** `hash_equals(hash_hmac('sha256', iv . value, key), mac)`, in constant time. */
function macMatches(key: Buffer, p: Payload): boolean {
  const expected = Buffer.from(createHmac('sha256', key).update(p.iv).update(p.value).digest('hex'), 'latin1')
  return timingSafeEqual(expected, Buffer.from(p.mac, 'latin1'))
}

function tryDecrypt(
  cipher: LaravelCipher,
  key: Buffer,
  iv: Buffer,
  data: Buffer,
  tag: Buffer | null,
): Buffer | null {
  const parts: Buffer[] = []
  try {
    const d = createDecipheriv(cipher, key, iv)
    if (tag !== null)
      (d as ReturnType<typeof createDecipheriv> & { setAuthTag(t: Buffer): void }).setAuthTag(tag)
    parts.push(d.update(data))
    parts.push(d.final())
    return Buffer.concat(parts)
  } catch {
    return null
  } finally {
    for (const p of parts) p.fill(0)
  }
}

const S = 0x73
const COLON = 0x3a
const QUOTE = 0x22
const SEMICOLON = 0x3b

/**
 * The bytes of a PHP-serialized string `s:<N>:"<N bytes>";` and nothing else; `plaintext` is
 * wiped. PHP never writes a leading zero in N, and nothing may follow the closing `";`.
 */
function unserializeString(plaintext: Buffer, fail: RowFail): Uint8Array {
  try {
    let i = 2
    let n = 0
    while (i < plaintext.length && plaintext[i]! >= 0x30 && plaintext[i]! <= 0x39 && i < 12) {
      n = n * 10 + (plaintext[i]! - 0x30)
      i++
    }
    const digits = i - 2
    const ok =
      plaintext[0] === S &&
      plaintext[1] === COLON &&
      digits > 0 &&
      !(digits > 1 && plaintext[2] === 0x30) &&
      plaintext[i] === COLON &&
      plaintext[i + 1] === QUOTE &&
      plaintext.length === i + 2 + n + 2 &&
      plaintext[i + 2 + n] === QUOTE &&
      plaintext[i + 3 + n] === SEMICOLON
    if (!ok) fail('recoveryCodes decrypts to something other than a PHP-serialized string s:N:"…";')
    return new Uint8Array(plaintext.subarray(i + 2, i + 2 + n))
  } finally {
    plaintext.fill(0)
  }
}

/** Strict base64 (as PHP's `base64_decode($s, true)` of Laravel's output); `null` otherwise. */
function strictBase64(s: string): Buffer | null {
  return BASE64.test(s) ? Buffer.from(s, 'base64') : null
}
