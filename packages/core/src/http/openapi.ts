/**
 * Builds the OpenAPI 3.1 document from the route table and the same zod schemas the handler
 * validates with (`z.toJSONSchema`, JSON Schema 2020-12, which OpenAPI 3.1 uses as is).
 */
import { z } from 'zod'
import { ERROR_HTTP_STATUS, type RecoveryCodesErrorCode } from '../errors.ts'
import type { RouteSpec } from './routes.ts'
import { errorResponse, type RequestSchemas, responseSchemas } from './schemas.ts'

const REQUEST_NAMES: Partial<Record<keyof RequestSchemas, string>> = {
  generate: 'GenerateRequest',
  code: 'CodeRequest',
  login: 'LoginRequest',
  download: 'DownloadRequest',
  empty: 'EmptyBody',
  confirm: 'ConfirmRequest',
  repudiate: 'RepudiateRequest',
}

const RESPONSE_NAMES: Record<keyof typeof responseSchemas, string> = {
  generate: 'GenerateResponse',
  status: 'StatusResponse',
  history: 'HistoryResponse',
  view: 'ViewCodesResponse',
  email: 'EmailResponse',
  batch: 'BatchResponse',
  verify: 'VerifySetupResponse',
  login: 'RecoveryLoginResponse',
  confirm: 'ConfirmResponse',
  repudiation: 'RepudiationLinkResponse',
  repudiated: 'RepudiateResponse',
  openapi: 'OpenApiDocument',
}

const POST_ERRORS: readonly RecoveryCodesErrorCode[] = [
  'CSRF_REJECTED',
  'UNSUPPORTED_MEDIA_TYPE',
  'PAYLOAD_TOO_LARGE',
]
const ALWAYS_ERRORS: readonly RecoveryCodesErrorCode[] = ['STORE_UNAVAILABLE', 'INTERNAL']

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` })

function toSchema(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, {
    target: 'draft-2020-12',
    io,
    unrepresentable: 'any',
  }) as Record<string, unknown>
  return rest
}

/** The OpenAPI 3.1 document of a handler's routes. */
export function buildOpenApiDocument(
  routes: readonly RouteSpec[],
  schemas: RequestSchemas,
  info: { title: string; mountPath?: string },
): Record<string, unknown> {
  const components: Record<string, unknown> = { Error: toSchema(errorResponse, 'output') }
  // Only the request schemas of routes served (no `LoginRequest` when the login route is off).
  const used = new Set(routes.flatMap((r) => [r.body, r.query]))
  for (const [key, name] of Object.entries(REQUEST_NAMES)) {
    if (used.has(key as keyof RequestSchemas))
      components[name] = toSchema(schemas[key as keyof RequestSchemas], 'input')
  }
  for (const [key, name] of Object.entries(RESPONSE_NAMES)) {
    components[name] = toSchema(responseSchemas[key as keyof typeof responseSchemas], 'output')
  }

  const paths: Record<string, Record<string, unknown>> = {}
  for (const route of routes) {
    const operation: Record<string, unknown> = {
      operationId: route.operationId,
      summary: route.summary,
      ...(route.description ? { description: route.description } : {}),
      ...(route.auth === 'none' ? { security: [] } : {}),
    }
    if (route.query) {
      const query = toSchema(schemas[route.query], 'input') as {
        properties?: Record<string, Record<string, unknown>>
      }
      const parameters = Object.entries(query.properties ?? {}).map(([name, schema]) => {
        const { description, ...rest } = schema
        return { name, in: 'query', required: false, ...(description ? { description } : {}), schema: rest }
      })
      if (parameters.length > 0) operation.parameters = parameters
    }
    if (route.body) {
      const name = REQUEST_NAMES[route.body]!
      operation.requestBody = { required: true, content: { 'application/json': { schema: ref(name) } } }
    }
    const responses: Record<string, unknown> = {}
    const { success } = route
    responses[String(success.status)] =
      success.body === 'binary'
        ? {
            description: success.description,
            headers: {
              'Content-Disposition': { schema: { type: 'string' }, description: 'attachment; filename="…"' },
            },
            content: {
              'text/plain': { schema: { type: 'string' } },
              'text/csv': { schema: { type: 'string' } },
              'application/pdf': { schema: { type: 'string', contentMediaType: 'application/pdf' } },
            },
          }
        : {
            description: success.description,
            content: { 'application/json': { schema: ref(RESPONSE_NAMES[success.body]) } },
          }
    const codes = [...route.errors, ...(route.method === 'POST' ? POST_ERRORS : []), ...ALWAYS_ERRORS]
    const byStatus = new Map<number, RecoveryCodesErrorCode[]>()
    for (const code of codes) {
      const status = ERROR_HTTP_STATUS[code]
      const list = byStatus.get(status) ?? []
      if (!list.includes(code)) list.push(code)
      byStatus.set(status, list)
    }
    for (const [status, list] of [...byStatus].sort((a, b) => a[0] - b[0])) {
      responses[String(status)] = {
        description: list.join(', '),
        ...(status === 429
          ? { headers: { 'Retry-After': { schema: { type: 'integer' }, description: 'Seconds to wait.' } } }
          : {}),
        content: { 'application/json': { schema: ref('Error') } },
      }
    }
    operation.responses = responses
    const item = paths[route.path] ?? {}
    item[route.method.toLowerCase()] = operation
    paths[route.path] = item
  }

  return {
    openapi: '3.1.0',
    info: {
      title: info.title,
      version: '1',
      description:
        'Recovery codes over JSON. Every POST needs `Content-Type: application/json` and passes a same-origin check; ' +
        'authentication is the host session (cookie). Codes never travel in URLs. Every failed redeem, whatever the ' +
        'reason, is the same 401 INVALID_CODE.',
    },
    servers: [{ url: info.mountPath || '/', description: 'Where the recovery-codes API is mounted' }],
    security: [{ session: [] }],
    paths,
    components: {
      schemas: components,
      securitySchemes: {
        session: {
          type: 'apiKey',
          in: 'cookie',
          name: 'session',
          description: 'The host application session cookie.',
        },
      },
    },
  }
}
