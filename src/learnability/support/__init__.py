"""Support for the book: tables, provenance, benchmarks, build logs and the two Sphinx extensions."""
