/**
 * The route table: one entry per route, shared by the dispatcher and the OpenAPI generator.
 */
import type { RecoveryCodesErrorCode } from '../errors.ts'
import type { RequestSchemas, responseSchemas } from './schemas.ts'
import type { HttpRouteInfo } from './types.ts'

/** A route with what the dispatcher and the OpenAPI document need. */
export interface RouteSpec extends HttpRouteInfo {
  /** Request body schema (POST routes; JSON only). */
  body?: keyof RequestSchemas
  /** Query schema (GET routes). */
  query?: keyof RequestSchemas
  /** Longer text for the OpenAPI operation (CommonMark), when the summary is not enough. */
  description?: string
  /** Success status and body. `binary` = a file download. */
  success: { status: 200 | 201; body: keyof typeof responseSchemas | 'binary'; description: string }
  /** Error codes this route can answer with besides the common ones. */
  errors: readonly RecoveryCodesErrorCode[]
}

const CODE_ERRORS = ['INVALID_INPUT', 'UNAUTHENTICATED', 'NOT_FOUND', 'RATE_LIMITED'] as const

/** What the three reveal routes share, for their OpenAPI descriptions. */
const REVEAL_CHANNELS =
  'After `/generate` the codes wait in a reveal slot whose channels are the view (`/codes/view`), each ' +
  'offered download format (`/download`: `txt`, `csv`, and `pdf` when configured) and the email (`/email`, ' +
  'when enabled). Each channel works once, in any order, until `revealExpiresAt`. ' +
  '409 `ALREADY_DONE`: this channel was used already (the others stay open). ' +
  '410 `REVEAL_UNAVAILABLE`: the slot is gone (expired, logged out, replaced by a newer batch, the batch ' +
  'deleted, or every channel used).'

