/**
 * The zod schemas of the HTTP API: request bodies and queries are validated with them, and the
 * OpenAPI document is generated from the very same objects, so the two cannot drift.
 */
import { z } from 'zod'
import { MAX_IDENTIFIER_LENGTH } from '../domain/identifier.ts'
import { ERROR_HTTP_STATUS } from '../errors.ts'
import { NOTIFICATION_KINDS } from '../service/repudiation-token.ts'

/** Longest `code` accepted before any Unicode work (R-IN-1). */
export const HTTP_MAX_CODE_LENGTH = 64

// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting NUL and control characters is the point
const CODE_CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/
// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting NUL and control characters is the point
const IDENTIFIER_CONTROL = /[\u0000-\u001F\u007F-\u009F]/

const code = z
  .string()
  .min(1)
  .max(HTTP_MAX_CODE_LENGTH)
  .refine((s) => !CODE_CONTROL.test(s), 'must not contain control characters')
  .meta({
    description: 'A recovery code as the user typed it; separators and case are ignored.',
    example: 'ABCDE-FGHJK-MNPQR-STVWX-YZ012',
  })

const identifier = z
  .string()
  .min(1)
  .max(MAX_IDENTIFIER_LENGTH)
  .refine((s) => !IDENTIFIER_CONTROL.test(s), 'must not contain control characters')
  .meta({ description: 'The login identifier (usually the email address).', example: 'ada@example.com' })

/** `{}`: routes that take no input still require a JSON object body, so no simple request reaches them. */
export const emptyBody = z.strictObject({}).meta({ description: 'An empty JSON object.' })

/** Longest "This wasn't me" link token accepted (the service's own bound). */
export const HTTP_MAX_REPUDIATION_TOKEN_LENGTH = 4096

const repudiationToken = z
  .string()
  .min(1)
  .max(HTTP_MAX_REPUDIATION_TOKEN_LENGTH)
  .regex(/^[A-Za-z0-9._-]+$/)
  .meta({
    description: 'The token of a "This wasn\'t me" link (the `token` query parameter of the email link).',
  })

const revealToken = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[A-Za-z0-9_-]+$/)
  .meta({
    description:
      'The reveal token, for API clients that keep it themselves; omitted = the one kept in the session by `/generate`.',
  })

/** Request schemas that depend on the service configuration. */
export function requestSchemas(limits: { maxBatchSize: number }) {
  return {
    generate: z.strictObject({
      count: z
        .int()
        .min(1)
        .max(limits.maxBatchSize)
        .optional()
        .meta({ description: 'Codes in the batch; default from the configuration.' }),
      expiresInDays: z
        .int()
        .min(1)
        .max(3650)
        .nullable()
        .optional()
        .meta({ description: 'Days until the batch expires; `null` or omitted = the configured default.' }),
    }),
    code: z.strictObject({ code }),
    login: z.strictObject({ identifier, code }),
    download: z.strictObject({
      format: z
        .enum(['txt', 'csv', 'pdf'])
        .optional()
        .meta({ description: 'File format; default from the configuration.' }),
    }),
    empty: emptyBody,
    confirm: z.strictObject({ reveal: revealToken.optional() }),
    repudiate: z.strictObject({ token: repudiationToken }),
    repudiateQuery: z.strictObject({ token: repudiationToken }),
    historyQuery: z.strictObject({
      page: z
        .string()
        .regex(/^[1-9][0-9]{0,5}$/)
        .optional()
        .meta({ description: '1-based page number.', example: '1' }),
    }),
    noQuery: z.strictObject({}),
  }
}

/** The request schemas of one handler. */
export type RequestSchemas = ReturnType<typeof requestSchemas>

const errorCode = z.enum(
  Object.keys(ERROR_HTTP_STATUS) as [keyof typeof ERROR_HTTP_STATUS, ...(keyof typeof ERROR_HTTP_STATUS)[]],
)

/** The error body of every failure. */
export const errorResponse = z.strictObject({
  error: z.strictObject({
    code: errorCode,
    message: z.string(),
    issues: z.array(z.strictObject({ path: z.string(), message: z.string() })).optional(),
    correlationId: z
      .string()
      .optional()
      .meta({ description: 'Quote it to support; present on unexpected errors.' }),
  }),
})

