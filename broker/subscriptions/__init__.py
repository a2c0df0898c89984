"""Subscriptions (GS CIM 009 clauses 5.2.12, 5.8): the model (validation of create / update payloads into the
stored form, rendering back) and the store (``ngsild.subscriptions``, change announcements to every broker
process). The dispatcher that acts on them lives in ``broker.notify``."""
