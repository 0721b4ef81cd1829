"""Spreadsheet exports: reading CSV text of unknown encoding and delimiter, and the mapping
file that turns a row into a shared document and back. :mod:`adapters.csv_adapter` puts them
together."""
