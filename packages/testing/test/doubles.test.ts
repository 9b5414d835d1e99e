import { describe, expect, it, vi } from 'vitest'
import {
  createCaptureLogger,
  createEventRecorder,
  createInlineQueue,
  createManualClock,
  createRecordingMailer,
  createSeededRandom,
} from '../src/index.ts'

describe('createManualClock', () => {
  it('starts at the default or given time and moves only when told', () => {
    expect(createManualClock().now()).toBe(1_700_000_000_000)
    const clock = createManualClock(1_000)
    expect(clock.now()).toBe(1_000)
    expect(clock.advance(500)).toBe(1_500)
    expect(clock.now()).toBe(1_500)
    expect(clock.set(10)).toBe(10)
    expect(clock.advance(-5)).toBe(5)
  })

  it('refuses non-integer times', () => {
    const clock = createManualClock()
    expect(() => clock.advance(0.5)).toThrow(TypeError)
    expect(() => clock.set(Number.NaN)).toThrow(TypeError)
    expect(() => createManualClock(Number.POSITIVE_INFINITY)).toThrow(TypeError)
    expect(clock.now()).toBe(1_700_000_000_000)
  })
})

describe('createSeededRandom', () => {
  const bytes = (seed: number | string, n: number) => {
    const out = new Uint8Array(n)
    createSeededRandom(seed).read(out)
    return out
  }

  it('is deterministic per seed and differs across seeds', () => {
    expect(bytes(42, 64)).toEqual(bytes(42, 64))
    expect(bytes('fixture', 64)).toEqual(bytes('fixture', 64))
    expect(bytes(42, 64)).not.toEqual(bytes(43, 64))
    expect(bytes('a', 64)).not.toEqual(bytes('b', 64))
  })

  it('produces a stable stream (a change here breaks every recorded fixture)', () => {
    expect(Buffer.from(bytes(1, 16)).toString('hex')).toMatchInlineSnapshot(
      `"cf64f76cc51359cac658e6b0f0382c86"`,
    )
  })

  it('continues the stream across reads and fills odd lengths', () => {
    const rng = createSeededRandom(7)
    const a = new Uint8Array(5)
    const b = new Uint8Array(3)
    rng.read(a)
    rng.read(b)
    expect(a).toEqual(bytes(7, 5))
    expect(b).not.toEqual(bytes(7, 3))
  })

  it('looks uniform enough for fixtures and is marked insecure', () => {
    const sample = bytes(123, 65_536)
    const counts = new Array(256).fill(0)
    for (const b of sample) counts[b]++
    expect(Math.min(...counts)).toBeGreaterThan(180)
    expect(Math.max(...counts)).toBeLessThan(340)
    expect(createSeededRandom(1).insecure).toBe(true)
    expect(() => createSeededRandom(1.5)).toThrow(TypeError)
  })
})

describe('createRecordingMailer', () => {
  const message = { to: 'a@example.test', subject: 'Codes', text: 'hello' }

  it('records copies of sent messages', async () => {
    const mailer = createRecordingMailer()
    const m = {
      ...message,
      attachments: [{ filename: 'c.txt', contentType: 'text/plain', content: new Uint8Array([1]) }],
    }
    await mailer.send(m)
    m.subject = 'changed'
    m.attachments[0]!.content[0] = 9
    expect(mailer.messages).toHaveLength(1)
    expect(mailer.last()).toMatchObject({ subject: 'Codes', attachments: [{ content: new Uint8Array([1]) }] })
  })

  it('fails the next N sends, then recovers', async () => {
    const mailer = createRecordingMailer()
    const boom = new Error('smtp down')
    mailer.failNext(2, boom)
    await expect(mailer.send(message)).rejects.toBe(boom)
    await expect(mailer.send(message)).rejects.toBe(boom)
    await expect(mailer.send(message)).resolves.toBeUndefined()
    expect(mailer.failed).toHaveLength(2)
    expect(mailer.messages).toHaveLength(1)
    mailer.failNext()
    await expect(mailer.send(message)).rejects.toThrow('mail transport failed')
    mailer.clear()
    expect(mailer.messages).toHaveLength(0)
    expect(mailer.failed).toHaveLength(0)
  })
})

