/** Fields of a log line: small scalar values, never a code, digest, pepper or session secret. */
export type LogFields = Record<string, string | number | boolean | null | undefined>

/** The logger port; structured, one line per call. `console` fits, as do pino and consola. */
export interface Logger {
  debug(message: string, fields?: LogFields): void
  info(message: string, fields?: LogFields): void
  warn(message: string, fields?: LogFields): void
  error(message: string, fields?: LogFields): void
}
