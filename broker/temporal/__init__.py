"""Temporal history (GS CIM 009 clause 5.6.11-5.6.18, 5.7.3-5.7.4): every attribute instance ever written.

* ``tables``: the per-tenant tables (``attr_instances`` partitioned by month on PostgreSQL's native range
  partitioning, ``temporal_entities``), partitions created ahead and dropped after the retention.
* ``record``: the history rows of a write (its instances, deletion markers, the scope's instances).
* ``recorder``: records the history of core API writes from the change log, after they have answered, in
  bulk and exactly once; every temporal API request first waits for it to catch up, so an acknowledged
  write is in the history the next temporal request sees.
* ``params``: the temporal query parameters (timerel, timeproperty, lastN, aggregation).
* ``store``: reads (windows, lastN, aggregation in SQL) and the temporal API's own writes.
* ``render``: the temporal representation (normalized, temporalValues, aggregatedValues).
"""