describe('createInlineQueue', () => {
  it('resolves enqueue first, then runs the handler with a copy of the payload', async () => {
    const queue = createInlineQueue()
    const order: string[] = []
    queue.handle('notify', async (payload) => {
      order.push(`handler:${payload.userId}`)
    })
    const payload = { userId: 'u1' }
    await queue.enqueue({ name: 'notify', payload })
    order.push('enqueued')
    payload.userId = 'mutated'
    await queue.idle()
    expect(order).toEqual(['enqueued', 'handler:u1'])
    expect(queue.jobs).toEqual([{ name: 'notify', payload: { userId: 'u1' } }])
    expect(queue.runs).toEqual([{ job: { name: 'notify', payload: { userId: 'u1' } }, ok: true }])
  })

  it('records handler failures without rejecting enqueue', async () => {
    const queue = createInlineQueue()
    const boom = new Error('handler failed')
    queue.handle('purge', async () => {
      throw boom
    })
    await expect(queue.enqueue({ name: 'purge', payload: {} })).resolves.toBeUndefined()
    await queue.idle()
    expect(queue.runs).toEqual([{ job: { name: 'purge', payload: {} }, ok: false, error: boom }])
  })

  it('keeps jobs without a handler pending until one is registered, and idle waits for chained jobs', async () => {
    const queue = createInlineQueue()
    await queue.enqueue({ name: 'first', payload: { n: 1 } })
    expect(queue.pending).toHaveLength(1)
    const seen: string[] = []
    queue.handle('second', async () => {
      await new Promise((r) => setTimeout(r, 5))
      seen.push('second')
    })
    queue.handle('first', async () => {
      seen.push('first')
      await queue.enqueue({ name: 'second', payload: {} })
    })
    expect(queue.pending).toHaveLength(0)
    await queue.idle()
    expect(seen).toEqual(['first', 'second'])
  })
})

describe('createCaptureLogger', () => {
  it('records lines with fields and serialises them for scanning', () => {
    const logger = createCaptureLogger()
    logger.info('redeem failed', { userId: 'u1', attempt: 2 })
    logger.error('store down')
    expect(logger.lines).toEqual([
      { level: 'info', message: 'redeem failed', fields: { userId: 'u1', attempt: 2 } },
      { level: 'error', message: 'store down', fields: undefined },
    ])
    expect(logger.text()).toContain('"attempt":2')
    expect(logger.text().split('\n')).toHaveLength(2)
  })

  it('captures console and the standard streams until restored', () => {
    const logger = createCaptureLogger()
    const originalLog = console.log
    const originalWrite = process.stderr.write
    const restore = logger.captureConsole()
    try {
      console.log('code %s', 'ABCDE')
      console.warn({ secret: 'XYZ' })
      process.stderr.write('raw line\n')
    } finally {
      restore()
    }
    expect(console.log).toBe(originalLog)
    expect(process.stderr.write).toBe(originalWrite)
    expect(logger.text()).toContain('code ABCDE')
    expect(logger.text()).toContain('XYZ')
    expect(logger.lines.at(-1)).toEqual({ level: 'stderr', message: 'raw line\n', fields: undefined })
  })

  it('passes through when asked', () => {
    const logger = createCaptureLogger()
    const spy = vi.spyOn(console, 'info').mockImplementation(() => {})
    const restore = logger.captureConsole({ passThrough: true })
    console.info('visible')
    restore()
    expect(spy).toHaveBeenCalledWith('visible')
    spy.mockRestore()
    expect(logger.lines).toHaveLength(1)
  })
})

describe('createEventRecorder', () => {
  it('records copies of events, by name, and can fail emits', async () => {
    const events = createEventRecorder()
    const event = { name: 'used' as const, at: 1, userId: 'u1', batchId: 'b1', data: { remaining: 4 } }
    await events.emit(event)
    event.data.remaining = 0
    events.failNext()
    await expect(events.emit({ name: 'low', at: 2, userId: 'u1', batchId: 'b1' })).rejects.toThrow()
    await events.emit({ name: 'used', at: 3, userId: 'u1', batchId: 'b1' })
    expect(events.names()).toEqual(['used', 'low', 'used'])
    expect(events.ofName('used')[0]!.data).toEqual({ remaining: 4 })
    events.clear()
    expect(events.events).toHaveLength(0)
  })
})
