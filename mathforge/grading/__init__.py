"""Grading: answer extraction, normalisation, equivalence, the code sandbox and metrics.

Imports only the standard library, sympy and math-verify: no torch, so it stays usable alone and fast.
"""
