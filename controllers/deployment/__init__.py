"""Deployment controller: rolls ReplicaSets (RollingUpdate, Recreate), keeps revisions, scales
proportionally, and reports the Progressing/Available conditions ``kubectl rollout status`` reads."""

from controllers.deployment.controller import DeploymentController

__all__ = ["DeploymentController"]
