// Vitest globalSetup: starts a throwaway PostgreSQL cluster and a redis-server on 127.0.0.1 (free ports,
// data in temp dirs) and hands their URLs to the tests: `inject('pgUrl')`, `inject('redisUrl')`.
// ZYNC_TEST_PG_URL / ZYNC_TEST_REDIS_URL point the tests at existing servers instead.
import type { TestProject } from 'vitest/node'
import { startPostgres, startRedis, type Service } from './pg-redis'

declare module 'vitest' {
  export interface ProvidedContext {
    pgUrl: string
    redisUrl: string
  }
}

function external(url: string): Service {
  return { url, stop: async () => {} }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const pgEnv = process.env.ZYNC_TEST_PG_URL
  const redisEnv = process.env.ZYNC_TEST_REDIS_URL
  const [pg, redis] = await Promise.allSettled([
    pgEnv ? Promise.resolve(external(pgEnv)) : startPostgres(),
    redisEnv ? Promise.resolve(external(redisEnv)) : startRedis(),
  ])
  if (pg.status === 'rejected' || redis.status === 'rejected') {
    // Do not leave the one that started running.
    await Promise.allSettled([pg, redis].map((r) => (r.status === 'fulfilled' ? r.value.stop() : undefined)))
    throw (pg.status === 'rejected' ? pg.reason : (redis as PromiseRejectedResult).reason) as Error
  }
  project.provide('pgUrl', pg.value.url)
  project.provide('redisUrl', redis.value.url)
  return async () => {
    const results = await Promise.allSettled([pg.value.stop(), redis.value.stop()])
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failed) throw failed.reason as Error
  }
}
