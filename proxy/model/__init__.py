"""Plain data, no I/O: the values the proxy hands out (token, code and handle forms, their
hashes for keys and logs) and the records it keeps for them in the store.

Imports nothing of the proxy or of ``federation``: every other room may import it.
"""
