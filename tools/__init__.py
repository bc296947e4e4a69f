"""Workstation toolchain (``inspect-model``): synthesise data, train, convert, evaluate."""
