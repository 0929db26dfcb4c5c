"""kubelite: a small Kubernetes in Python that really runs containers.

The library part of this package (everything but ``kubelite.cli``) is shared by every component:
API shapes and errors (``kubelite.api``), the REST client, informers, work queues, the controller
runner and the event recorder. It imports no component. ``kubelite.cli`` is the face on top.
"""

__version__ = "0.1.0"

# The Kubernetes release whose API kubelite speaks (kubectl's dispatcher picks its client by it).
KUBERNETES_VERSION = "v1.32.4"
GIT_VERSION = f"{KUBERNETES_VERSION}-kubelite"
