"""An NGSI-LD context broker (ETSI GS CIM 009) in Python over PostgreSQL.

Packages, one per concern:

* ``broker.api``: HTTP routes and thin handlers (parse -> domain -> store -> render), content negotiation;
* ``broker.jsonld``: @context resolution (shipped, local, hosted, remote) and fast term expansion/compaction;
* ``broker.model``: the NGSI-LD information model: validating input into the internal entity form, the
  update/merge/replace rules, and the output representations;
* ``broker.store``: PostgreSQL: pool, schema migrations, tenants, entity storage and the change log.
"""

__version__ = "0.1.0"
