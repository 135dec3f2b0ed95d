"""Constraint families of the matching model, one module each."""
