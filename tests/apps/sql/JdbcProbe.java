// A BI-tool-shaped JDBC client for the SQL endpoint tests (tests/apps/sql/test_jdbc.py).
//
// Run with Java's single-file source launcher; nothing is compiled or committed:
//
//   java -cp build/jars/jdbc/postgresql-42.7.14.jar tests/apps/sql/JdbcProbe.java \
//     jdbc:postgresql://127.0.0.1:15432/lakehouse bi-reader \
//     --describe gold.daily_sales \
//     --query "SELECT ... WHERE order_date >= ? AND region = ?" \
//     --params date:2024-01-01 string:west --params date:2024-06-01 string:east \
//     --fetch-size 500 --fetch-sample 3 --fetch "SELECT * FROM gold.daily_sales ORDER BY 1, 2, 3"
//
// It does what DBeaver, Tableau and Metabase do through pgjdbc: DatabaseMetaData.getSchemas,
// getTables, and for the --describe table getColumns, getPrimaryKeys, getImportedKeys and
// getIndexInfo; per --query one PreparedStatement, executed once per --params
// group with typed setters (int, long, string, date, timestamp in the JVM's zone,
// timestamptz as an ISO offset date-time, decimal, double, boolean, null); a streamed
// fetch with autocommit off and a fetch size (pgjdbc then reads through a named portal, a
// row limit per Execute and PortalSuspended). Results go to stdout as JSON lines, one
// object per line with a "kind"; errors go to stderr with exit status 1 (2 for bad usage).
//
// Values are printed in one canonical text per JDBC type, which the Python test rebuilds
// from Spark's rows: integers in decimal, DECIMAL as BigDecimal.toPlainString, DATE as
// yyyy-MM-dd, TIMESTAMP as yyyy-MM-dd HH:mm:ss.SSSSSS (timestamptz in UTC, ending +00:00),
// DOUBLE as the exact decimal value of the binary double (new BigDecimal(d), plain), BOOLEAN
// as true/false, anything else as getString; NULL is JSON null. The fetch prints its row
// count and the SHA-256 of its rows, each row being its values joined by tabs (NULL as \N)
// and ended by a newline.

import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.JDBCType;
import java.sql.ParameterMetaData;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Types;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Properties;

public class JdbcProbe {
    static final String[] TABLE_TYPES = {
        "TABLE", "PARTITIONED TABLE", "VIEW", "MATERIALIZED VIEW", "FOREIGN TABLE"
    };
    static final DateTimeFormatter TIMESTAMP =
        DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss.SSSSSS");
    static final DateTimeFormatter ZONED =
        DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss.SSSSSSxxx");

    /** One prepared statement and the parameter groups it is executed with. */
    record Query(String sql, List<List<String>> params) {}

    /** The command line: URL, user, then options. */
    record Plan(
        String url,
        String user,
        String describe,
        List<Query> queries,
        String fetch,
        int fetchSize,
        int sample) {}

    public static void main(String[] args) {
        Plan plan;
        try {
            plan = parse(args);
        } catch (IllegalArgumentException e) {
            System.err.println("usage: JdbcProbe URL USER [--describe SCHEMA.TABLE]"
                + " [--query SQL [--params TYPE:VALUE ...]...]..."
                + " [--fetch-size N [--fetch-sample ROWS] --fetch SQL]: "
                + e.getMessage());
            System.exit(2);
            return;
        }
        try {
            run(plan);
        } catch (Exception e) {
            System.err.println("JdbcProbe failed: " + e);
            for (Throwable c = e.getCause(); c != null; c = c.getCause()) {
                System.err.println("  caused by: " + c);
            }
            System.exit(1);
        }
    }

