"""Kubernetes wire shapes shared by server and clients: errors, the JSON codec, the resource table.

No I/O here: pure data and functions.
"""
