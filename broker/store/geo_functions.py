"""The SQL side of the geo-queries (GS CIM 009 4.10): pure IMMUTABLE functions in the ``ngsild`` schema, no
extension needed (``broker.query.geo`` and ``broker.query.geo_sql`` compile queries to them and document
their semantics). Global migration 3 of ``broker.store.schema`` creates them; like every shipped migration
this text is never edited (a change is a new migration).
"""

GEO_FUNCTIONS = """
-- Geo-queries (GS CIM 009 4.10): the SQL side of broker.query.geo / geo_sql (semantics documented there).
-- Pure IMMUTABLE SQL functions, no extension needed; geo_box is an index expression and never raises.
CREATE TYPE ngsild.geo AS (
    dim integer,                                -- 0 points, 1 lines, 2 polygons; NULL: not a geometry
    vx float8[], vy float8[],                   -- every position (vertex)
    x1 float8[], y1 float8[], x2 float8[], y2 float8[],  -- segments of the lines and of the polygon rings
    lf boolean[],                               -- rings: the polygon interior is left of (x1,y1)->(x2,y2)
    ex float8[], ey float8[]                    -- lines: the boundary points (mod-2 rule)
);

-- A coordinate as the predicates use it: magnitudes below 1e-30 degrees are taken as 0, so that no product of
-- differences underflows (PostgreSQL raises "value out of range: underflow" instead of rounding to 0).
CREATE FUNCTION ngsild.geo_snap(c float8) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN abs(c) < 1e-30::float8 THEN 0::float8 ELSE c END;

-- The positions of one sequence (a LineString's coordinates, a ring, a MultiPoint's coordinates), in order.
-- Total over any jsonb: what is not a position in range is skipped.
CREATE FUNCTION ngsild.geo_positions(seq jsonb) RETURNS TABLE (i bigint, x float8, y float8)
LANGUAGE sql IMMUTABLE PARALLEL SAFE ROWS 16 AS $$
    SELECT e.n, ngsild.geo_snap((e.p ->> 0)::float8), ngsild.geo_snap((e.p ->> 1)::float8)
    FROM jsonb_path_query(seq, 'strict $[*] ? (@.type() == "array" && @[0].type() == "number" && @[1].type() == "number" && @[0] >= -180 && @[0] <= 180 && @[1] >= -90 && @[1] <= 90)', '{}', true) WITH ORDINALITY AS e(p, n)
$$;

-- The position sequences of a geometry: s numbers them, r is the ring's index in its polygon (1: the
-- exterior ring), 0 for lines.
CREATE FUNCTION ngsild.geo_sequences(g jsonb) RETURNS TABLE (s bigint, r bigint, seq jsonb)
LANGUAGE sql IMMUTABLE PARALLEL SAFE ROWS 4 AS $$
    SELECT row_number() OVER (), t.r, t.seq FROM (
        SELECT 0::bigint AS r, g -> 'coordinates' AS seq WHERE g ->> 'type' = 'LineString'
        UNION ALL
        SELECT 0, e.l FROM jsonb_path_query(g, 'strict $.coordinates[*]', '{}', true) AS e(l)
        WHERE g ->> 'type' = 'MultiLineString'
        UNION ALL
        SELECT e.n, e.l FROM jsonb_path_query(g, 'strict $.coordinates[*]', '{}', true) WITH ORDINALITY AS e(l, n)
        WHERE g ->> 'type' = 'Polygon'
        UNION ALL
        SELECT e.n, e.l FROM jsonb_path_query(g, 'strict $.coordinates[*]', '{}', true) AS p(poly),
            jsonb_path_query(p.poly, 'strict $[*]', '{}', true) WITH ORDINALITY AS e(l, n)
        WHERE g ->> 'type' = 'MultiPolygon'
    ) t
$$;

-- A GeoJSON geometry in the form the predicates below work on (NULL dim if g is not a geometry).
-- STABLE, though it is immutable: the planner would otherwise run it on a constant query geometry while
-- planning every execution of a statement (it is never part of an index expression).
CREATE FUNCTION ngsild.geo_prep(g jsonb) RETURNS ngsild.geo
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    WITH pts AS (
        SELECT q.s, q.r, p.i, p.x, p.y FROM ngsild.geo_sequences(g) q, ngsild.geo_positions(q.seq) p
    ), seg AS (
        SELECT * FROM (
            SELECT s, r, x AS x1, y AS y1, lead(x) OVER w AS x2, lead(y) OVER w AS y2
            FROM pts WINDOW w AS (PARTITION BY s ORDER BY i)
        ) t WHERE x2 IS NOT NULL
    ), ring AS (
        SELECT s, sum(x1 * y2 - x2 * y1) AS area FROM seg WHERE r > 0 GROUP BY s
    ), ends AS (
        SELECT x, y FROM (
            SELECT x, y, i, min(i) OVER (PARTITION BY s) AS lo, max(i) OVER (PARTITION BY s) AS hi FROM pts WHERE r = 0
        ) t WHERE i = lo OR i = hi
        GROUP BY x, y HAVING count(*) % 2 = 1
    ), verts AS (
        SELECT x, y FROM pts
        UNION ALL
        SELECT x, y FROM ngsild.geo_positions(jsonb_build_array(g -> 'coordinates')) WHERE g ->> 'type' = 'Point'
        UNION ALL
        SELECT x, y FROM ngsild.geo_positions(g -> 'coordinates') WHERE g ->> 'type' = 'MultiPoint'
    )
    SELECT ROW(
        CASE g ->> 'type' WHEN 'Point' THEN 0 WHEN 'MultiPoint' THEN 0 WHEN 'LineString' THEN 1
            WHEN 'MultiLineString' THEN 1 WHEN 'Polygon' THEN 2 WHEN 'MultiPolygon' THEN 2 END,
        v.vx, v.vy, e.x1, e.y1, e.x2, e.y2, e.lf, b.ex, b.ey)::ngsild.geo
    FROM (SELECT coalesce(array_agg(x), '{}') AS vx, coalesce(array_agg(y), '{}') AS vy FROM verts) v,
        (SELECT coalesce(array_agg(seg.x1), '{}') AS x1, coalesce(array_agg(seg.y1), '{}') AS y1,
                coalesce(array_agg(seg.x2), '{}') AS x2, coalesce(array_agg(seg.y2), '{}') AS y2,
                coalesce(array_agg(CASE WHEN seg.r = 1 THEN ring.area > 0 WHEN seg.r > 1 THEN ring.area < 0 END),
                         '{}') AS lf
         FROM seg LEFT JOIN ring USING (s)) e,
        (SELECT coalesce(array_agg(x), '{}') AS ex, coalesce(array_agg(y), '{}') AS ey FROM ends) b
$$;

-- Is (px, py) on the closed segment (x1, y1)-(x2, y2)? Exact in floating point (no tolerance).
CREATE FUNCTION ngsild.geo_on(px float8, py float8, x1 float8, y1 float8, x2 float8, y2 float8) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN px >= least(x1, x2) AND px <= greatest(x1, x2) AND py >= least(y1, y2) AND py <= greatest(y1, y2)
    AND (x2 - x1) * (py - y1) = (px - x1) * (y2 - y1);

-- Where (px, py) is relative to g: 1 interior, 0 boundary, -1 exterior (OGC point location: a point's
-- interior is itself; a line's boundary is its end points by the mod-2 rule; a polygon's boundary its rings).
CREATE FUNCTION ngsild.geo_locate(px float8, py float8, g ngsild.geo) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN (g).dim = 0 THEN
        CASE WHEN EXISTS (SELECT FROM unnest((g).vx, (g).vy) v(x, y) WHERE v.x = px AND v.y = py) THEN 1 ELSE -1 END
    WHEN EXISTS (SELECT FROM unnest((g).x1, (g).y1, (g).x2, (g).y2) s(x1, y1, x2, y2)
                 WHERE ngsild.geo_on(px, py, s.x1, s.y1, s.x2, s.y2)) THEN
        CASE WHEN (g).dim = 2 OR EXISTS (SELECT FROM unnest((g).ex, (g).ey) e(x, y) WHERE e.x = px AND e.y = py)
             THEN 0 ELSE 1 END
    WHEN (g).dim = 2 AND (
        SELECT count(*) FROM unnest((g).x1, (g).y1, (g).x2, (g).y2) s(x1, y1, x2, y2)
        WHERE (s.y1 > py) <> (s.y2 > py)
          AND ((s.x2 - s.x1) * (py - s.y1) > (px - s.x1) * (s.y2 - s.y1)) = (s.y2 > s.y1)) % 2 = 1 THEN 1
    ELSE -1
END;

-- Does some segment of a meet some segment of b: touch, cross or overlap (proper = false), or cross it at a
-- point interior to both (proper = true), optionally at no vertex of b (off_vertex)? Orientation signs multiply to <= 0 when the ends are on both
-- sides or on the line, to -1 only when strictly on both sides.
CREATE FUNCTION ngsild.geo_meet(a ngsild.geo, b ngsild.geo, proper boolean, off_vertex boolean = false)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN EXISTS (
    SELECT FROM unnest((a).x1, (a).y1, (a).x2, (a).y2) s(x1, y1, x2, y2),
                unnest((b).x1, (b).y1, (b).x2, (b).y2) t(x1, y1, x2, y2)
    WHERE greatest(least(s.x1, s.x2), least(t.x1, t.x2)) <= least(greatest(s.x1, s.x2), greatest(t.x1, t.x2))
      AND greatest(least(s.y1, s.y2), least(t.y1, t.y2)) <= least(greatest(s.y1, s.y2), greatest(t.y1, t.y2))
      AND sign((s.x2 - s.x1) * (t.y1 - s.y1) - (t.x1 - s.x1) * (s.y2 - s.y1))
        * sign((s.x2 - s.x1) * (t.y2 - s.y1) - (t.x2 - s.x1) * (s.y2 - s.y1)) <= CASE WHEN proper THEN -1 ELSE 0 END
      AND sign((t.x2 - t.x1) * (s.y1 - t.y1) - (s.x1 - t.x1) * (t.y2 - t.y1))
        * sign((t.x2 - t.x1) * (s.y2 - t.y1) - (s.x2 - t.x1) * (t.y2 - t.y1)) <= CASE WHEN proper THEN -1 ELSE 0 END
      AND NOT (off_vertex AND EXISTS (SELECT FROM unnest((b).vx, (b).vy) v(x, y)
                                      WHERE ngsild.geo_on(v.x, v.y, s.x1, s.y1, s.x2, s.y2)
                                        AND ngsild.geo_on(v.x, v.y, t.x1, t.y1, t.x2, t.y2))));

CREATE FUNCTION ngsild.geo_cross(a ngsild.geo, b ngsild.geo) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN ngsild.geo_meet(a, b, false);

CREATE FUNCTION ngsild.geo_proper(a ngsild.geo, b ngsild.geo) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN ngsild.geo_meet(a, b, true);

-- Does some segment of a cross an edge of b properly at a point that is not a vertex of b (where a line leaves
-- a valid polygonal b: the other side of that edge is exterior; at a vertex, another polygon of a MultiPolygon
-- or a hole may touch)?
CREATE FUNCTION ngsild.geo_exits(a ngsild.geo, b ngsild.geo) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN ngsild.geo_meet(a, b, true, true);

-- The segments of a cut at the vertices of b lying inside them: where each piece lies relative to b.
-- loc: 1 interior, 0 boundary, -1 exterior of b (a piece on a segment of b: 0 if b is polygonal, 1 if
-- lineal; any other piece is exterior to a point or line b, even one crossing b at its midpoint); same: for a piece on a ring of b, whether the interiors of a and b are on the same side of it.
-- Without proper crossings (geo_proper) the inside of a piece is all in one of these places.
CREATE FUNCTION ngsild.geo_pieces(a ngsild.geo, b ngsild.geo) RETURNS TABLE (loc integer, same boolean)
LANGUAGE sql IMMUTABLE PARALLEL SAFE ROWS 32 AS $$
    WITH s AS (
        SELECT * FROM unnest((a).x1, (a).y1, (a).x2, (a).y2, (a).lf) WITH ORDINALITY u(x1, y1, x2, y2, lf, k)
    ), cut AS (
        SELECT k, x1 AS x, y1 AS y FROM s
        UNION SELECT k, x2, y2 FROM s
        UNION SELECT s.k, v.x, v.y FROM s, unnest((b).vx, (b).vy) v(x, y)
              WHERE ngsild.geo_on(v.x, v.y, s.x1, s.y1, s.x2, s.y2)
    ), piece AS (
        SELECT * FROM (
            SELECT k, x, y, lead(x) OVER w AS xn, lead(y) OVER w AS yn FROM cut WINDOW w AS (PARTITION BY k ORDER BY x, y)
        ) t WHERE xn IS NOT NULL
    )
    SELECT CASE WHEN o.hit THEN CASE WHEN (b).dim = 2 THEN 0 ELSE 1 END
                WHEN (b).dim < 2 THEN -1  -- off b's segments: meets a point or line b at isolated points only
                ELSE ngsild.geo_locate((p.x + p.xn) / 2, (p.y + p.yn) / 2, b) END,
           o.same
    FROM piece p JOIN s USING (k)
    CROSS JOIN LATERAL (
        SELECT count(*) > 0 AS hit,
               bool_or((s.lf = t.lf) = ((s.x2 - s.x1) * (t.x2 - t.x1) + (s.y2 - s.y1) * (t.y2 - t.y1) > 0)) AS same
        FROM unnest((b).x1, (b).y1, (b).x2, (b).y2, (b).lf) t(x1, y1, x2, y2, lf)
        WHERE ngsild.geo_on(p.x, p.y, t.x1, t.y1, t.x2, t.y2) AND ngsild.geo_on(p.xn, p.yn, t.x1, t.y1, t.x2, t.y2)
    ) o
$$;

-- OGC Simple Features relations (as ST_Intersects, ST_Within, ST_Equals, ST_Overlaps), planar.
CREATE FUNCTION ngsild.geo_intersects(a ngsild.geo, b ngsild.geo) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN EXISTS (SELECT FROM unnest((a).vx, (a).vy) v(x, y) WHERE ngsild.geo_locate(v.x, v.y, b) >= 0)
    OR EXISTS (SELECT FROM unnest((b).vx, (b).vy) v(x, y) WHERE ngsild.geo_locate(v.x, v.y, a) >= 0)
    OR ngsild.geo_cross(a, b);

-- Is a a subset of b (closed sets: ST_CoveredBy)? Every vertex of a in b, and: lines over lines, every piece of a
-- on a segment of b; lines in polygons, no exit (geo_exits) and no piece outside; polygons, no proper crossing,
-- no piece of a outside b, no piece of b's rings inside a, and some piece of a in b's interior or on b's
-- boundary with both interiors on the same side.
CREATE FUNCTION ngsild.geo_covered(a ngsild.geo, b ngsild.geo) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (a).dim <= (b).dim AND cardinality((a).vx) > 0
    AND NOT EXISTS (SELECT FROM unnest((a).vx, (a).vy) v(x, y) WHERE ngsild.geo_locate(v.x, v.y, b) < 0)
    AND ((a).dim = 0 OR (
        CASE WHEN (b).dim < 2 THEN true WHEN (a).dim = 1 THEN NOT ngsild.geo_exits(a, b)
             ELSE NOT ngsild.geo_proper(a, b) END
        AND NOT EXISTS (SELECT FROM ngsild.geo_pieces(a, b) p WHERE p.loc < 0)
        AND ((a).dim = 1 OR (
            NOT EXISTS (SELECT FROM ngsild.geo_pieces(b, a) p WHERE p.loc = 1)
            AND EXISTS (SELECT FROM ngsild.geo_pieces(a, b) p WHERE p.loc = 1 OR p.same)))));

CREATE FUNCTION ngsild.geo_within(a ngsild.geo, b ngsild.geo) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ngsild.geo_covered(a, b) AND CASE (a).dim
    WHEN 0 THEN EXISTS (SELECT FROM unnest((a).vx, (a).vy) v(x, y) WHERE ngsild.geo_locate(v.x, v.y, b) = 1)
    WHEN 1 THEN (b).dim = 1 OR EXISTS (SELECT FROM ngsild.geo_pieces(a, b) p WHERE p.loc = 1)
    ELSE true END;

CREATE FUNCTION ngsild.geo_equals(a ngsild.geo, b ngsild.geo) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (a).dim = (b).dim AND ngsild.geo_covered(a, b) AND ngsild.geo_covered(b, a);

CREATE FUNCTION ngsild.geo_overlaps(a ngsild.geo, b ngsild.geo) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (a).dim = (b).dim AND CASE (a).dim
        WHEN 0 THEN EXISTS (SELECT FROM unnest((a).vx, (a).vy) v(x, y) WHERE ngsild.geo_locate(v.x, v.y, b) = 1)
        WHEN 1 THEN EXISTS (SELECT FROM ngsild.geo_pieces(a, b) p WHERE p.loc = 1)
        ELSE ngsild.geo_proper(a, b) OR EXISTS (SELECT FROM ngsild.geo_pieces(a, b) p WHERE p.loc = 1 OR p.same)
            OR EXISTS (SELECT FROM ngsild.geo_pieces(b, a) p WHERE p.loc = 1) END
    AND NOT ngsild.geo_covered(a, b) AND NOT ngsild.geo_covered(b, a);

-- Great-circle distance in metres between two lon/lat positions (haversine on the sphere of radius
-- 6371008.7714150598 m, the mean radius (2a + b) / 3 of the WGS 84 ellipsoid).
CREATE FUNCTION ngsild.geo_hav(x1 float8, y1 float8, x2 float8, y2 float8) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN 12742017.5428301196::float8 * asin(least(1::float8, sqrt(
    sin(radians(y2 - y1) / 2) ^ 2 + cos(radians(y1)) * cos(radians(y2)) * sin(radians(x2 - x1) / 2) ^ 2)));

-- Distance in metres from (px, py) to the minor great-circle arc (x1, y1)-(x2, y2).
CREATE FUNCTION ngsild.geo_arc(px float8, py float8, x1 float8, y1 float8, x2 float8, y2 float8) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN nn > 0 AND qx * (ny * az - nz * ay) + qy * (nz * ax - nx * az) + qz * (nx * ay - ny * ax) >= 0
                    AND qx * (by_ * nz - bz * ny) + qy * (bz * nx - bx * nz) + qz * (bx * ny - by_ * nx) >= 0
        THEN 6371008.7714150598::float8 * asin(least(1::float8, abs(qx * nx + qy * ny + qz * nz) / sqrt(nn)))
        ELSE least(ngsild.geo_hav(px, py, x1, y1), ngsild.geo_hav(px, py, x2, y2))
    END
    FROM (SELECT *, nx * nx + ny * ny + nz * nz AS nn FROM (
        SELECT *, ay * bz - az * by_ AS nx, az * bx - ax * bz AS ny, ax * by_ - ay * bx AS nz FROM (
            SELECT cos(radians(y1)) * cos(radians(x1)) AS ax, cos(radians(y1)) * sin(radians(x1)) AS ay,
                   sin(radians(y1)) AS az,
                   cos(radians(y2)) * cos(radians(x2)) AS bx, cos(radians(y2)) * sin(radians(x2)) AS by_,
                   sin(radians(y2)) AS bz,
                   cos(radians(py)) * cos(radians(px)) AS qx, cos(radians(py)) * sin(radians(px)) AS qy,
                   sin(radians(py)) AS qz) v) w) u
$$;

-- Distance in metres between two geometries: 0 if they intersect (planar), else the least distance from a
-- vertex of one to a vertex or a segment (great-circle arc) of the other.
CREATE FUNCTION ngsild.geo_distance(a ngsild.geo, b ngsild.geo) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN ngsild.geo_intersects(a, b) THEN 0::float8 ELSE least(
    (SELECT min(ngsild.geo_hav(v.x, v.y, w.x, w.y)) FROM unnest((a).vx, (a).vy) v(x, y), unnest((b).vx, (b).vy) w(x, y)),
    (SELECT min(ngsild.geo_arc(v.x, v.y, s.x1, s.y1, s.x2, s.y2))
     FROM unnest((a).vx, (a).vy) v(x, y), unnest((b).x1, (b).y1, (b).x2, (b).y2) s(x1, y1, x2, y2)),
    (SELECT min(ngsild.geo_arc(v.x, v.y, s.x1, s.y1, s.x2, s.y2))
     FROM unnest((b).vx, (b).vy) v(x, y), unnest((a).x1, (a).y1, (a).x2, (a).y2) s(x1, y1, x2, y2))) END;

-- Bounding box of the minor great-circle arc (x1, y1)-(x2, y2) (its northernmost / southernmost point may lie
-- between the ends; an arc across the antimeridian spans every longitude).
CREATE FUNCTION ngsild.geo_arc_box(x1 float8, y1 float8, x2 float8, y2 float8) RETURNS box
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT box(
        point(CASE WHEN abs(x2 - x1) > 180 THEN -180 ELSE least(x1, x2) END,
              CASE WHEN nn = 0 THEN CASE WHEN ax * bx + ay * by_ + az * bz < 0 THEN -90 ELSE least(y1, y2) END
                   WHEN nx * ay - ny * ax <= 0 AND bx * ny - by_ * nx <= 0
                   THEN least(y1, y2, 1e-9 - degrees(acos(least(1::float8, abs(nz) / sqrt(nn)))))
                   ELSE least(y1, y2) END),
        point(CASE WHEN abs(x2 - x1) > 180 THEN 180 ELSE greatest(x1, x2) END,
              CASE WHEN nn = 0 THEN CASE WHEN ax * bx + ay * by_ + az * bz < 0 THEN 90 ELSE greatest(y1, y2) END
                   WHEN nx * ay - ny * ax >= 0 AND bx * ny - by_ * nx >= 0
                   THEN greatest(y1, y2, degrees(acos(least(1::float8, abs(nz) / sqrt(nn)))) + 1e-9)
                   ELSE greatest(y1, y2) END))
    FROM (SELECT *, nx * nx + ny * ny + nz * nz AS nn FROM (
        SELECT *, ay * bz - az * by_ AS nx, az * bx - ax * bz AS ny, ax * by_ - ay * bx AS nz FROM (
            SELECT cos(radians(y1)) * cos(radians(x1)) AS ax, cos(radians(y1)) * sin(radians(x1)) AS ay,
                   sin(radians(y1)) AS az,
                   cos(radians(y2)) * cos(radians(x2)) AS bx, cos(radians(y2)) * sin(radians(x2)) AS by_,
                   sin(radians(y2)) AS bz) v) w) u
$$;

CREATE FUNCTION ngsild.geo_box_extended(g jsonb) RETURNS box
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE
    WHEN g ->> 'type' = 'MultiPoint' THEN
        (SELECT box(point(min(x), min(y)), point(max(x), max(y))) FROM ngsild.geo_positions(g -> 'coordinates'))
    WHEN g ->> 'type' IN ('LineString', 'MultiLineString', 'Polygon', 'MultiPolygon') THEN (
        SELECT box(point(min(t.x1), min(t.y1)), point(max(t.x2), max(t.y2))) FROM (
            SELECT ((b)[1])[0] AS x1, ((b)[1])[1] AS y1, ((b)[0])[0] AS x2, ((b)[0])[1] AS y2 FROM (
                SELECT ngsild.geo_arc_box(x, y, xn, yn) AS b FROM (
                    SELECT p.x, p.y, lead(p.x) OVER w AS xn, lead(p.y) OVER w AS yn
                    FROM ngsild.geo_sequences(g) q, ngsild.geo_positions(q.seq) p
                    WINDOW w AS (PARTITION BY q.s ORDER BY p.i)
                ) s WHERE xn IS NOT NULL
                UNION ALL
                SELECT box(point(p.x, p.y)) FROM ngsild.geo_sequences(g) q, ngsild.geo_positions(q.seq) p
            ) u
        ) t)
END;

-- The box the GiST index keeps: every position, and the great-circle arcs between consecutive positions of
-- lines and rings (geo-queries in metres measure to those arcs). NULL for anything but a GeoJSON geometry.
-- Total: never raises, whatever the jsonb (it is an index expression). A plain expression for a Point, so
-- that PostgreSQL inlines it (the index and the query both see the expression, no function call).
CREATE FUNCTION ngsild.geo_box(g jsonb) RETURNS box
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN g ->> 'type' = 'Point' THEN CASE
        WHEN jsonb_typeof(g -> 'coordinates') = 'array'
             AND jsonb_typeof(g -> 'coordinates' -> 0) = 'number' AND jsonb_typeof(g -> 'coordinates' -> 1) = 'number'
             AND g -> 'coordinates' -> 0 BETWEEN '-180' AND '180' AND g -> 'coordinates' -> 1 BETWEEN '-90' AND '90'
        THEN box(point(ngsild.geo_snap((g -> 'coordinates' ->> 0)::float8),
                       ngsild.geo_snap((g -> 'coordinates' ->> 1)::float8))) END
    ELSE ngsild.geo_box_extended(g)
END;
"""

