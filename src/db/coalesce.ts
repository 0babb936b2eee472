import DataLoader from 'dataloader';

/** Keys per query: large enough for any one request (batches are ≤ 1,000), bounded for `$in`. */
const MAX_KEYS_PER_QUERY = 1_000;

/**
 * An instance-wide reader that merges the point reads of one kind asked for during one
 * turn of the event loop, by every request in flight, into one query. Under load many
 * requests arrive in one turn, and on a small machine the round trip (a socket write and
 * its wake-up) is most of a read's cost, so one query for many requests is the cheap one.
 *
 * It caches nothing, so read-your-writes holds: a read is sent after it was asked for, and
 * sees every write acknowledged before that. Waiting for the end of the turn
 * (`setImmediate`) instead of the end of the current microtask queue is what lets requests
 * whose data arrived in the same turn share the query; the cost is that one hop.
 */
export function coalescedReader<K, V>(batch: (keys: readonly K[]) => Promise<readonly V[]>): DataLoader<K, V, string> {
  return new DataLoader<K, V, string>(batch, {
    cache: false,
    maxBatchSize: MAX_KEYS_PER_QUERY,
    batchScheduleFn: (dispatch) => setImmediate(dispatch),
  });
}

/** Loads many keys through a coalesced reader, rethrowing the first failure. */
export async function loadAll<K, V>(reader: DataLoader<K, V, string>, keys: readonly K[]): Promise<V[]> {
  const results = await reader.loadMany(keys);
  return results.map((result) => {
    if (result instanceof Error) throw result;
    return result;
  });
}