const epochMs = z.int().meta({ description: 'UTC epoch milliseconds.' })

const batchView = z.strictObject({
  id: z.string(),
  status: z.enum(['active', 'superseded', 'disabled', 'deleted', 'expired']),
  createdAt: epochMs,
  expiresAt: epochMs.nullable(),
  endedAt: epochMs.nullable(),
  issued: z.int(),
  unused: z.int(),
  used: z.int(),
  invalidated: z.int(),
  deleted: z.int(),
  viewed: z.boolean(),
  downloaded: z.boolean(),
  emailed: z.boolean(),
  verified: z.boolean(),
  lastUsedAt: epochMs.nullable(),
})

/** Success bodies, for the OpenAPI document. */
export const responseSchemas = {
  generate: z
    .strictObject({
      batchId: z.string(),
      count: z.int(),
      createdAt: epochMs,
      expiresAt: epochMs.nullable(),
      revealExpiresAt: epochMs.meta({
        description:
          'View, download (each offered format) and email the codes, once each, before this instant.',
      }),
      pending: z.boolean().meta({
        description:
          "`true` (`activation: 'confirm'`, the default): the batch is not active yet and the current one keeps working until POST /confirm, before `revealExpiresAt`. `false`: the batch is active already.",
      }),
    })
    .meta({
      description:
        'The codes are not in this response: fetch them with POST /codes/view, POST /download or POST /email (once each).',
    }),
  status: z.strictObject({
    active: batchView.nullable(),
    remaining: z.int(),
    lowCodes: z.boolean(),
    lowCodesThreshold: z.int(),
    shouldRegenerate: z.boolean(),
    generateRetryAfterMs: z.int(),
  }),
  history: z.strictObject({
    items: z.array(batchView),
    page: z.int(),
    perPage: z.int(),
    total: z.int(),
    totalPages: z.int(),
  }),
  view: z
    .strictObject({ batchId: z.string(), codes: z.array(z.string()) })
    .meta({ description: 'The plaintext codes, shown once per reveal slot.' }),
  email: z.strictObject({
    sent: z.literal(true),
    sentTo: z.string().meta({ description: 'The masked address.' }),
    message: z.string().meta({ description: 'The configured success message.' }),
  }),
  batch: z.strictObject({ batchId: z.string() }),
  verify: z.strictObject({ batchId: z.string(), verified: z.literal(true) }),
  login: z.strictObject({
    remaining: z.int(),
    lowCodes: z.boolean(),
    shouldRegenerate: z.boolean(),
    method: z.literal('recovery_code').meta({ description: 'How the user authenticated.' }),
    mustBindFactor: z.boolean().meta({
      description: 'The host requires the user to bind a new authenticator before anything else.',
    }),
    replacement: z.strictObject({ revealExpiresAt: epochMs }).optional().meta({
      description:
        '`replaceOnUse`: a replacement code waits in a reveal slot kept in the (new) session; POST /codes/view shows it once, before `revealExpiresAt`. The code itself is never in this response.',
    }),
  }),
  confirm: z
    .strictObject({
      batchId: z.string().meta({ description: 'The batch that is now active.' }),
      supersededBatchId: z
        .string()
        .nullable()
        .meta({ description: 'The batch it replaced (its codes no longer work), or `null`.' }),
    })
    .meta({ description: 'The new batch is active.' }),
  repudiation: z.strictObject({
    kind: z.enum(NOTIFICATION_KINDS).meta({ description: 'What the notification was about.' }),
    expiresAt: epochMs.meta({ description: 'Until when the link can be used.' }),
  }),
  repudiated: z.strictObject({
    revoked: z.literal(true),
    batchDisabled: z
      .boolean()
      .meta({ description: 'Whether an active batch was disabled (`false`: there was none).' }),
    contact: z.string().nullable().meta({ description: 'What to do next and whom to contact.' }),
  }),
  openapi: z.record(z.string(), z.unknown()).meta({ description: 'This OpenAPI 3.1 document.' }),
}
