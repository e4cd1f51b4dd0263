"""The header every chapter of the book starts with (a MyST Markdown notebook), for tests that write chapters."""

MYST_HEADER = """---
jupytext:
  text_representation: {extension: .md, format_name: myst, format_version: 0.13}
kernelspec: {display_name: Python 3, language: python, name: python3}
---
"""
