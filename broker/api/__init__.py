"""The HTTP API under ``/ngsi-ld/v1``: routes, thin handlers, content negotiation and error rendering."""