    static Plan parse(String[] args) {
        if (args.length < 2) {
            throw new IllegalArgumentException("URL and USER are required");
        }
        String describe = null, fetch = null;
        int fetchSize = 0, sample = 0;
        List<Query> queries = new ArrayList<>();
        for (int i = 2; i < args.length; i++) {
            String option = args[i];
            if (option.equals("--params")) {
                if (queries.isEmpty()) {
                    throw new IllegalArgumentException("--params before any --query");
                }
                List<String> group = new ArrayList<>();
                while (i + 1 < args.length && !args[i + 1].startsWith("--")) {
                    group.add(args[++i]);
                }
                queries.get(queries.size() - 1).params().add(group);
                continue;
            }
            if (i + 1 >= args.length) {
                throw new IllegalArgumentException(option + " needs a value");
            }
            String value = args[++i];
            switch (option) {
                case "--describe" -> describe = value;
                case "--query" -> queries.add(new Query(value, new ArrayList<>()));
                case "--fetch" -> fetch = value;
                case "--fetch-size" -> fetchSize = Integer.parseInt(value);
                case "--fetch-sample" -> sample = Integer.parseInt(value);
                default -> throw new IllegalArgumentException("unknown option " + option);
            }
        }
        return new Plan(args[0], args[1], describe, queries, fetch, fetchSize, sample);
    }

    static void run(Plan plan) throws Exception {
        Properties props = new Properties();
        props.setProperty("user", plan.user());
        long start = System.nanoTime();
        try (Connection conn = DriverManager.getConnection(plan.url(), props)) {
            DatabaseMetaData meta = conn.getMetaData();
            emit("connected", "product", meta.getDatabaseProductName(),
                "version", meta.getDatabaseProductVersion(),
                "driver", meta.getDriverVersion(), "ms", millis(start));
            start = System.nanoTime();
            listSchemas(meta);
            listTables(meta);
            if (plan.describe() != null) {
                String[] name = plan.describe().split("\\.", 2);
                listColumns(meta, name[0], name[1]);
                listKeys(meta, name[0], name[1]);
            }
            emit("timing", "step", "metadata", "ms", millis(start));
            start = System.nanoTime();
            for (int q = 0; q < plan.queries().size(); q++) {
                runPrepared(conn, q, plan.queries().get(q));
            }
            emit("timing", "step", "prepared", "ms", millis(start));
            if (plan.fetch() != null) {
                start = System.nanoTime();
                fetchAll(conn, plan);
                emit("timing", "step", "fetch", "ms", millis(start));
            }
        }
        emit("done");
    }

    static void listSchemas(DatabaseMetaData meta) throws SQLException {
        try (ResultSet rs = meta.getSchemas()) {
            while (rs.next()) {
                emit("schema", "schema", rs.getString("TABLE_SCHEM"),
                    "catalog", rs.getString("TABLE_CATALOG"));
            }
        }
    }

    static void listTables(DatabaseMetaData meta) throws SQLException {
        try (ResultSet rs = meta.getTables(null, null, "%", TABLE_TYPES)) {
            while (rs.next()) {
                emit("table", "schema", rs.getString("TABLE_SCHEM"),
                    "name", rs.getString("TABLE_NAME"), "type", rs.getString("TABLE_TYPE"),
                    "remarks", rs.getString("REMARKS"));
            }
        }
    }

    static void listColumns(DatabaseMetaData meta, String schema, String table)
            throws SQLException {
        try (ResultSet rs = meta.getColumns(null, schema, table, "%")) {
            while (rs.next()) {
                emit("column", "schema", rs.getString("TABLE_SCHEM"),
                    "table", rs.getString("TABLE_NAME"), "name", rs.getString("COLUMN_NAME"),
                    "position", rs.getInt("ORDINAL_POSITION"),
                    "jdbc_type", typeName(rs.getInt("DATA_TYPE")),
                    "type_name", rs.getString("TYPE_NAME"),
                    "size", rs.getInt("COLUMN_SIZE"), "digits", rs.getInt("DECIMAL_DIGITS"),
                    "nullable", rs.getString("IS_NULLABLE"), "remarks", rs.getString("REMARKS"));
            }
        }
    }

