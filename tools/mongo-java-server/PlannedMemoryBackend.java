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
//
// Non-unique indexes (createIndex without `unique: true`), which the stock backend ignores
// (an EmptyIndex), are PlannedSecondaryIndex here, and collections are
// PlannedMemoryCollection, which plans a query over both kinds of index. The
// `plannerStats` command (`{ plannerStats: <collection> }`) reports the last plan.
import de.bwaldvogel.mongo.backend.CollectionOptions;
import de.bwaldvogel.mongo.backend.DatabaseResolver;
import de.bwaldvogel.mongo.backend.Index;
import de.bwaldvogel.mongo.backend.IndexKey;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import de.bwaldvogel.mongo.backend.memory.MemoryCollection;
import de.bwaldvogel.mongo.backend.memory.MemoryDatabase;
import de.bwaldvogel.mongo.backend.memory.index.MemoryUniqueIndex;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.oplog.Oplog;
import io.netty.channel.Channel;
import java.util.List;

public class PlannedMemoryBackend extends MemoryBackend {
    @Override
    public MemoryDatabase openOrCreateDatabase(String databaseName) {
        return new MemoryDatabase(databaseName, getCursorRegistry()) {
            @Override
            protected Index<Integer> openOrCreateUniqueIndex(String collectionName, String indexName, List<IndexKey> keys, boolean sparse) {
                return new PlannedUniqueIndex(indexName, keys, sparse);
            }

            @Override
            protected Index<Integer> openOrCreateSecondaryIndex(String collectionName, String indexName, List<IndexKey> keys, boolean sparse) {
                return new PlannedSecondaryIndex(indexName, keys);
            }

            @Override
            protected MemoryCollection openOrCreateCollection(String collectionName, CollectionOptions options) {
                return new PlannedMemoryCollection(this, collectionName, options, cursorRegistry);
            }

            @Override
            public Document handleCommand(Channel channel, String command, Document query, DatabaseResolver resolver, Oplog oplog) {
                if (!command.equalsIgnoreCase("plannerStats")) return super.handleCommand(channel, command, query, resolver, oplog);
                Object collection = resolveCollection(String.valueOf(query.get(command)), false);
                Document response = collection instanceof PlannedMemoryCollection
                    ? ((PlannedMemoryCollection) collection).plannerStats()
                    : new Document("lastPlan", "none");
                response.put("ok", 1.0);
                return response;
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