# Global migration 8: geo_bbox, the indexed box, as PL/pgSQL. Inlined, migration 3's geo_box navigated the
# entity document from the top a dozen times per evaluation (``attrs -> IRI -> 0 -> 'value' -> 'coordinates'
# -> 0``, each step a copy): ~4.3 us a row against ~1 us here, measured over 100,000 located entities; and
# PostgreSQL expanded the whole inlined CASE while planning every geo-query (a near query's planning ~2.9 ->
# 0.8 ms). A function that is not inlined is matched to its index as the call itself. A new name rather than a
# replacement: a running process keeps an index's expression as it was inlined when it first read it, and
# would no longer match a replaced function to its index (measured: 600 ms sequential scans until it
# reconnected).
GEO_BBOX = """
CREATE FUNCTION ngsild.geo_bbox(g jsonb) RETURNS box
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    c jsonb;
BEGIN
    -- the same value as geo_box (migration 3) for every jsonb, never raising
    IF g ->> 'type' = 'Point' THEN
        c := g -> 'coordinates';
        IF jsonb_typeof(c) = 'array' AND jsonb_typeof(c -> 0) = 'number' AND jsonb_typeof(c -> 1) = 'number'
           AND c -> 0 BETWEEN '-180' AND '180' AND c -> 1 BETWEEN '-90' AND '90' THEN
            RETURN box(point(ngsild.geo_snap((c ->> 0)::float8), ngsild.geo_snap((c ->> 1)::float8)));
        END IF;
        RETURN NULL;
    END IF;
    RETURN ngsild.geo_box_extended(g);
END
$$;
"""

