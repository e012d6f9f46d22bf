// Evaluates Elasticsearch query_string (Lucene syntax) queries on documents with Lucene's own
// classic QueryParser and MemoryIndex, typed the way an Elasticsearch mapping types fields.
//
// Protocol (UTF-8 lines on stdin; in values \t, \n and \\ are backslash-escaped):
//   D                              start a document
//   F <field> <type> <value>       a value of the current document (keyword | normalized | ip | long | date);
//                                  repeat for arrays. `normalized`: a keyword with a lowercase normalizer
//                                  (the caller sends the value lower-cased, as the normalizer indexes it);
//                                  `flattened`: a key of a flattened field (indexed as a keyword)
//   Q <id> <query>                 evaluate a query on every document
// Output per query: "R <id> <matching document numbers, comma separated>" or "E <id> <error>".
//
// What follows Elasticsearch (query_string on a typed mapping) rather than plain Lucene:
// `_exists_:f` tests the `_field_names` field ES keeps; ip fields take addresses and CIDR
// prefixes; long fields take numbers; `f:>x`, `f:>=x`, `f:<x`, `f:<=x` are ranges; an unbound
// term searches every keyword value (default_field "*").
// Field-type rules as Elasticsearch applies them (query_string fails the whole query):
// - wildcard, prefix, regexp and fuzzy terms only on keyword/text fields: on ip, numeric and date fields
//   Elasticsearch raises "Can only use wildcard queries on keyword and text fields - not on [f] which is
//   of type [ip]" (MappedFieldType; elastic/elasticsearch#34062; "Term-level queries" docs:
//   https://www.elastic.co/guide/en/elasticsearch/reference/current/term-level-queries.html);
// - an ip field takes an address or a CIDR prefix only, a long field a number only;
// - a keyword with a normalizer normalizes the query text of term, wildcard, prefix AND regexp terms
//   (normalizer docs: https://www.elastic.co/guide/en/elasticsearch/reference/current/normalizer.html;
//   wildcard from query_string: elastic/elasticsearch#71751; regexp: elastic/elasticsearch#80189);
// - a key of a flattened field takes term and prefix queries, never wildcard, regexp or fuzzy ("[wildcard]
//   queries are not currently supported on keyed [flattened] fields": flattened docs, "Supported
//   operations", https://www.elastic.co/guide/en/elasticsearch/reference/current/flattened.html;
//   elastic/elasticsearch#157064).
import java.io.*;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.util.*;

import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.analysis.core.KeywordAnalyzer;
import org.apache.lucene.document.InetAddressPoint;
import org.apache.lucene.document.LongPoint;
import org.apache.lucene.index.Term;
import org.apache.lucene.index.memory.MemoryIndex;
import org.apache.lucene.queryparser.classic.ParseException;
import org.apache.lucene.queryparser.classic.QueryParser;
import org.apache.lucene.search.*;

public class LuceneQuery {
    static final String FIELD_NAMES = "_field_names";
    static final String ALL_VALUES = "_all_values";

    static final class Doc {
        final List<String[]> values = new ArrayList<>();
    }

    static final class TypedParser extends QueryParser {
        final Map<String, String> types;

        TypedParser(Map<String, String> types, Analyzer analyzer) {
            super(ALL_VALUES, analyzer);
            this.types = types;
            setAllowLeadingWildcard(true);
            setDefaultOperator(QueryParser.Operator.OR);
            setSplitOnWhitespace(true);
        }

        @Override
        protected Query getFieldQuery(String field, String text, boolean quoted) throws ParseException {
            if (field.equals("_exists_")) {
                return new TermQuery(new Term(FIELD_NAMES, text));
            }
            String type = types.getOrDefault(field, "keyword");
            if (type.equals("normalized")) text = text.toLowerCase(Locale.ROOT);
            String op = null;
            for (String candidate : new String[] {">=", "<=", ">", "<"}) {
                if (!quoted && text.startsWith(candidate)) { op = candidate; break; }
            }
            try {
                if (op != null) {
                    return range(field, type, op, text.substring(op.length()));
                }
                if (type.equals("ip")) {
                    int slash = text.indexOf('/');
                    if (slash >= 0) {
                        return InetAddressPoint.newPrefixQuery(field, literalAddress(text.substring(0, slash)),
                            Integer.parseInt(text.substring(slash + 1)));
                    }
                    return InetAddressPoint.newExactQuery(field, literalAddress(text));
                }
                if (type.equals("long")) {
                    return LongPoint.newExactQuery(field, Long.parseLong(text));
                }
            } catch (IOException | NumberFormatException e) {
                throw new ParseException("failed to parse [" + text + "] for " + type + " field [" + field + "]");
            }
            return super.getFieldQuery(field, text, quoted);
        }

        String termType(String field, String kind) throws ParseException {
            String type = types.getOrDefault(field, "keyword");
            if (type.equals("ip") || type.equals("long") || type.equals("date")) {
                throw new ParseException("Can only use " + kind + " queries on keyword and text fields - not on ["
                    + field + "] which is of type [" + type + "]");
            }
            if (type.equals("flattened") && !kind.equals("prefix")) {
                throw new ParseException("[" + kind + "] queries are not currently supported on keyed [flattened] fields: [" + field + "]");
            }
            return type;
        }

        String normalized(String field, String kind, String text) throws ParseException {
            return termType(field, kind).equals("normalized") ? text.toLowerCase(Locale.ROOT) : text;
        }

        @Override
        protected Query getWildcardQuery(String field, String text) throws ParseException {
            return super.getWildcardQuery(field, normalized(field, "wildcard", text));
        }

        @Override
        protected Query getPrefixQuery(String field, String text) throws ParseException {
            return super.getPrefixQuery(field, normalized(field, "prefix", text));
        }

