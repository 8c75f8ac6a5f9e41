import { ZyncError } from '../core/errors'

/**
 * Loads an optional peer dependency (a storage driver, prom-client, the Redis adapter). When it is not
 * installed, the error says which package to install and what needs it, instead of a bare
 * "Cannot find package". `load` is a literal `() => import('pkg')`, so bundlers still see the import.
 */
export async function importPeer<T>(load: () => Promise<T>, pkg: string, what: string): Promise<T> {
  try {
    return await load()
  } catch (err) {
    const code = (err as { code?: string }).code
    if ((code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && String((err as Error).message).includes(`'${pkg}'`)) {
      throw new ZyncError('BAD_REQUEST', `[zync] ${what} needs the '${pkg}' package, which is not installed: npm install ${pkg}`, { cause: err })
    }
    throw err
  }
}
