"""Storage of API objects: the only package that talks to etcd (and a memory store for unit tests)."""