/** Every route of the API. `/login` is served only when `loginMode` is `identifier-and-code`. */
export const ROUTE_SPECS: readonly RouteSpec[] = Object.freeze([
  {
    method: 'POST',
    path: '/generate',
    operationId: 'generate',
    summary:
      'Generate a batch of recovery codes (regenerate when one exists: needs a fresh re-authentication).',
    auth: 'user',
    fresh: 'when-batch-exists',
    body: 'generate',
    success: {
      status: 201,
      body: 'generate',
      description:
        'Generated; view, download (each offered format) and email the codes next, once each, before `revealExpiresAt`.',
    },
    errors: ['INVALID_INPUT', 'UNAUTHENTICATED', 'REAUTH_REQUIRED', 'COOLDOWN_ACTIVE'],
  },
  {
    method: 'POST',
    path: '/confirm',
    operationId: 'confirm',
    summary:
      "Activate the batch just generated, once the user has saved its codes (`activation: 'confirm'`).",
    description:
      "Under `activation: 'confirm'` (the default) a generated batch waits: the current batch keeps working until " +
      'this call, which activates the new one and retires the old one atomically. The reveal token is the one ' +
      '`/generate` kept in the session (or `reveal` in the body). The view, download and email channels keep ' +
      'working after it until `revealExpiresAt`, once each. ' +
      "409 `ALREADY_DONE`: confirmed already, or the batch was never pending (`activation: 'immediate'`). " +
      '410 `REVEAL_UNAVAILABLE`: the slot is gone (expired, logged out, replaced by a newer batch): that batch ' +
      'never activates; generate a new one.',
    auth: 'user',
    fresh: 'never',
    body: 'confirm',
    success: {
      status: 200,
      body: 'confirm',
      description: 'The new batch is active; the old one no longer works.',
    },
    errors: ['INVALID_INPUT', 'UNAUTHENTICATED', 'ALREADY_DONE', 'REVEAL_UNAVAILABLE'],
  },
  {
    method: 'GET',
    path: '/status',
    operationId: 'status',
    summary: 'Remaining codes, the low-codes warning and whether to regenerate.',
    auth: 'user',
    fresh: 'never',
    query: 'noQuery',
    success: { status: 200, body: 'status', description: 'The status.' },
    errors: ['INVALID_INPUT', 'UNAUTHENTICATED'],
  },
  {
    method: 'GET',
    path: '/history',
    operationId: 'history',
    summary: 'A page of the batch history.',
    auth: 'user',
    fresh: 'never',
    query: 'historyQuery',
    success: { status: 200, body: 'history', description: 'One page.' },
    errors: ['INVALID_INPUT', 'UNAUTHENTICATED'],
  },
  {
    method: 'POST',
    path: '/codes/view',
    operationId: 'viewCodes',
    summary: 'Show the codes of the freshly generated batch, once per reveal slot.',
    description: REVEAL_CHANNELS,
    auth: 'user',
    fresh: 'never',
    body: 'empty',
    success: { status: 200, body: 'view', description: 'The plaintext codes.' },
    errors: ['INVALID_INPUT', 'UNAUTHENTICATED', 'ALREADY_DONE', 'REVEAL_UNAVAILABLE'],
  },
  {
    method: 'POST',
    path: '/download',
    operationId: 'download',
    summary:
      'Download the codes of the freshly generated batch in one format (txt, csv or pdf), each format once per reveal slot.',
    description: `${REVEAL_CHANNELS} A format that is not configured (\`pdf\` without a renderer) is 501 \`FEATURE_DISABLED\` and uses nothing up.`,
    auth: 'user',
    fresh: 'always',
    body: 'download',
    success: { status: 200, body: 'binary', description: 'The file, as an attachment.' },
    errors: [
      'INVALID_INPUT',
      'UNAUTHENTICATED',
      'REAUTH_REQUIRED',
      'ALREADY_DONE',
      'REVEAL_UNAVAILABLE',
      'FEATURE_DISABLED',
    ],
  },
  {
    method: 'POST',
    path: '/email',
    operationId: 'email',
    summary:
      "Email the codes of the freshly generated batch to the user's stored address, once per reveal slot (opt-in).",
    description: REVEAL_CHANNELS,
    auth: 'user',
    fresh: 'always',
    body: 'empty',
    success: { status: 200, body: 'email', description: 'Handed to the mailer.' },
    errors: [
      'INVALID_INPUT',
      'UNAUTHENTICATED',
      'REAUTH_REQUIRED',
      'NOT_FOUND',
      'ALREADY_DONE',
      'REVEAL_UNAVAILABLE',
      'FEATURE_DISABLED',
      'MAIL_FAILED',
    ],
  },
  {
    method: 'POST',
    path: '/verify-setup',
    operationId: 'verifySetup',
    summary: 'Check one code of the active batch without consuming it, once per batch.',
    auth: 'user',
    fresh: 'never',
    body: 'code',
    success: { status: 200, body: 'verify', description: 'The code verified; the batch is marked verified.' },
    errors: ['INVALID_INPUT', 'UNAUTHENTICATED', 'INVALID_CODE', 'NOT_FOUND', 'ALREADY_DONE', 'RATE_LIMITED'],
  },
  {
    method: 'POST',
    path: '/codes/invalidate',
    operationId: 'invalidateCode',
    summary: 'Invalidate one code of the active batch.',
    auth: 'user',
    fresh: 'always',
    body: 'code',
    success: { status: 200, body: 'batch', description: 'Invalidated.' },
    errors: [...CODE_ERRORS, 'REAUTH_REQUIRED'],
  },
  {
    method: 'POST',
    path: '/codes/delete',
    operationId: 'deleteCode',
    summary: 'Delete one code of the active batch.',
    auth: 'user',
    fresh: 'always',
    body: 'code',
    success: { status: 200, body: 'batch', description: 'Deleted.' },
    errors: [...CODE_ERRORS, 'REAUTH_REQUIRED'],
  },
  {
    method: 'POST',
    path: '/batch/delete',
    operationId: 'deleteBatch',
    summary: 'Delete the active batch.',
    auth: 'user',
    fresh: 'always',
    body: 'empty',
    success: { status: 200, body: 'batch', description: 'Deleted.' },
    errors: ['INVALID_INPUT', 'UNAUTHENTICATED', 'REAUTH_REQUIRED', 'NOT_FOUND'],
  },
  {
    method: 'POST',
    path: '/redeem',
    operationId: 'redeem',
    summary:
      'Second factor: redeem a code for the user the host marked as awaiting 2FA. Success regenerates the session and logs the user in.',
    auth: 'pending',
    fresh: 'never',
    body: 'code',
    success: { status: 200, body: 'login', description: 'Logged in.' },
    description:
      'Under `replaceOnUse` the replacement code waits in a reveal slot kept in the new session: POST ' +
      '`/codes/view` shows it once (the response carries only `replacement.revealExpiresAt`). ' +
      '`mustBindFactor: true`: bind a new authenticator before anything else.',
    errors: ['INVALID_INPUT', 'UNAUTHENTICATED', 'INVALID_CODE'],
  },
  {
    method: 'POST',
    path: '/login',
    operationId: 'login',
    summary: 'Single-factor login with an identifier and a recovery code (only when enabled).',
    auth: 'none',
    fresh: 'never',
    body: 'login',
    success: { status: 200, body: 'login', description: 'Logged in.' },
    errors: ['INVALID_INPUT', 'INVALID_CODE'],
  },
  {
    method: 'GET',
    path: '/repudiate',
    operationId: 'inspectRepudiation',
    summary: 'Check a "This wasn\'t me" link without using it (only when notifications are configured).',
    description:
      'Read-only: mail scanners follow links, so this never revokes anything. ' +
      '400 `INVALID_INPUT` (issue `token`: `invalid` or `expired`) for a forged, garbled or expired link; ' +
      '409 `ALREADY_DONE` for a link used already.',
    auth: 'none',
    fresh: 'never',
    query: 'repudiateQuery',
    success: { status: 200, body: 'repudiation', description: 'The link would be accepted.' },
    errors: ['INVALID_INPUT', 'ALREADY_DONE'],
  },
  {
    method: 'POST',
    path: '/repudiate',
    operationId: 'repudiate',
    summary:
      'Use a "This wasn\'t me" link: disables the user\'s active batch (only when notifications are configured).',
    description:
      "Once per link. Disables the active batch of the link's user, calls the host's `onRepudiated` (end the " +
      'sessions) and audits. Errors as for GET `/repudiate`.',
    auth: 'none',
    fresh: 'never',
    body: 'repudiate',
    success: { status: 200, body: 'repudiated', description: 'Revoked.' },
    errors: ['INVALID_INPUT', 'ALREADY_DONE'],
  },
  {
    method: 'GET',
    path: '/openapi.json',
    operationId: 'openapi',
    summary: 'This OpenAPI 3.1 document.',
    auth: 'none',
    fresh: 'never',
    query: 'noQuery',
    success: { status: 200, body: 'openapi', description: 'The document.' },
    errors: ['INVALID_INPUT'],
  },
] satisfies RouteSpec[])
