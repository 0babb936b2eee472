// Index keys and filter constraints for PlannedSecondaryIndex (see PlannedMemoryBackend.java).
//
// A document's key is one component per index key: its value normalized as the stock
// matcher compares it for equality (Utils.normalizeValue: every int, long and double as a
// Double, -0.0 as 0.0), or null for a missing or null field. A path that meets an array
// gives one key per element (multikey, as MongoDB's), through arrays of embedded documents
// too; an empty array gives EMPTY_ARRAY, which a filter's null also looks up. Documents
// for which that is not the whole truth are "irregular" and are returned as candidates of
// every query: arrays within arrays, a path through a scalar, positional (numeric) paths
// meeting an array, more than 64 keys, and any type beyond null, numbers (except NaN and
// longs a double cannot hold), strings, dates, ObjectIds and booleans.
//
// A filter constrains a key by equality (a scalar, null or $eq), $in (a list of those) or a
// range ($gt/$gte/$lt/$lte on numbers, strings, dates or ObjectIds, bounds of one type). Anything else
// leaves the key unconstrained. Bounds are widened (inclusive, and numbers by 2, because
// the stock matcher compares a number against a long-valued one by truncating both), so
// candidates are a superset; the collection matches every candidate against the filter.
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.bson.ObjectId;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

final class PlannedKeys {
    private PlannedKeys() {}

    /** Marks a value the index cannot key exactly (irregular document, unserved filter value). */
    static final Object UNSUPPORTED = new Object();

    private static final double MAX_EXACT_BOUND = 4503599627370496.0; // 2^52
    private static final Set<String> RANGE_OPS = Set.of("$gt", "$gte", "$lt", "$lte");

    /** A sentinel sorting below (side -1) or above (side +1) every value of one type rank. */
    static final class Edge {
        final int rank;
        final int side;

        Edge(int rank, int side) {
            this.rank = rank;
            this.side = side;
        }
    }

    /**
     * The key component of an empty array. A filter's null looks it up too, though the stock
     * matcher (unlike older MongoDB versions) does not match an empty array with null: a
     * superset costs nothing here.
     */
    static final Object EMPTY_ARRAY = new Object();

    static final Edge MIN = new Edge(Integer.MIN_VALUE, -1);
    static final Edge MAX = new Edge(Integer.MAX_VALUE, 1);

    /** Total order over key components: type rank, then value; edges at the ends of their rank. */
    static final Comparator<Object> COMPONENT_ORDER = PlannedKeys::compareComponents;

    static final Comparator<Object[]> TUPLE_ORDER = (a, b) -> {
        for (int i = 0; i < a.length; i++) {
            int cmp = compareComponents(a[i], b[i]);
            if (cmp != 0) return cmp;
        }
        return 0;
    };

    private static int rank(Object value) {
        if (value == null) return 0;
        if (value instanceof Double) return 1;
        if (value instanceof String) return 2;
        if (value instanceof ObjectId) return 3;
        if (value instanceof Boolean) return 4;
        if (value instanceof Instant) return 5;
        if (value == EMPTY_ARRAY) return 6;
        if (value instanceof Edge) return ((Edge) value).rank;
        throw new IllegalArgumentException("not a key component: " + value.getClass());
    }

    private static int compareComponents(Object a, Object b) {
        int ra = rank(a);
        int rb = rank(b);
        if (ra != rb) return Integer.compare(ra, rb);
        int sa = a instanceof Edge ? ((Edge) a).side : 0;
        int sb = b instanceof Edge ? ((Edge) b).side : 0;
        if (sa != 0 || sb != 0) return Integer.compare(sa, sb);
        if (a == null || a == EMPTY_ARRAY) return 0;
        if (a instanceof Double) return Double.compare((Double) a, (Double) b);
        if (a instanceof String) return ((String) a).compareTo((String) b);
        if (a instanceof ObjectId) return ((ObjectId) a).compareTo((ObjectId) b);
        if (a instanceof Boolean) return Boolean.compare((Boolean) a, (Boolean) b);
        return ((Instant) a).compareTo((Instant) b);
    }

    /** A scalar as the stock matcher's equality sees it, or UNSUPPORTED. */
    static Object normalize(Object value) {
        if (value == null) return null;
        if (value instanceof Integer || value instanceof Long || value instanceof Double) {
            if (value instanceof Long && (Long) value != (long) ((Long) value).doubleValue()) return UNSUPPORTED;
            double d = ((Number) value).doubleValue();
            if (Double.isNaN(d)) return UNSUPPORTED;
            return d == 0.0 ? Double.valueOf(0.0) : Double.valueOf(d);
        }
        if (value instanceof String || value instanceof Instant || value instanceof ObjectId || value instanceof Boolean) return value;
        return UNSUPPORTED;
    }

    /** Cap on the keys one document may have (arrays on several keys multiply). */
    private static final int MAX_KEYS_PER_DOCUMENT = 64;

