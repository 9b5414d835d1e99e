/**
 * Service conformance, enumeration: an unknown identifier and a wrong code answer alike, with the
 * same store calls and the same digest work, locked or not.
 */
import { expect, it } from 'vitest'
import { createCountingStore } from '../store-wrappers.ts'
import { flip, onPath, type REDEEM_PATHS, type ServiceSuite } from './harness.ts'

/** Registers the enumeration test for one redeem path inside the running `describe` block. */
export function enumerationTest(suite: ServiceSuite, path: (typeof REDEEM_PATHS)[number]): void {
  const { make, batchFor } = suite

  it(`unknown identifier and wrong code: same result, same store calls, same digest work (${path})`, async () => {
    const users = new Map<string, string>()
    const counting = createCountingStore(suite.store)
    const digestsSeen: number[] = []
    const h = make(
      { loginMode: 'identifier-and-code', resolveUserId: async (id) => users.get(id) ?? null },
      () => {
        const wrapped = counting.store
        return {
          ...onPath(
            path,
            wrapped,
            () => {},
            (input) => digestsSeen.push(input.digests.length),
          ),
          consumeCode(input) {
            digestsSeen.push(input.digests.length)
            return wrapped.consumeCode(input)
          },
        }
      },
    )
    const b = await batchFor(h)
    users.set('known@example.test', b.userId)
    const kinds = {
      unknown: () => h.rc.redeem({ identifier: 'nobody@example.test', code: flip(b.codes[0]!) }),
      wrong: () => h.rc.redeem({ identifier: 'known@example.test', code: flip(b.codes[0]!) }),
    }
    counting.reset()
    digestsSeen.length = 0
    const unknown = await kinds.unknown()
    const unknownCalls = counting.sequence()
    const unknownDigests = [...digestsSeen]
    counting.reset()
    digestsSeen.length = 0
    const wrong = await kinds.wrong()
    expect(wrong).toEqual(unknown)
    expect(Object.keys(wrong).sort()).toEqual(Object.keys(unknown).sort())
    expect(counting.sequence()).toEqual(unknownCalls)
    expect(digestsSeen).toEqual(unknownDigests)
    expect(unknownDigests).toEqual([1])
    // Locked: unknown and known identifiers lock alike and answer alike.
    for (let i = 0; i < 6; i++) await kinds.unknown()
    for (let i = 0; i < 6; i++) await kinds.wrong()
    const lockedUnknown = await kinds.unknown()
    const lockedKnown = await kinds.wrong()
    expect(Object.keys(lockedKnown)).toEqual(Object.keys(lockedUnknown))
    expect(lockedKnown.ok).toBe(false)
  })
}