        @Override
        protected Query getRegexpQuery(String field, String text) throws ParseException {
            return super.getRegexpQuery(field, normalized(field, "regexp", text));
        }

        @Override
        protected Query getFuzzyQuery(String field, String text, float similarity) throws ParseException {
            return super.getFuzzyQuery(field, normalized(field, "fuzzy", text), similarity);
        }

        // As Elasticsearch does: a group of only negative clauses matches everything except them.
        @Override
        protected Query getBooleanQuery(List<BooleanClause> clauses) throws ParseException {
            return matchAllIfOnlyNegative(super.getBooleanQuery(clauses));
        }

        static Query matchAllIfOnlyNegative(Query q) {
            if (q instanceof BooleanQuery) {
                BooleanQuery bq = (BooleanQuery) q;
                boolean onlyNegative = !bq.clauses().isEmpty();
                for (BooleanClause c : bq.clauses()) {
                    if (c.getOccur() != BooleanClause.Occur.MUST_NOT) { onlyNegative = false; break; }
                }
                if (onlyNegative) {
                    BooleanQuery.Builder b = new BooleanQuery.Builder();
                    for (BooleanClause c : bq.clauses()) b.add(c);
                    b.add(new MatchAllDocsQuery(), BooleanClause.Occur.MUST);  // MUST, not FILTER: MemoryIndex reports a match as a score
                    return b.build();
                }
            }
            return q;
        }

        Query range(String field, String type, String op, String value) throws ParseException {
            boolean lower = op.startsWith(">");
            boolean inclusive = op.endsWith("=");
            if (type.equals("long")) {
                long v = Long.parseLong(value);
                if (lower) return LongPoint.newRangeQuery(field, inclusive ? v : Math.addExact(v, 1), Long.MAX_VALUE);
                return LongPoint.newRangeQuery(field, Long.MIN_VALUE, inclusive ? v : Math.addExact(v, -1));
            }
            if (lower) return TermRangeQuery.newStringRange(field, value, null, inclusive, true);
            return TermRangeQuery.newStringRange(field, null, value, true, inclusive);
        }
    }

    static String unescape(String s) {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\' && i + 1 < s.length()) {
                char n = s.charAt(++i);
                out.append(n == 't' ? '\t' : n == 'n' ? '\n' : n);
            } else {
                out.append(c);
            }
        }
        return out.toString();
    }

    // An ip field takes an address literal only (Elasticsearch's InetAddresses.forString); a host name
    // is an error, never a DNS lookup (InetAddress.getByName would resolve it over the network).
    static InetAddress literalAddress(String text) throws IOException {
        boolean v4 = text.matches("\\d{1,3}(\\.\\d{1,3}){3}");
        boolean v6 = text.contains(":") && text.matches("[0-9A-Fa-f:.]+");
        if (!v4 && !v6) throw new java.net.UnknownHostException("'" + text + "' is not an IP string literal");
        return InetAddress.getByName(text);
    }

    static MemoryIndex index(Doc doc, Analyzer analyzer) throws IOException {
        MemoryIndex mi = new MemoryIndex();
        Set<String> names = new TreeSet<>();
        for (String[] v : doc.values) {
            String field = v[0], type = v[1], value = v[2];
            names.add(field);
            switch (type) {
                case "ip": mi.addField(new InetAddressPoint(field, literalAddress(value)), analyzer); break;
                case "long": mi.addField(new LongPoint(field, Long.parseLong(value)), analyzer); break;
                default:
                    mi.addField(field, value, analyzer);
                    mi.addField(ALL_VALUES, value, analyzer);
            }
        }
        for (String name : names) {
            mi.addField(FIELD_NAMES, name, analyzer);
            // ES records parent objects too: `_exists_:dns.question` holds when a sub-field exists
            String parent = name;
            while (parent.contains(".")) {
                parent = parent.substring(0, parent.lastIndexOf('.'));
                mi.addField(FIELD_NAMES, parent, analyzer);
            }
        }
        return mi;
    }

    public static void main(String[] args) throws Exception {
        Analyzer analyzer = new KeywordAnalyzer();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        PrintWriter out = new PrintWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8));
        List<Doc> docs = new ArrayList<>();
        Map<String, String> types = new HashMap<>();
        List<MemoryIndex> indexes = null;
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isEmpty()) continue;
            String[] parts = line.split("\t", 4);
            switch (parts[0]) {
                case "D": docs.add(new Doc()); indexes = null; break;
                case "F": {
                    String[] v = {unescape(parts[1]), parts[2], unescape(parts[3])};
                    docs.get(docs.size() - 1).values.add(v);
                    types.put(v[0], v[1]);
                    break;
                }
                case "Q": {
                    String id = parts[1];
                    String query = unescape(parts[2]);
                    try {
                        if (indexes == null) {  // built whole or not at all: a bad document fails every query
                            List<MemoryIndex> built = new ArrayList<>();
                            for (Doc d : docs) built.add(index(d, analyzer));
                            indexes = built;
                        }
                        Query q = TypedParser.matchAllIfOnlyNegative(new TypedParser(types, analyzer).parse(query));
                        StringJoiner hits = new StringJoiner(",");
                        for (int i = 0; i < indexes.size(); i++) {
                            if (indexes.get(i).search(q) > 0.0f) hits.add(Integer.toString(i));
                        }
                        out.println("R\t" + id + "\t" + hits);
                    } catch (Exception e) {
                        out.println("E\t" + id + "\t" + String.valueOf(e.getMessage()).replace('\n', ' '));
                    }
                    break;
                }
                default: throw new IllegalArgumentException("bad line: " + line);
            }
        }
        out.flush();
    }
}
