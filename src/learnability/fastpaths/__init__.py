"""Isolated fast paths, each with its plain reference beside it and a test of agreement."""
