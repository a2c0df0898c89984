"""The NGSI-LD information model: input validation into the internal form, update rules, representations.

Internal entity form (what ``broker.store`` persists and every later consumer reads)::

    id       the entity id (an absolute URI)                           -> column ``id``
    types    expanded type IRIs, in the order given                    -> column ``types``
    scopes   scope strings or None                                     -> column ``scopes``
    attrs    {attribute IRI: [instance, ...]}                          -> column ``attrs`` (jsonb)

An attribute is a list of instances, one per ``datasetId`` (the default instance, without datasetId, first).
An instance is a dict holding:

* ``type``: ``Property`` | ``Relationship`` | ``GeoProperty`` | ``LanguageProperty`` | ``VocabProperty`` |
  ``JsonProperty`` | ``ListProperty`` | ``ListRelationship``;
* its value member, by type: ``value`` (Property: the *internal value form* of ``broker.jsonld``, i.e.
  JSON-LD expanded keys but the user's array shape; GeoProperty: the GeoJSON geometry as given),
  ``object`` (+ optional ``objectType``, expanded), ``languageMap``, ``vocab`` (expanded IRIs), ``json``
  (raw JSON), ``valueList`` (items in the internal value form), ``objectList`` (URIs);
* optional ``datasetId``, ``observedAt``, ``unitCode``; broker-kept ``modifiedAt`` and ``createdAt``, the
  latter omitted while it equals ``modifiedAt`` (an instance never modified since its creation: most
  instances; it saves a fifth of the stored bytes and of PostgreSQL's parse time on bulk writes);
* sub-attributes under their expanded IRI keys (one instance each). Core member names never contain ``:``
  and expanded IRIs always do, so the two never collide.

Timestamps are ISO 8601 UTC strings (``broker.model.values``).
"""