    /** Primary keys, foreign keys and indexes, which DBeaver and Metabase read per table. */
    static void listKeys(DatabaseMetaData meta, String schema, String table)
            throws SQLException {
        try (ResultSet rs = meta.getPrimaryKeys(null, schema, table)) {
            while (rs.next()) {
                emit("primary_key", "column", rs.getString("COLUMN_NAME"),
                    "seq", rs.getInt("KEY_SEQ"), "name", rs.getString("PK_NAME"));
            }
        }
        try (ResultSet rs = meta.getImportedKeys(null, schema, table)) {
            while (rs.next()) {
                emit("imported_key", "column", rs.getString("FKCOLUMN_NAME"),
                    "references", rs.getString("PKTABLE_NAME"));
            }
        }
        try (ResultSet rs = meta.getIndexInfo(null, schema, table, false, true)) {
            while (rs.next()) {
                emit("index", "name", rs.getString("INDEX_NAME"),
                    "column", rs.getString("COLUMN_NAME"));
            }
        }
    }

    /** One PreparedStatement, executed once per parameter group (pgjdbc switches to a named
     * server-side statement and binary results after prepareThreshold = 5 executions). */
    static void runPrepared(Connection conn, int q, Query query) throws SQLException {
        List<List<String>> groups = query.params();
        try (PreparedStatement ps = conn.prepareStatement(query.sql())) {
            ParameterMetaData pm = ps.getParameterMetaData();
            for (int i = 1; i <= pm.getParameterCount(); i++) {
                emit("parameter", "query", q, "index", i,
                    "jdbc_type", typeName(pm.getParameterType(i)),
                    "type_name", pm.getParameterTypeName(i));
            }
            for (int run = 0; run < groups.size(); run++) {
                List<String> group = groups.get(run);
                for (int i = 0; i < group.size(); i++) {
                    bind(ps, i + 1, group.get(i));
                }
                try (ResultSet rs = ps.executeQuery()) {
                    ResultSetMetaData md = rs.getMetaData();
                    if (run == 0) {
                        emitResultColumns(q, md);
                    }
                    while (rs.next()) {
                        emit("row", "query", q, "run", run, "values", rowValues(rs, md));
                    }
                }
            }
        }
    }

    static void bind(PreparedStatement ps, int index, String typed) throws SQLException {
        int colon = typed.indexOf(':');
        if (colon < 0) {
            throw new IllegalArgumentException("parameter " + typed + " is not TYPE:VALUE");
        }
        String type = typed.substring(0, colon), value = typed.substring(colon + 1);
        switch (type) {
            case "int" -> ps.setInt(index, Integer.parseInt(value));
            case "long" -> ps.setLong(index, Long.parseLong(value));
            case "string" -> ps.setString(index, value);
            case "date" -> ps.setDate(index, java.sql.Date.valueOf(value));
            case "timestamp" -> ps.setTimestamp(index, java.sql.Timestamp.valueOf(value));
            case "timestamptz" -> ps.setObject(index, OffsetDateTime.parse(value));
            case "decimal" -> ps.setBigDecimal(index, new BigDecimal(value));
            case "double" -> ps.setDouble(index, Double.parseDouble(value));
            case "boolean" -> ps.setBoolean(index, Boolean.parseBoolean(value));
            case "null" -> ps.setNull(index, Types.VARCHAR);
            default -> throw new IllegalArgumentException("unknown parameter type " + type);
        }
    }

    static void emitResultColumns(int q, ResultSetMetaData md) throws SQLException {
        for (int i = 1; i <= md.getColumnCount(); i++) {
            emit("result_column", "query", q, "name", md.getColumnLabel(i),
                "jdbc_type", typeName(md.getColumnType(i)), "type_name", md.getColumnTypeName(i),
                "precision", md.getPrecision(i), "scale", md.getScale(i));
        }
    }

    /** Every row of the fetch query through a cursor: autocommit off and a fetch size; the
     * first {@code sample} rows are printed too. */
    static void fetchAll(Connection conn, Plan plan) throws Exception {
        conn.setAutoCommit(false);
        MessageDigest digest = MessageDigest.getInstance("SHA-256");
        long rows = 0;
        List<String> columns = new ArrayList<>();
        try (Statement st = conn.createStatement()) {
            st.setFetchSize(plan.fetchSize());
            try (ResultSet rs = st.executeQuery(plan.fetch())) {
                ResultSetMetaData md = rs.getMetaData();
                for (int i = 1; i <= md.getColumnCount(); i++) {
                    columns.add(md.getColumnLabel(i));
                }
                while (rs.next()) {
                    List<String> values = rowValues(rs, md);
                    if (rows < plan.sample()) {
                        emit("fetch_row", "index", rows, "values", values);
                    }
                    List<String> fields = new ArrayList<>();
                    for (String value : values) {
                        fields.add(value == null ? "\\N" : value);
                    }
                    String line = String.join("\t", fields) + "\n";
                    digest.update(line.getBytes(StandardCharsets.UTF_8));
                    rows++;
                }
            }
        }
        conn.commit();
        emit("fetch", "columns", columns, "rows", rows, "fetch_size", plan.fetchSize(),
            "sha256", HexFormat.of().formatHex(digest.digest()));
    }

