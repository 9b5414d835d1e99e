import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

const root = join(import.meta.dirname, '..')
const readme = readFileSync(join(root, 'README.md'), 'utf8')
const commands = [...readme.matchAll(/```sh\n([^\n]+)\n```/g)].map((m) => m[1]!)

describe('README commands', () => {
  it('has exactly two copy-paste command lines: the demo and the tests', () => {
    expect(commands).toHaveLength(2)
    expect(commands[0]).toMatch(/ demo$/)
    expect(commands[1]).toMatch(/ test$/)
  })

  it('.ci/run calls the README test command verbatim', () => {
    const ci = readFileSync(join(root, '.ci/run'), 'utf8')
    expect(ci.split('\n')).toContain(commands[1])
  })
})
