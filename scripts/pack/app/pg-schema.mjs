// `node pg-schema.mjs create|drop <schema>` against PG_URL, with the app's own pg.
import pg from 'pg'

const [action, schema] = process.argv.slice(2)
if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema ?? '')) {
  console.error(`pg-schema.mjs: bad schema name ${JSON.stringify(schema)}`)
  process.exit(2)
}
const client = new pg.Client({ connectionString: process.env.PG_URL, connectionTimeoutMillis: 3000 })
try {
  await client.connect()
  if (action === 'create') await client.query(`create schema "${schema}"`)
  else if (action === 'drop') await client.query(`drop schema if exists "${schema}" cascade`)
  else throw new Error(`unknown action ${action}`)
  console.log('ok')
} finally {
  await client.end().catch(() => {})
}
