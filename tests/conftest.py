"""Shared fixtures. Its presence also puts tests/ on sys.path (pytest's prepend import mode), so the
test modules in the sub-folders, which mirror backends/r53sigma/, import `support` as before."""
