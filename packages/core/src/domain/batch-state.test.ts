import { describe, expect, it } from 'vitest'
import { RecoveryCodesError } from '../errors.ts'
import {
  assertBatchTransition,
  assertCodeTransition,
  BATCH_TRANSITIONS,
  type BatchLifecycleState,
  CODE_TRANSITIONS,
  type CodeLifecycleState,
  canTransitionBatch,
  canTransitionCode,
  isCodeUsable,
  isExpired,
} from './batch-state.ts'

const BATCH_STATES: BatchLifecycleState[] = ['active', 'superseded', 'disabled', 'deleted', 'purged']
const CODE_STATES: CodeLifecycleState[] = ['active', 'used', 'invalidated', 'deleted', 'purged']

// The lifecycle as specified, written out independently of the module's tables.
const LEGAL_BATCH = new Set([
  'active>superseded',
  'active>disabled',
  'active>deleted',
  'superseded>purged',
  'disabled>purged',
  'deleted>purged',
])
const LEGAL_CODE = new Set([
  'active>used',
  'active>invalidated',
  'active>deleted',
  'active>purged',
  'used>purged',
  'invalidated>purged',
  'deleted>purged',
])

function thrown(fn: () => void): unknown {
  try {
    fn()
  } catch (e) {
    return e
  }
  return undefined
}

function pairs<S extends string>(states: readonly S[]): [S, S][] {
  return states.flatMap((from) => states.map((to) => [from, to] as [S, S]))
}

describe('batch transitions', () => {
  it('the table covers every state and purged is terminal', () => {
    expect(Object.keys(BATCH_TRANSITIONS).sort()).toEqual([...BATCH_STATES].sort())
    expect(BATCH_TRANSITIONS.purged).toEqual([])
  })

  for (const [from, to] of pairs(BATCH_STATES)) {
    const legal = LEGAL_BATCH.has(`${from}>${to}`)
    it(`${from} → ${to} is ${legal ? 'legal' : 'illegal'}`, () => {
      expect(canTransitionBatch(from, to)).toBe(legal)
      const error = thrown(() => assertBatchTransition(from, to))
      if (legal) {
        expect(error).toBeUndefined()
      } else {
        expect(error).toBeInstanceOf(RecoveryCodesError)
        expect(error).toMatchObject({ code: 'ILLEGAL_TRANSITION', status: 409 })
        expect((error as Error).message).toContain(`${from} → ${to}`)
      }
    })
  }

  it('unknown or prototype-named states are illegal', () => {
    const odd = (s: string) => s as BatchLifecycleState
    expect(canTransitionBatch(odd('toString'), 'purged')).toBe(false)
    expect(canTransitionBatch(odd('__proto__'), 'active')).toBe(false)
    expect(thrown(() => assertBatchTransition(odd('expired'), 'purged'))).toMatchObject({
      code: 'ILLEGAL_TRANSITION',
    })
  })
})

describe('code transitions', () => {
  it('the table covers every state and purged is terminal', () => {
    expect(Object.keys(CODE_TRANSITIONS).sort()).toEqual([...CODE_STATES].sort())
    expect(CODE_TRANSITIONS.purged).toEqual([])
  })

  for (const [from, to] of pairs(CODE_STATES)) {
    const legal = LEGAL_CODE.has(`${from}>${to}`)
    it(`${from} → ${to} is ${legal ? 'legal' : 'illegal'}`, () => {
      expect(canTransitionCode(from, to)).toBe(legal)
      const error = thrown(() => assertCodeTransition(from, to))
      if (legal) {
        expect(error).toBeUndefined()
      } else {
        expect(error).toBeInstanceOf(RecoveryCodesError)
        expect(error).toMatchObject({ code: 'ILLEGAL_TRANSITION' })
        expect((error as Error).message).toContain(`${from} → ${to}`)
      }
    })
  }

  it('the tables are frozen', () => {
    expect(Object.isFrozen(CODE_TRANSITIONS)).toBe(true)
    expect(Object.isFrozen(CODE_TRANSITIONS.active)).toBe(true)
    expect(Object.isFrozen(BATCH_TRANSITIONS.active)).toBe(true)
  })
})

describe('expiry (derived, valid iff now < expiresAt)', () => {
  it('is valid at expiresAt − 1 and expired at expiresAt', () => {
    expect(isExpired(1_000, 999)).toBe(false)
    expect(isExpired(1_000, 1_000)).toBe(true)
    expect(isExpired(1_000, 1_001)).toBe(true)
  })

  it('never expires when expiresAt is null', () => {
    expect(isExpired(null, Number.MAX_SAFE_INTEGER)).toBe(false)
  })

  it('fails closed on NaN', () => {
    expect(isExpired(1_000, Number.NaN)).toBe(true)
  })
})

describe('isCodeUsable', () => {
  const usable = { codeState: 'active', batchStatus: 'active', expiresAt: 1_000, now: 999 } as const

  it('needs an active code in an active, unexpired batch', () => {
    expect(isCodeUsable(usable)).toBe(true)
    expect(isCodeUsable({ ...usable, now: 1_000 })).toBe(false)
    expect(isCodeUsable({ ...usable, expiresAt: null, now: 1e15 })).toBe(true)
    for (const codeState of ['used', 'invalidated', 'deleted'] as const) {
      expect(isCodeUsable({ ...usable, codeState })).toBe(false)
    }
    for (const batchStatus of ['superseded', 'disabled', 'deleted'] as const) {
      expect(isCodeUsable({ ...usable, batchStatus })).toBe(false)
    }
  })
})
