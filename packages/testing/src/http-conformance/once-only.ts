/**
 * HTTP adapter conformance, once-only races: 20 concurrent downloads or emails of one batch, exactly
 * one succeeds.
 */
import { expect, it } from 'vitest'
import type { HarnessSetup } from './harness.ts'

/** Registers the once-only races inside the running `describe` block. */
export function onceOnlyTests(setup: HarnessSetup): void {
  it('20 concurrent downloads of one batch: exactly one 200', async () => {
    const h = await setup()
    const alice = h.login('alice')
    await h.batch(alice)
    const results = await Promise.all(
      Array.from({ length: 20 }, () => h.post('/download', { format: 'txt' }, { cookie: alice })),
    )
    expect(results.filter((r) => r.status === 200)).toHaveLength(1)
    for (const r of results) if (r.status !== 200) expect([409, 410]).toContain(r.status)
  })

  it('20 concurrent emails of one batch: exactly one 200, one message', async () => {
    const h = await setup()
    const alice = h.login('alice')
    await h.batch(alice)
    const results = await Promise.all(
      Array.from({ length: 20 }, () => h.post('/email', {}, { cookie: alice })),
    )
    expect(results.filter((r) => r.status === 200)).toHaveLength(1)
    for (const r of results) if (r.status !== 200) expect([409, 410]).toContain(r.status)
    expect(h.mailer.messages).toHaveLength(1)
  })
}
