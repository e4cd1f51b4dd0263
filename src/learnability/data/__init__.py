"""Data files of the package: the McCulloch quantile table of symmetric alpha-stable laws (read by stable.py)."""
