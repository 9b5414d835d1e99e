import type { BatchStatus, BatchSummary } from '../ports/store.ts'

/** Export formats of the download; each offered one downloads once per reveal slot. */
export type ExportFormat = 'txt' | 'csv' | 'pdf'

/**
 * An opaque handle to the reveal slot of a freshly generated batch. The host keeps it in its
 * session (it carries the slot id and the slot's decryption key, never the codes); logout,
 * a new batch, the TTL, or using every channel destroys the slot.
 */
export type RevealToken = string

/**
 * One way out of a reveal slot, each usable once while the slot lives: `view` (`viewCodes`), each
 * offered download format (`exportCodes`), `email` (`emailCodes`, when email is enabled).
 */
export type RevealChannel = 'view' | ExportFormat | 'email'

/** `revealStatus()` result: what is left of a live reveal slot. It carries no code. */
export interface RevealStatus {
  batchId: string
  /** When the slot dies at the latest (epoch ms). */
  expiresAt: number
  /** The channels still open, in the order `view`, each offered format, `email`. Never empty. */
  open: RevealChannel[]
  /** The channels already used, in the same order. */
  used: RevealChannel[]
  /**
   * `true` while the slot's batch waits for `rc.confirm` (`activation: 'confirm'`): it is not in
   * the store yet and the user's current batch still works.
   */
  pending: boolean
}

/** `confirm()` result. */
export interface ConfirmResult {
  /** The batch that is now active. */
  batchId: string
  /** The batch it superseded, or `null` when the user had none. */
  supersededBatchId: string | null
}

/** A replacement code waiting in a reveal slot of its own (`replaceOnUse`). */
export interface ReplacementReveal {
  /** Keep in the host session; `viewCodes` with it shows the replacement once. */
  reveal: RevealToken
  revealExpiresAt: number
}

/** Who is asking and from where: used for limiter keys and audit (hashed). */
export interface RequestContext {
  /** Client key, e.g. the socket address or the framework's trusted-proxy result. */
  clientKey?: string
  /** User agent for the audit trail (truncated). */
  userAgent?: string
}

/** `generate()` input. */
export interface GenerateInput extends RequestContext {
  userId: string
  /** Codes in the batch; default `config.batchSize`, at most `config.maxBatchSize`. */
  count?: number
  /** Days until the batch expires; omitted = `config.defaultExpiryDays`; `null` = never. */
  expiresInDays?: number | null
}

/** `generate()` result. */
export type GenerateResult =
  | {
      ok: true
      batchId: string
      /** Display-formatted plaintext codes: shown once, never stored. */
      codes: string[]
      createdAt: number
      expiresAt: number | null
      /** Keep in the host session to download or email the codes later. */
      reveal: RevealToken
      /** When the slot dies at the latest. */
      revealExpiresAt: number
      /**
       * `true` under `activation: 'confirm'`: the batch waits in its reveal slot, the current one
       * keeps working, and `rc.confirm({ userId, reveal })` before `revealExpiresAt` activates it.
       * `false`: the batch is active already.
       */
      pending: boolean
    }
  | { ok: false; reason: 'COOLDOWN_ACTIVE'; retryAfterMs: number }

/** `redeem()` / `verifySetup()` / code-addressed action input. */
export interface CodeInput extends RequestContext {
  userId: string
  code: string
}

/** `redeem()` input: second factor (`userId`) or the opt-in single-factor login (`identifier`). */
export type RedeemInput =
  | (RequestContext & { userId: string; code: string; identifier?: undefined })
  | (RequestContext & { identifier: string; code: string; userId?: undefined })

/**
 * The failure shape, identical for an unknown identifier, a wrong, used, expired, invalidated or
 * superseded code, and a locked account (`retryAfterMs > 0` only while a cooldown runs, and then
 * for known and unknown identifiers alike).
 */
export interface CodeFailure {
  ok: false
  reason: 'INVALID_CODE'
  retryAfterMs: number
}

/** `redeem()` result. */
export type RedeemResult =
  | {
      ok: true
      userId: string
      batchId: string
      remaining: number
      /** True after any recovery login: the user should generate a new batch. */
      shouldRegenerate: boolean
      lowCodes: boolean
      /** How the user authenticated: always `'recovery_code'` (for the host's session record). */
      method: 'recovery_code'
      /** The host's `mustBindFactor` said the user must bind a new authenticator first. */
      mustBindFactor: boolean
      /**
       * `replaceOnUse`: the replacement code, in a reveal slot of its own (never in this result as
       * a code). Absent when replacement is off or the replacement could not be written.
       */
      replacement?: ReplacementReveal
    }
  | CodeFailure

/** A non-consuming or code-addressed action result. */
export type CodeActionResult = { ok: true; batchId: string } | CodeFailure

/** One batch as history shows it. */
export interface BatchView {
  id: string
  status: BatchStatus | 'expired'
  createdAt: number
  expiresAt: number | null
  endedAt: number | null
  issued: number
  unused: number
  used: number
  invalidated: number
  deleted: number
  viewed: boolean
  downloaded: boolean
  emailed: boolean
  verified: boolean
  lastUsedAt: number | null
}

/** A page of history. */
export interface HistoryPage {
  items: BatchView[]
  page: number
  perPage: number
  /** Batches visible (capped at `config.history.maxVisible`). */
  total: number
  totalPages: number
}

/** `status()` result. */
export interface StatusResult {
  active: BatchView | null
  remaining: number
  lowCodes: boolean
  lowCodesThreshold: number
  /** A recovery login happened in the active batch, or no usable batch exists. */
  shouldRegenerate: boolean
  /** Milliseconds until `generate` is allowed again; 0 when allowed. */
  generateRetryAfterMs: number
}

/** A downloaded file: each offered format once per reveal slot. */
export interface ExportFile {
  filename: string
  contentType: string
  body: Uint8Array
}

/**
 * How the chunks of a purge run went, across every phase (codes, empty batches, limiter counters;
 * audit rows for an audit purge). Chunks are sized by `purge.chunkBudgetMs` and timed on the
 * monotonic clock.
 */
export interface PurgeChunkReport {
  /** The time budget of one chunk, in milliseconds (`purge.chunkBudgetMs`). */
  budgetMs: number
  /** Chunks completed (every phase; `rounds` counts the code chunks only). */
  count: number
  /** The longest chunk, in milliseconds. */
  slowestMs: number
  /** Chunks that took longer than the budget (each made the next one smaller). */
  overBudget: number
}

/** The report of a purge run. */
export interface PurgeReport {
  deleted: number
  batchesDeleted: number
  /** Expired limiter counters deleted (`purge.attemptRetentionDays`); 0 for an audit purge. */
  attemptsDeleted: number
  /** Code chunks completed (audit chunks for an audit purge). */
  rounds: number
  /** False when the per-run cap stopped the run before everything eligible was gone. */
  done: boolean
  /** Set when a chunk failed; `deleted` counts what was deleted before it. */
  error?: string
  /** Chunk figures of the run; set by the service's `purge` and `purgeAudit`. */
  chunks?: PurgeChunkReport
}

export type { BatchSummary }
