/** Names of the events fired after a write commits, once each. */
export type RecoveryEventName =
  | 'generated'
  | 'viewed'
  | 'downloaded'
  | 'emailed'
  | 'verified'
  | 'used'
  | 'failed'
  | 'locked'
  | 'disabled'
  | 'low'
  | 'exhausted'
  | 'invalidated'
  | 'deleted'
  | 'batchDeleted'
  | 'purged'

/** An event: what happened, to whom, when. Never a code or digest. */
export interface RecoveryEvent {
  name: RecoveryEventName
  at: number
  userId: string | null
  batchId: string | null
  data?: Record<string, string | number | boolean | null>
}

/**
 * The event sink port. Called after the write commits; a throwing or rejecting sink is logged and
 * never undoes or fails the operation.
 */
export interface EventSink {
  emit(event: RecoveryEvent): void | Promise<void>
}
