/**
 * A runnable tour of the library on the in-memory store: generate a batch, redeem a sloppily typed
 * code, watch the same code fail the second time, and see the numbers behind the design.
 */
import { randomBytes } from 'node:crypto'
import {
  cooldownMs,
  createRecoveryCodes,
  DEFAULT_CODE_FORMAT,
  DJANGO_CODE_FORMAT,
  entropyBits,
  normalize,
} from '@recovery-codes/core'
import { memoryStore } from '@recovery-codes/store-memory'

// A fresh pepper per run: in an app it comes from a secrets manager (RECOVERY_CODES_PEPPER).
const pepper = randomBytes(32).toString('base64')
const rc = createRecoveryCodes({ peppers: [{ id: 'k1', secret: pepper }], store: memoryStore() })

const batch = await rc.generate({ userId: 'demo-user' })
if (!batch.ok) throw new Error('unexpected cooldown')
console.log(`Generated batch ${batch.batchId} with ${batch.codes.length} codes (shown once):`)
for (const code of batch.codes) console.log(`  ${code}`)
// Under `activation: 'confirm'` (the default) the batch waits until the user says the codes are saved.
if (batch.pending) {
  const confirmed = await rc.confirm({ userId: 'demo-user', reveal: batch.reveal })
  console.log(`confirmed → batch ${confirmed.batchId} is active`)
}

const first = batch.codes[0]!
const sloppy = ` ${first.toLowerCase().replaceAll('-', ' ').replaceAll('0', 'o')} `
console.log(`\nA user types:        "${sloppy}"`)
console.log(`normalize() gives:   ${normalize(sloppy, DEFAULT_CODE_FORMAT)}`)

const ok = await rc.redeem({ userId: 'demo-user', code: sloppy, clientKey: '127.0.0.1' })
console.log(`redeem → ${JSON.stringify(ok)}`)
const again = await rc.redeem({ userId: 'demo-user', code: first, clientKey: '127.0.0.1' })
console.log(`same code again → ${JSON.stringify(again)}`)

const status = await rc.status({ userId: 'demo-user' })
console.log(`status → remaining ${status.remaining}, shouldRegenerate ${status.shouldRegenerate}`)

console.log('\nEntropy per code:')
console.log(`  default (Crockford 5×5): ${entropyBits(DEFAULT_CODE_FORMAT)} bits`)
console.log(`  django preset (6×6 over 60 symbols): ${entropyBits(DJANGO_CODE_FORMAT).toFixed(1)} bits`)

const policy = { baseMs: 30_000, multiplier: 2, cutoffMs: 300_000 }
const ladder = Array.from({ length: 7 }, (_, k) => cooldownMs(policy, k) / 1000)
console.log(`\nCooldown ladder (base 30 s, ×2, cutoff 300 s): ${ladder.join(', ')} s`)
