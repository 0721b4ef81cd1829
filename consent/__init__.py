"""The consent decision engine: pure functions over consent records and a request.

Decisions are built in the consent issue; this package stays free of I/O, Flask and SQLAlchemy.
"""
