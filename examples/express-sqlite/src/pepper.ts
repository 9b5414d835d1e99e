/**
 * The demo's pepper: `RECOVERY_CODES_PEPPER(S)` when set, else a 32-byte secret generated on first
 * start and kept in `<dataDir>/pepper` (mode 0600). Its value is never printed.
 */
import { randomBytes } from 'node:crypto'
import { chmodSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export function loadOrCreatePepper(dataDir: string): { secret: string; created: boolean; file: string } {
  const file = join(dataDir, 'pepper')
  try {
    const secret = readFileSync(file, 'utf8').trim()
    chmodSync(file, 0o600)
    return { secret, created: false, file }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e
  }
  const secret = `base64:${randomBytes(32).toString('base64')}`
  writeFileSync(file, `${secret}\n`, { mode: 0o600, flag: 'wx' })
  return { secret, created: true, file }
}
