"""Context Source Registrations (GS CIM 009 5.2.9, 5.9, 5.10): what a registration may hold (``model``), how
a query matches registrations (``match``) and where they are kept (``store``). The HTTP side is
``broker.api.registrations``. Registrations are stored and queried; requests are not yet forwarded to the
registered context sources (distributed operations).
"""
