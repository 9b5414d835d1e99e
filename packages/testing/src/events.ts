import type { EventSink, RecoveryEvent, RecoveryEventName } from '@recovery-codes/core'

/** An {@link EventSink} that records every event. */
export interface EventRecorder extends EventSink {
  emit(event: RecoveryEvent): Promise<void>
  /** Every event, in emission order (copies). */
  readonly events: readonly RecoveryEvent[]
  /** Event names in order, handy for `toEqual(['generated', 'viewed'])`. */
  names(): RecoveryEventName[]
  /** Events with one name. */
  ofName(name: RecoveryEventName): RecoveryEvent[]
  /** Makes the next `count` emits reject (after recording the event), to test that sinks never fail an operation. */
  failNext(count?: number): void
  clear(): void
}

/**
 * An event sink spy for tests.
 *
 * @example
 * ```ts
 * const events = createEventRecorder()
 * const rc = createRecoveryCodes({ ...config, events })
 * await rc.redeem({ userId, code })
 * expect(events.names()).toEqual(['used'])
 * ```
 */
export function createEventRecorder(): EventRecorder {
  const events: RecoveryEvent[] = []
  let failures = 0
  return {
    events,
    async emit(event) {
      events.push(structuredClone(event))
      if (failures > 0) {
        failures--
        throw new Error('event sink failed')
      }
    },
    names: () => events.map((e) => e.name),
    ofName: (name) => events.filter((e) => e.name === name),
    failNext(count = 1) {
      if (!Number.isInteger(count) || count < 0) throw new RangeError('count must be a non-negative integer')
      failures += count
    },
    clear() {
      events.length = 0
      failures = 0
    },
  } satisfies EventRecorder
}
