/**
 * HTTP adapter conformance, OpenAPI: the adapter serves core's OpenAPI 3.1 document, with the mount
 * path as its server and exactly the routes it serves.
 */
import { createHttpHandler } from '@recovery-codes/core'
import { expect, it } from 'vitest'
import type { HarnessSetup } from './harness.ts'

/** Registers the OpenAPI test inside the running `describe` block. */
export function openApiTests(setup: HarnessSetup): void {
  it('serves the OpenAPI 3.1 document generated in core, listing exactly the routes served', async () => {
    for (const overrides of [
      {},
      { loginMode: 'identifier-and-code' as const, resolveUserId: async () => null },
    ]) {
      const h = await setup(overrides)
      const res = await h.get('/openapi.json')
      expect(res.status).toBe(200)
      expect(res.headers.get('content-type')).toMatch(/^application\/json/)
      const doc = (await res.json()) as { openapi: string; paths: Record<string, Record<string, unknown>> }
      const handler = createHttpHandler(h.rc, h.hooks, { mountPath: h.mountPath })
      expect(doc).toEqual(JSON.parse(JSON.stringify(handler.openapi)))
      // Generated clients resolve the paths against `servers`: it must be the mount path.
      expect((doc as { servers?: { url: string }[] }).servers?.[0]?.url).toBe(h.mountPath)
      expect(doc.openapi).toMatch(/^3\.1\./)
      const documented = Object.entries(doc.paths)
        .flatMap(([path, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${path}`))
        .sort()
      const served = handler.routes.map((r) => `${r.method} ${r.path}`).sort()
      expect(documented).toEqual(served)
      // Each documented route is really served by this adapter (no router 404/405 for it).
      for (const route of handler.routes) {
        const r = route.method === 'GET' ? await h.get(route.path) : await h.post(route.path, {})
        expect([404, 405], `${route.method} ${route.path}`).not.toContain(r.status)
      }
    }
  })
}
