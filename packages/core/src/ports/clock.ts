/** The clock port: UTC epoch milliseconds. `createManualClock()` in tests. */
export interface Clock {
  now(): number
}
