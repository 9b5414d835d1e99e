/**
 * `runHttpAdapterConformance`: one suite every HTTP adapter runs, so every framework serves the
 * same API byte for byte (statuses, bodies, security headers), with the same security properties.
 * The groups of tests live in `http-conformance/`.
 */
import type {
  HttpContext,
  HttpHandlerOptions,
  HttpHooks,
  RecoveryCodeStore,
  RecoveryCodes,
} from '@recovery-codes/core'
import { afterEach, describe } from 'vitest'
import { confirmTests } from './http-conformance/confirm.ts'
import { harnessSetup } from './http-conformance/harness.ts'
import { hostileInputTests } from './http-conformance/hostile-input.ts'
import { loginTests } from './http-conformance/login.ts'
import { onceOnlyTests } from './http-conformance/once-only.ts'
import { openApiTests } from './http-conformance/openapi.ts'
import { routeTests } from './http-conformance/routes.ts'
import { wireTests } from './http-conformance/wire.ts'

/** A mounted adapter: requests go to paths relative to the mount point (e.g. `/status`). */
export interface MountedAdapter {
  fetch(path: string, init?: RequestInit): Promise<Response>
  close(): Promise<void> | void
  /** The public path it is mounted at (`/recovery`): the OpenAPI `servers` entry must name it. */
  mountPath: string
}

/** Options of {@link runHttpAdapterConformance}. */
export interface HttpAdapterConformanceOptions {
  /** Shown in the describe block. */
  name: string
  /** Mounts the adapter for `rc` and `hooks` (with `options`) under some path. */
  mount: (
    rc: RecoveryCodes,
    hooks: HttpHooks<HttpContext>,
    options: HttpHandlerOptions,
  ) => Promise<MountedAdapter> | MountedAdapter
  /** A fresh store for one test (e.g. `memoryStore`). */
  store: () => Promise<RecoveryCodeStore> | RecoveryCodeStore
}

/**
 * Registers the HTTP adapter conformance suite: every route's success and error answers, wire
 * rules (415, 413, CSRF, security headers), re-authentication, enumeration-safe redeems, session
 * regeneration, hostile inputs, once-only races, the confirm step and the OpenAPI document.
 *
 * @example
 * ```ts
 * runHttpAdapterConformance({ name: 'hono', store: memoryStore, mount: (rc, hooks, o) => honoMount(rc, hooks, o) })
 * ```
 */
export function runHttpAdapterConformance(options: HttpAdapterConformanceOptions): void {
  describe(`HTTP adapter conformance: ${options.name}`, () => {
    const open: MountedAdapter[] = []
    afterEach(async () => {
      await Promise.all(open.splice(0).map((a) => a.close()))
    })
    const setup = harnessSetup(options, open)
    routeTests(setup)
    loginTests(setup)
    wireTests(setup)
    hostileInputTests(setup)
    onceOnlyTests(setup)
    confirmTests(setup)
    openApiTests(setup)
  })
}
