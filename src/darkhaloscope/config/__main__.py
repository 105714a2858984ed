"""``python -m darkhaloscope.config``: every config field with its unit, default and documentation."""

from .core import describe

for name, unit, doc, default in describe():
    print(f"{name:45s} {unit:14s} {default!r:28s} {doc}")
