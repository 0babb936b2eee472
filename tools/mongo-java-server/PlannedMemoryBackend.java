// mongo-java-server's in-memory backend with one query-planner fix.
//
// The stock backend uses a unique index only when a filter's fields are exactly the
// index's keys (AbstractUniqueIndex.canHandle compares key sets). A filter such as
// `{ _id: x, state: 'RESERVED', attempt: 2 }` (a fenced update) or `{ _id: x, used:
// { $lte: n } }` (a guarded $inc) therefore scans the whole collection, document by
// document, on every call, although MongoDB answers it from the _id index. Allotment's
// hot writes are all of that shape, so on the stand-in they cost time proportional to
// the collection's size, which no real deployment pays.
//
// PlannedUniqueIndex narrows such a filter to the index's own keys to find the candidate
// documents, exactly as the stock index does for a filter of only those keys; the
// collection then matches every candidate against the whole filter as before
// (AbstractMongoCollection.matchDocumentsFromStream), so results are unchanged. Filters
// that lack one of the index's keys, and operators other than what the stock index
// handles ($in, regular expressions), keep the stock behaviour (a scan).
import de.bwaldvogel.mongo.backend.Index;
import de.bwaldvogel.mongo.backend.IndexKey;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import de.bwaldvogel.mongo.backend.memory.MemoryDatabase;
import de.bwaldvogel.mongo.backend.memory.index.MemoryUniqueIndex;
import de.bwaldvogel.mongo.bson.Document;
import java.util.List;

public class PlannedMemoryBackend extends MemoryBackend {
    @Override
    public MemoryDatabase openOrCreateDatabase(String databaseName) {
        return new MemoryDatabase(databaseName, getCursorRegistry()) {
            @Override
            protected Index<Integer> openOrCreateUniqueIndex(String collectionName, String indexName, List<IndexKey> keys, boolean sparse) {
                return new PlannedUniqueIndex(indexName, keys, sparse);
            }
        };
    }

    /** A unique index that also serves filters with more fields than its keys. */
    static final class PlannedUniqueIndex extends MemoryUniqueIndex {
        PlannedUniqueIndex(String name, List<IndexKey> keys, boolean sparse) {
            super(name, keys, sparse);
        }

        @Override
        public synchronized boolean canHandle(Document query) {
            Document keyQuery = keyQuery(query);
            return keyQuery != null && super.canHandle(keyQuery);
        }

        @Override
        public synchronized Iterable<Integer> getPositions(Document query) {
            Document keyQuery = keyQuery(query);
            return super.getPositions(keyQuery != null ? keyQuery : query);
        }

        /** The filter restricted to this index's keys, or null when it lacks one of them. */
        private Document keyQuery(Document query) {
            if (query.keySet().equals(keySet())) return query;
            if (!query.keySet().containsAll(keySet())) return null;
            Document narrowed = new Document();
            for (String key : keys()) narrowed.put(key, query.get(key));
            return narrowed;
        }
    }
}
