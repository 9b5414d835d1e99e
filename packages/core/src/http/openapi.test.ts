import { Validator } from '@seriousme/openapi-schema-validator'
import { describe, expect, it } from 'vitest'
import type { ResolvedConfig } from '../config.ts'
import { ERROR_HTTP_STATUS } from '../errors.ts'
import type { RecoveryCodes } from '../service/create.ts'
import { createHttpHandler } from './handler.ts'
import type { HttpHooks } from './types.ts'
import { maskEmail, readLimitedBody, retryAfterSeconds, safeFilename } from './wire.ts'

const service = (loginMode: string, notifications: unknown = null) =>
  ({
    config: {
      maxBatchSize: 20,
      loginMode,
      logger: null,
      email: { successMessage: 'ok' },
      notifications,
    } as unknown as ResolvedConfig,
  }) as RecoveryCodes
const hooks = {} as HttpHooks

type Doc = {
  openapi: string
  paths: Record<string, Record<string, { requestBody?: unknown; responses: Record<string, unknown> }>>
  components: {
    schemas: Record<
      string,
      { properties?: Record<string, Record<string, unknown>>; additionalProperties?: unknown }
    >
  }
}

describe('OpenAPI document', () => {
  for (const mode of ['second-factor', 'identifier-and-code']) {
    it(`validates as OpenAPI 3.1 and lists exactly the routes served (${mode})`, async () => {
      const handler = createHttpHandler(service(mode), hooks, { mountPath: '/recovery' })
      const validator = new Validator()
      const result = await validator.validate(JSON.parse(JSON.stringify(handler.openapi)))
      expect(result.errors ?? []).toEqual([])
      expect(result.valid).toBe(true)
      expect(validator.version).toBe('3.1')
      const doc = handler.openapi as unknown as Doc
      const documented = Object.entries(doc.paths).flatMap(([p, item]) =>
        Object.keys(item).map((m) => `${m.toUpperCase()} ${p}`),
      )
      expect(documented.sort()).toEqual(handler.routes.map((r) => `${r.method} ${r.path}`).sort())
      expect(documented.includes('POST /login')).toBe(mode === 'identifier-and-code')
    })
  }

  it('documents /confirm always, and GET and POST /repudiate only with notifications (validating 3.1)', async () => {
    const off = createHttpHandler(service('second-factor'), hooks).openapi as unknown as Doc
    expect(Object.keys(off.paths)).toContain('/confirm')
    expect(Object.keys(off.paths)).not.toContain('/repudiate')
    expect(off.components.schemas.GenerateResponse!.properties!.pending).toMatchObject({ type: 'boolean' })
    expect(Object.keys(off.components.schemas.RecoveryLoginResponse!.properties!)).toEqual(
      expect.arrayContaining(['method', 'mustBindFactor', 'replacement']),
    )
    const handler = createHttpHandler(service('second-factor', { contact: 'x' }), hooks)
    const result = await new Validator().validate(JSON.parse(JSON.stringify(handler.openapi)))
    expect(result.errors ?? []).toEqual([])
    const doc = handler.openapi as unknown as Doc
    const rep = doc.paths['/repudiate']!
    expect(Object.keys(rep).sort()).toEqual(['get', 'post'])
    expect(JSON.stringify(rep.get)).toContain('"name":"token"')
    expect(Object.keys(rep.get!.responses).sort()).toEqual(['200', '400', '409', '500', '503'])
    expect(rep.post!.requestBody).toBeDefined()
    expect(Object.keys(doc.paths['/confirm']!.post!.responses)).toEqual(
      expect.arrayContaining(['200', '401', '409', '410', '415']),
    )
  })

  it('is generated from the validation schemas (bounds, strictness, config-dependent limits)', () => {
    const doc = createHttpHandler(service('second-factor'), hooks).openapi as unknown as Doc
    const { schemas } = doc.components
    expect(schemas.CodeRequest!.properties!.code).toMatchObject({
      type: 'string',
      minLength: 1,
      maxLength: 64,
    })
    expect(schemas.CodeRequest!.additionalProperties).toBe(false)
    expect(schemas.GenerateRequest!.properties!.count).toMatchObject({
      type: 'integer',
      minimum: 1,
      maximum: 20,
    })
    expect(schemas.DownloadRequest!.properties!.format).toMatchObject({ enum: ['txt', 'csv', 'pdf'] })
    expect(doc.paths['/generate']!.post!.responses['429']).toBeDefined()
    expect(doc.paths['/generate']!.post!.responses['415']).toBeDefined()
    expect(doc.paths['/redeem']!.post!.responses['401']).toBeDefined()
  })

  it('the reveal routes document their channels: 409 ALREADY_DONE per channel, 410 REVEAL_UNAVAILABLE', () => {
    const doc = createHttpHandler(service('second-factor'), hooks).openapi as unknown as {
      paths: Record<
        string,
        { post: { description?: string; responses: Record<string, { description: string }> } }
      >
    }
    for (const path of ['/codes/view', '/download', '/email']) {
      const op = doc.paths[path]!.post
      expect(op.description, path).toMatch(/once, in any order/)
      expect(op.description, path).toMatch(/409 `ALREADY_DONE`: this channel was used already/)
      expect(op.description, path).toMatch(/410 `REVEAL_UNAVAILABLE`: the slot is gone/)
      expect(op.responses['409']!.description, path).toContain('ALREADY_DONE')
      expect(op.responses['410']!.description, path).toBe('REVEAL_UNAVAILABLE')
    }
    // `pdf` without a renderer.
    expect(doc.paths['/download']!.post.responses['501']!.description).toBe('FEATURE_DISABLED')
  })

  it('documents only statuses from ERROR_HTTP_STATUS (plus the success status)', () => {
    const doc = createHttpHandler(service('identifier-and-code'), hooks).openapi as unknown as Doc
    const allowed = new Set(Object.values(ERROR_HTTP_STATUS).map(String))
    for (const item of Object.values(doc.paths)) {
      for (const op of Object.values(item)) {
        const statuses = Object.keys(op.responses).filter((s) => !['200', '201'].includes(s))
        for (const s of statuses) expect(allowed.has(s)).toBe(true)
      }
    }
  })
})

