"""Figures, tables, the report page and the reported-vs-reproduced comparison."""
