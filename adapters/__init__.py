"""Format adapters (native JSON, CSV, Primero, FHIR) behind one interface.

Adapters depend only on ``schemas``.
"""