describe('wire helpers', () => {
  const stream = (chunks: Uint8Array[]) =>
    new ReadableStream<Uint8Array>({
      start(controller) {
        for (const c of chunks) controller.enqueue(c)
        controller.close()
      },
    })

  it('readLimitedBody: reads within the limit, refuses over it (declared or streamed)', async () => {
    expect(await readLimitedBody(stream([new Uint8Array([1, 2]), new Uint8Array([3])]), 3)).toEqual({
      ok: true,
      bytes: new Uint8Array([1, 2, 3]),
    })
    expect(await readLimitedBody(stream([new Uint8Array(4)]), 3)).toEqual({ ok: false, reason: 'too-large' })
    expect(await readLimitedBody(stream([]), 3, '999')).toEqual({ ok: false, reason: 'too-large' })
    expect(await readLimitedBody(stream([]), 3, 'abc')).toEqual({ ok: false, reason: 'unreadable' })
    expect(await readLimitedBody(null, 3)).toEqual({ ok: true, bytes: new Uint8Array(0) })
  })

  it('safeFilename, maskEmail, retryAfterSeconds', () => {
    expect(safeFilename('recovery_codes.pdf')).toBe('recovery_codes.pdf')
    expect(safeFilename('../a"b\r\n.txt')).toBe('_a_b__.txt')
    expect(safeFilename('')).toBe('recovery-codes')
    expect(maskEmail('ada@example.com')).toBe('a***@example.com')
    expect(maskEmail('nobody')).toBe('***')
    expect(retryAfterSeconds(1)).toBe('1')
    expect(retryAfterSeconds(1000)).toBe('1')
    expect(retryAfterSeconds(1001)).toBe('2')
    expect(retryAfterSeconds(0)).toBe('1')
  })
})
