import { describe, expect, it, vi } from 'vitest'
import { STORE_METHODS } from '../config.ts'
import { isRecoveryCodesError } from '../errors.ts'
import type { Cache } from '../ports/cache.ts'
import type { RecoveryCodeStore } from '../ports/store.ts'
import { createRecoveryCodes } from './create.ts'

const PEPPER = Buffer.from(
  Uint8Array.from({ length: 32 }, (_, i) => (i * i * 73 + i * 11 + 5) % 251),
).toString('base64')

// Every store and cache method is a spy that fails: the calls below must not reach them.
function untouchedPorts() {
  const store: Record<string, ReturnType<typeof vi.fn>> = {}
  for (const m of STORE_METHODS) store[m] = vi.fn(async () => Promise.reject(new Error(`store.${m} called`)))
  const cache = {
    getItem: vi.fn(async () => Promise.reject(new Error('cache.getItem called'))),
    setItem: vi.fn(async () => Promise.reject(new Error('cache.setItem called'))),
    removeItem: vi.fn(async () => Promise.reject(new Error('cache.removeItem called'))),
  }
  const calls = () =>
    [...Object.values(store), ...Object.values(cache)].reduce((n, f) => n + f.mock.calls.length, 0)
  return { store: store as unknown as RecoveryCodeStore, cache: cache as unknown as Cache, calls }
}

describe('exportCodes: formats that need a renderer', () => {
  it('exportFormats lists txt and csv, plus pdf only when export.pdf is set', () => {
    const { store } = untouchedPorts()
    const without = createRecoveryCodes({ peppers: [{ id: 'k1', secret: PEPPER }], store })
    expect(without.exportFormats).toEqual(['txt', 'csv'])
    expect(Object.isFrozen(without.exportFormats)).toBe(true)
    const withPdf = createRecoveryCodes({
      peppers: [{ id: 'k1', secret: PEPPER }],
      store,
      export: { pdf: () => new Uint8Array() },
    })
    expect(withPdf.exportFormats).toEqual(['txt', 'csv', 'pdf'])
  })

  it('pdf without a renderer: FEATURE_DISABLED before the slot or the once-only flag is touched', async () => {
    const { store, cache, calls } = untouchedPorts()
    const rc = createRecoveryCodes({ peppers: [{ id: 'k1', secret: PEPPER }], store, cache })
    const error = await rc.exportCodes({ userId: 'u1', reveal: 'any-token', format: 'pdf' }).catch((e) => e)
    expect(isRecoveryCodesError(error, 'FEATURE_DISABLED')).toBe(true)
    expect(error.status).toBe(501)
    expect(error.message).toContain('@recovery-codes/pdf')
    expect(calls()).toBe(0)
    // An unknown format is still INVALID_INPUT, also before any port call.
    const bad = await rc
      .exportCodes({ userId: 'u1', reveal: 'any-token', format: 'docx' as 'txt' })
      .catch((e) => e)
    expect(isRecoveryCodesError(bad, 'INVALID_INPUT')).toBe(true)
    expect(calls()).toBe(0)
  })
})
