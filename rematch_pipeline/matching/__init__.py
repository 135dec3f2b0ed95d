"""Matching engine: data → build → solve → extract, a Pyomo integer model solved with HiGHS."""