    /**
     * The document's keys for these paths (several when a path meets an array: one per
     * element, as MongoDB's multikey indexes), or null when the document is irregular.
     */
    static List<Object[]> keysOf(Document document, String[][] paths) {
        List<Object[]> keys = new ArrayList<>();
        keys.add(new Object[paths.length]);
        for (int i = 0; i < paths.length; i++) {
            List<Object> found = new ArrayList<>();
            if (!collectValues(document, paths[i], 0, found)) return null;
            TreeSet<Object> values = new TreeSet<>(COMPONENT_ORDER);
            values.addAll(found);
            if (keys.size() * values.size() > MAX_KEYS_PER_DOCUMENT) return null;
            List<Object[]> next = new ArrayList<>();
            for (Object[] key : keys) {
                for (Object value : values) {
                    Object[] extended = key.clone();
                    extended[i] = value;
                    next.add(extended);
                }
            }
            keys = next;
        }
        return keys;
    }

    /**
     * The values at a path as the stock matcher reaches them: through embedded documents,
     * and through arrays of documents to each element; an array at the end gives its
     * elements (EMPTY_ARRAY when empty); a missing or null field gives null. False when
     * the document is irregular for this path.
     */
    private static boolean collectValues(Document document, String[] path, int depth, List<Object> out) {
        Object value = document.get(path[depth]);
        if (value == null) {
            out.add(null);
            return true;
        }
        boolean last = depth == path.length - 1;
        if (value instanceof Document) return !last && collectValues((Document) value, path, depth + 1, out);
        if (value instanceof List) {
            if (hasNumericFragment(path)) return false; // positional paths: not modelled
            List<?> elements = (List<?>) value;
            if (elements.isEmpty()) {
                out.add(EMPTY_ARRAY);
                return true;
            }
            for (Object element : elements) {
                if (last) {
                    Object normalized = element instanceof Document || element instanceof List ? UNSUPPORTED : normalize(element);
                    if (normalized == UNSUPPORTED) return false;
                    out.add(normalized);
                } else if (!(element instanceof Document) || !collectValues((Document) element, path, depth + 1, out)) {
                    return false;
                }
            }
            return true;
        }
        if (!last) return false; // a path through a scalar
        Object normalized = normalize(value);
        if (normalized == UNSUPPORTED) return false;
        out.add(normalized);
        return true;
    }

    private static boolean hasNumericFragment(String[] path) {
        for (String fragment : path) {
            if (!fragment.isEmpty() && fragment.chars().allMatch(Character::isDigit)) return true;
        }
        return false;
    }

    /** What a filter says about one key: equal to one of `values`, or within [low, high]. */
    static final class Constraint {
        final List<Object> values; // null for a range
        final Object low;
        final Object high;

        private Constraint(List<Object> values, Object low, Object high) {
            this.values = values;
            this.low = low;
            this.high = high;
        }

        boolean isRange() {
            return values == null;
        }
    }

    /** The constraint a filter's value for one key places on it, or null if none is served. */
    static Constraint constraint(Object filterValue) {
        if (filterValue instanceof Collection) return null; // whole-array equality
        if (!(filterValue instanceof Document)) return equality(filterValue);
        Document operators = (Document) filterValue;
        Set<String> ops = operators.keySet();
        if (ops.isEmpty()) return null; // equality with an empty document
        if (ops.size() == 1 && ops.contains("$eq")) return equality(operators.get("$eq"));
        if (ops.size() == 1 && ops.contains("$in")) return in(operators.get("$in"));
        if (!RANGE_OPS.containsAll(ops)) return null;
        Object low = null;
        Object high = null;
        int rank = -1;
        for (String op : ops) {
            Object bound = rangeBound(operators.get(op));
            if (bound == UNSUPPORTED) return null;
            int boundRank = rank(bound);
            if (rank >= 0 && boundRank != rank) return null; // mixed types: leave it to the scan
            rank = boundRank;
            boolean lower = op.startsWith("$gt");
            if (bound instanceof Double) bound = (Double) bound + (lower ? -2.0 : 2.0);
            if (lower) low = low == null || compareComponents(bound, low) < 0 ? bound : low;
            else high = high == null || compareComponents(bound, high) > 0 ? bound : high;
        }
        return new Constraint(null, low != null ? low : new Edge(rank, -1), high != null ? high : new Edge(rank, 1));
    }

    private static Object rangeBound(Object bound) {
        Object normalized = normalize(bound);
        if (normalized instanceof Double) {
            double d = (Double) normalized;
            return Double.isFinite(d) && Math.abs(d) <= MAX_EXACT_BOUND ? normalized : UNSUPPORTED;
        }
        return normalized instanceof String || normalized instanceof Instant || normalized instanceof ObjectId ? normalized : UNSUPPORTED;
    }

    private static Constraint equality(Object value) {
        if (value instanceof Document || value instanceof Collection) return null;
        Object normalized = normalize(value);
        if (normalized == UNSUPPORTED) return null;
        List<Object> values = new ArrayList<>(2);
        values.add(normalized);
        if (normalized == null) values.add(EMPTY_ARRAY);
        return new Constraint(values, null, null);
    }

    private static Constraint in(Object list) {
        if (!(list instanceof Collection) || ((Collection<?>) list).isEmpty()) return null;
        List<Object> values = new ArrayList<>();
        for (Object value : (Collection<?>) list) {
            if (value instanceof Document || value instanceof Collection) return null;
            Object normalized = normalize(value);
            if (normalized == UNSUPPORTED) return null;
            if (values.stream().noneMatch(v -> compareComponents(v, normalized) == 0)) values.add(normalized);
        }
        if (values.contains(null)) values.add(EMPTY_ARRAY);
        return new Constraint(values, null, null);
    }
}
