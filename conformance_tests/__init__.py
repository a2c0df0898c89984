"""Black-box NGSI-LD (ETSI GS CIM 009) conformance tests: HTTP only, runnable against any broker URL."""
