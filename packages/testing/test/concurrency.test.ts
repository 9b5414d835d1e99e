import { describe, expect, it } from 'vitest'
import { createBarrier, createCountingStore, createSlowStore, startTogether } from '../src/index.ts'

const flush = () => new Promise((r) => setImmediate(r))

describe('createBarrier', () => {
  it('holds callers until n wait, releases them together, then rearms', async () => {
    const barrier = createBarrier(3)
    const released: number[] = []
    const a = barrier.wait().then(() => released.push(1))
    const b = barrier.wait().then(() => released.push(2))
    await flush()
    expect(released).toEqual([])
    expect(barrier.waiting).toBe(2)
    await Promise.all([barrier.wait().then(() => released.push(3)), a, b])
    expect(released.sort()).toEqual([1, 2, 3])
    expect(barrier.waiting).toBe(0)

    let second = false
    void barrier.wait().then(() => {
      second = true
    })
    await flush()
    expect(second).toBe(false)
  })

  it('refuses a non-positive party count', () => {
    expect(() => createBarrier(0)).toThrow(RangeError)
  })
})

describe('startTogether', () => {
  it('starts no task before all are scheduled and keeps results in order', async () => {
    let started = 0
    const seen: number[] = []
    const results = await startTogether(
      Array.from({ length: 5 }, (_, i) => async () => {
        started++
        seen.push(started)
        if (i === 3) throw new Error('task 3')
        return i
      }),
    )
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : 'x'))).toEqual([0, 1, 2, 'x', 4])
    expect(seen).toEqual([1, 2, 3, 4, 5])
    expect(await startTogether([])).toEqual([])
  })
})

describe('createCountingStore', () => {
  it('counts calls per method and keeps their order, passing results through', async () => {
    const inner = {
      calls: 0,
      async a(x: number) {
        this.calls++
        return x * 2
      },
      async b() {
        return 'b'
      },
    }
    const counting = createCountingStore(inner)
    expect(await counting.store.a(2)).toBe(4)
    await counting.store.b()
    await counting.store.a(1)
    expect(counting.counts()).toEqual({ a: 2, b: 1 })
    expect(counting.count('a')).toBe(2)
    expect(counting.count('zzz')).toBe(0)
    expect(counting.sequence()).toEqual(['a', 'b', 'a'])
    expect(inner.calls).toBe(2)
    counting.reset()
    expect(counting.counts()).toEqual({})
  })
})

describe('createSlowStore', () => {
  it('defers the inner call past the current turn of the event loop and passes results and errors', async () => {
    const log: string[] = []
    const inner = {
      async get(x: number) {
        log.push(`get ${x}`)
        return x
      },
      async fail(): Promise<never> {
        throw new Error('inner failed')
      },
    }
    const slow = createSlowStore(inner, { ticks: 2 })
    const pending = slow.get(1)
    await Promise.resolve()
    log.push('caller continued')
    expect(await pending).toBe(1)
    expect(log).toEqual(['caller continued', 'get 1'])
    await expect(slow.fail()).rejects.toThrow('inner failed')
    expect(() => createSlowStore(inner, { ticks: -1 })).toThrow(RangeError)
  })
})