# Global migration 9: geo_locate, point location, as PL/pgSQL (a Point value's within / intersects /
# disjoint, and inside the relations of other geometries): migration 3's SQL body ran sub-selects over
# unnest, an executor start per call (~11-14 us); the same tests as loops take ~1.4 us. Not an index
# expression, so it is replaced in place.
GEO_LOCATE = """
CREATE OR REPLACE FUNCTION ngsild.geo_locate(px float8, py float8, g ngsild.geo) RETURNS integer
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    k integer;
    n integer;
    inside boolean := false;
BEGIN
    -- geo_locate of migration 3 step by step: the same comparisons in the same floating point (geo_on, a SQL
    -- expression, is inlined into the loop's test)
    IF (g).dim = 0 THEN
        FOR k IN 1 .. coalesce(cardinality((g).vx), 0) LOOP
            IF (g).vx[k] = px AND (g).vy[k] = py THEN RETURN 1; END IF;
        END LOOP;
        RETURN -1;
    END IF;
    n := coalesce(cardinality((g).x1), 0);
    FOR k IN 1 .. n LOOP
        IF ngsild.geo_on(px, py, (g).x1[k], (g).y1[k], (g).x2[k], (g).y2[k]) THEN
            IF (g).dim = 2 THEN RETURN 0; END IF;
            FOR j IN 1 .. coalesce(cardinality((g).ex), 0) LOOP
                IF (g).ex[j] = px AND (g).ey[j] = py THEN RETURN 0; END IF;
            END LOOP;
            RETURN 1;
        END IF;
    END LOOP;
    IF (g).dim = 2 THEN
        FOR k IN 1 .. n LOOP
            IF ((g).y1[k] > py) <> ((g).y2[k] > py)
               AND (((g).x2[k] - (g).x1[k]) * (py - (g).y1[k]) > (px - (g).x1[k]) * ((g).y2[k] - (g).y1[k]))
                   = ((g).y2[k] > (g).y1[k]) THEN
                inside := NOT inside;
            END IF;
        END LOOP;
        IF inside THEN RETURN 1; END IF;
    END IF;
    RETURN -1;
END
$$;
"""

# Tenant migration 6: the indexes on geo_box are replaced by indexes on geo_bbox, which the index advisor
# builds when queries ask for them (broker.store.indexes); the old ones would only slow writes down.
DROP_GEO_BOX_INDEXES = """
DO $$
DECLARE
    ix record;
BEGIN
    FOR ix IN SELECT indexname FROM pg_indexes WHERE schemaname = '{schema}' AND tablename = 'entities'
                                                 AND indexdef LIKE '%ngsild.geo_box(%' LOOP
        EXECUTE format('DROP INDEX %I.%I', '{schema}', ix.indexname);
    END LOOP;
END
$$;
"""
