// A non-unique index for the in-memory backend (the stock backend keeps an EmptyIndex for
// every createIndex without `unique: true`, so such queries scan the collection).
//
// Keys (PlannedKeys) map to the positions of the documents holding them, in a sorted map,
// so an equality/$in prefix of the keys, optionally followed by a range on the next key,
// reads a few sub-maps. A document has a key per array element on a key path (multikey);
// irregular documents (PlannedKeys) are kept aside and returned with every answer, and an
// index where they are the majority serves nothing. The collection (PlannedMemoryCollection) picks
// the index, orders the candidates as a scan would meet them, and matches each against
// the whole filter, so an answer is never different from a scan's, only cheaper.
//
// The collection calls: add/checkAdd on insert, checkUpdate/updateInPlace on update,
// remove on delete (which cannot tell positions apart for equal keys, so it returns null
// like the stock EmptyIndex, and the collection calls removePosition), getPosition (null,
// as getSinglePosition expects of a non-unique index), drop, and getCount/isEmpty when
// the index is built over existing documents.
import de.bwaldvogel.mongo.MongoCollection;
import de.bwaldvogel.mongo.backend.Index;
import de.bwaldvogel.mongo.backend.IndexKey;
import de.bwaldvogel.mongo.bson.Document;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.Set;
import java.util.TreeMap;

final class PlannedSecondaryIndex extends Index<Integer> {
    /** Cap on the lookups an $in prefix may expand to; longer prefixes are cut short. */
    private static final int MAX_LOOKUPS = 512;

    private final String[][] paths;
    private final TreeMap<Object[], Set<Integer>> positionsByKey = new TreeMap<>(PlannedKeys.TUPLE_ORDER);
    private final Map<Integer, List<Object[]>> keysByPosition = new HashMap<>();
    private final Set<Integer> irregular = new HashSet<>();

    PlannedSecondaryIndex(String name, List<IndexKey> keys) {
        // Sparse as far as AbstractMongoCollection.removeDocument is concerned (a null from
        // remove() is not an error), as the stock EmptyIndex declares itself.
        super(name, keys, true);
        paths = keys.stream().map(key -> key.getKey().split("\\.")).toArray(String[][]::new);
    }

    @Override
    public Integer getPosition(Document document) {
        return null;
    }

    @Override
    public void checkAdd(Document document, MongoCollection<Integer> collection) {
        // no constraint to check
    }

    @Override
    public synchronized void add(Document document, Integer position, MongoCollection<Integer> collection) {
        List<Object[]> keys = PlannedKeys.keysOf(document, paths);
        if (keys == null) {
            irregular.add(position);
            return;
        }
        for (Object[] key : keys) positionsByKey.computeIfAbsent(key, k -> new HashSet<>()).add(position);
        keysByPosition.put(position, keys);
    }

    @Override
    public Integer remove(Document document) {
        return null;
    }

    /** Forgets the document at this position (called by PlannedMemoryCollection). */
    synchronized void removePosition(Integer position) {
        if (irregular.remove(position)) return;
        List<Object[]> keys = keysByPosition.remove(position);
        if (keys == null) return;
        for (Object[] key : keys) {
            Set<Integer> positions = positionsByKey.get(key);
            positions.remove(position);
            if (positions.isEmpty()) positionsByKey.remove(key);
        }
    }

    @Override
    public boolean canHandle(Document query) {
        return false; // PlannedMemoryCollection.queryDocuments asks servedKeys() instead
    }

    @Override
    public Iterable<Integer> getPositions(Document query) {
        throw new UnsupportedOperationException("use candidates()");
    }

    @Override
    public synchronized long getCount() {
        return keysByPosition.size() + irregular.size();
    }

    @Override
    public long getDataSize() {
        return getCount();
    }

    @Override
    public void checkUpdate(Document oldDocument, Document newDocument, MongoCollection<Integer> collection) {
        // no constraint to check
    }

    @Override
    public synchronized void updateInPlace(Document oldDocument, Document newDocument, Integer position, MongoCollection<Integer> collection) {
        removePosition(position);
        add(newDocument, position, collection);
    }

    @Override
    public synchronized void drop() {
        positionsByKey.clear();
        keysByPosition.clear();
        irregular.clear();
    }

    /** The constraints a filter places on a prefix of this index's keys (empty: not served). */
    private List<PlannedKeys.Constraint> plan(Document filter) {
        List<PlannedKeys.Constraint> constraints = new ArrayList<>();
        long lookups = 1;
        for (IndexKey key : getKeys()) {
            if (!filter.containsKey(key.getKey())) break;
            PlannedKeys.Constraint constraint = PlannedKeys.constraint(filter.get(key.getKey()));
            if (constraint == null) break;
            if (!constraint.isRange()) {
                lookups *= constraint.values.size();
                if (lookups > MAX_LOOKUPS) break;
            }
            constraints.add(constraint);
            if (constraint.isRange()) break;
        }
        return constraints;
    }

    /**
     * How many of this index's keys the filter constrains; 0 when it cannot serve it, or
     * when most documents are irregular (every query would read them all anyway).
     */
    synchronized int servedKeys(Document filter) {
        if (irregular.size() > keysByPosition.size()) return 0;
        return plan(filter).size();
    }

    /**
     * Positions of every document that may match the filter (a superset of the matches),
     * unordered; call only when servedKeys(filter) > 0.
     */
    synchronized Set<Integer> candidates(Document filter) {
        List<PlannedKeys.Constraint> constraints = plan(filter);
        Set<Integer> result = new HashSet<>(irregular);
        collect(constraints, 0, new Object[paths.length], new Object[paths.length], result);
        return result;
    }

    private void collect(List<PlannedKeys.Constraint> constraints, int depth, Object[] from, Object[] to, Set<Integer> result) {
        if (depth == constraints.size()) {
            Arrays.fill(from, depth, from.length, PlannedKeys.MIN);
            Arrays.fill(to, depth, to.length, PlannedKeys.MAX);
            if (PlannedKeys.TUPLE_ORDER.compare(from, to) > 0) return; // an empty range ($gt 9, $lt 1)
            NavigableMap<Object[], Set<Integer>> range = positionsByKey.subMap(from.clone(), true, to.clone(), true);
            for (Set<Integer> positions : range.values()) result.addAll(positions);
            return;
        }
        PlannedKeys.Constraint constraint = constraints.get(depth);
        if (constraint.isRange()) {
            from[depth] = constraint.low;
            to[depth] = constraint.high;
            collect(constraints, depth + 1, from, to, result);
            return;
        }
        for (Object value : constraint.values) {
            from[depth] = value;
            to[depth] = value;
            collect(constraints, depth + 1, from, to, result);
        }
    }
}