    static List<String> rowValues(ResultSet rs, ResultSetMetaData md) throws SQLException {
        List<String> values = new ArrayList<>(md.getColumnCount());
        for (int i = 1; i <= md.getColumnCount(); i++) {
            boolean zoned = md.getColumnTypeName(i).equals("timestamptz");
            values.add(canonical(rs, i, md.getColumnType(i), zoned));
        }
        return values;
    }

    /** A value in the canonical text of its JDBC type (null for SQL NULL). */
    static String canonical(ResultSet rs, int i, int type, boolean zoned) throws SQLException {
        String text = switch (type) {
            case Types.BIGINT, Types.INTEGER, Types.SMALLINT, Types.TINYINT ->
                Long.toString(rs.getLong(i));
            case Types.NUMERIC, Types.DECIMAL -> {
                BigDecimal d = rs.getBigDecimal(i);
                yield d == null ? null : d.toPlainString();
            }
            case Types.DOUBLE, Types.FLOAT, Types.REAL -> exact(rs.getDouble(i));
            case Types.BOOLEAN, Types.BIT -> Boolean.toString(rs.getBoolean(i));
            case Types.DATE -> {
                LocalDate d = rs.getObject(i, LocalDate.class);
                yield d == null ? null : d.toString();
            }
            case Types.TIMESTAMP -> {
                if (zoned) {
                    OffsetDateTime t = rs.getObject(i, OffsetDateTime.class);
                    yield t == null ? null : t.withOffsetSameInstant(ZoneOffset.UTC).format(ZONED);
                }
                LocalDateTime t = rs.getObject(i, LocalDateTime.class);
                yield t == null ? null : t.format(TIMESTAMP);
            }
            default -> rs.getString(i);
        };
        return rs.wasNull() ? null : text;
    }

    /** A double's exact decimal value (every binary double has one), or NaN / ±Infinity. */
    static String exact(double value) {
        if (Double.isNaN(value) || Double.isInfinite(value)) {
            return Double.toString(value);
        }
        return new BigDecimal(value).toPlainString();
    }

    static String typeName(int type) {
        try {
            return JDBCType.valueOf(type).getName();
        } catch (IllegalArgumentException e) {
            return Integer.toString(type);
        }
    }

    static double millis(long start) {
        return Math.round((System.nanoTime() - start) / 1e5) / 10.0;
    }

    // ------------------------------------------------------------------ JSON lines

    /** Print {"kind": kind, key: value, ...} on one line. */
    static void emit(String kind, Object... pairs) {
        StringBuilder out = new StringBuilder("{\"kind\": ").append(json(kind));
        for (int i = 0; i < pairs.length; i += 2) {
            out.append(", ").append(json(pairs[i])).append(": ").append(json(pairs[i + 1]));
        }
        System.out.println(out.append('}'));
    }

    static String json(Object value) {
        if (value == null) {
            return "null";
        }
        if (value instanceof Number || value instanceof Boolean) {
            return value.toString();
        }
        if (value instanceof List<?> list) {
            List<String> items = new ArrayList<>();
            for (Object item : list) {
                items.add(json(item));
            }
            return "[" + String.join(", ", items) + "]";
        }
        StringBuilder out = new StringBuilder("\"");
        for (char c : value.toString().toCharArray()) {
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\t' -> out.append("\\t");
                case '\r' -> out.append("\\r");
                default -> {
                    if (c < 0x20 || c > 0x7e) { // ASCII output, whatever the JVM's encoding
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        return out.append('"').toString();
    }
}
