// The in-memory collection with PlannedMemoryBackend's query planning.
//
// queryDocuments (behind find, count, distinct, update and delete) picks, in this order:
// a unique index that serves the filter (as the stock collection does), else the
// PlannedSecondaryIndex constraining the most keys, else a scan. The candidate positions
// are put in natural order (reversed for `$natural: -1`), the order in which a scan meets
// the documents, and matched, sorted, skipped and limited exactly as a scan's are, so a
// query's answer, order included, is the scan's.
//
// removeDocument also tells the secondary indexes which position went, since they cannot
// find it from the document alone. plannerStats() reports the plan of the last query, for
// tests (the `plannerStats` command of PlannedMemoryBackend).
import de.bwaldvogel.mongo.MongoDatabase;
import de.bwaldvogel.mongo.backend.CollectionOptions;
import de.bwaldvogel.mongo.backend.CursorRegistry;
import de.bwaldvogel.mongo.backend.Index;
import de.bwaldvogel.mongo.backend.QueryResult;
import de.bwaldvogel.mongo.backend.memory.MemoryCollection;
import de.bwaldvogel.mongo.bson.Document;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

final class PlannedMemoryCollection extends MemoryCollection {
    private String lastPlan = "none";
    private long indexedQueries;
    private long scannedQueries;

    PlannedMemoryCollection(MongoDatabase database, String collectionName, CollectionOptions options, CursorRegistry cursorRegistry) {
        super(database, collectionName, options, cursorRegistry);
    }

    @Override
    protected synchronized QueryResult queryDocuments(Document query, Document orderBy, int numberToSkip, int limit, int batchSize, Document fieldSelector) {
        Iterable<Integer> positions = null;
        String plan = "COLLSCAN";
        if (query != null) {
            for (Index<Integer> index : getIndexes()) {
                if (index.isUnique() && index.canHandle(query)) {
                    positions = index.getPositions(query);
                    plan = index.getName();
                    break;
                }
            }
            if (positions == null) {
                PlannedSecondaryIndex best = null;
                int bestKeys = 0;
                for (Index<Integer> index : getIndexes()) {
                    if (!(index instanceof PlannedSecondaryIndex)) continue;
                    int keys = ((PlannedSecondaryIndex) index).servedKeys(query);
                    if (keys > bestKeys) {
                        best = (PlannedSecondaryIndex) index;
                        bestKeys = keys;
                    }
                }
                if (best != null) {
                    positions = best.candidates(query);
                    plan = best.getName();
                }
            }
        }
        lastPlan = plan;
        if (positions == null) {
            scannedQueries++;
            return matchDocuments(query, orderBy, numberToSkip, limit, batchSize, fieldSelector);
        }
        indexedQueries++;
        List<Integer> ordered = new ArrayList<>();
        for (Integer position : positions) ordered.add(position);
        Collections.sort(ordered);
        if (isNaturalDescending(orderBy)) Collections.reverse(ordered);
        return matchDocuments(query, ordered, orderBy, numberToSkip, limit, batchSize, fieldSelector);
    }

    @Override
    public synchronized void removeDocument(Document document) {
        // The position AbstractMongoCollection.removeDocument will free: the one its
        // (unique) indexes report; with none of them, it removes nothing either.
        Integer position = null;
        for (Index<Integer> index : getIndexes()) {
            if (index instanceof PlannedSecondaryIndex) continue;
            position = index.getPosition(document);
            if (position != null) break;
        }
        super.removeDocument(document);
        if (position == null) return;
        for (Index<Integer> index : getIndexes()) {
            if (index instanceof PlannedSecondaryIndex) ((PlannedSecondaryIndex) index).removePosition(position);
        }
    }

    synchronized Document plannerStats() {
        Document stats = new Document("lastPlan", lastPlan);
        stats.put("indexedQueries", indexedQueries);
        stats.put("scannedQueries", scannedQueries);
        List<Document> indexes = new ArrayList<>();
        for (Index<Integer> index : getIndexes()) {
            indexes.add(new Document("name", index.getName()).append("entries", index.getCount()));
        }
        stats.put("indexes", indexes);
        return stats;
    }
}
