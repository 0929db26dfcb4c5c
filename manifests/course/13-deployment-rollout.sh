#!/bin/sh
# Roll out version 2, watch it, look at the history, roll back to version 1.
set -e
here=$(dirname "$0")
kubelite apply -f "$here/13-deployment-rollout.yaml"
kubelite rollout status deployment/web --timeout=120s
kubelite set env deployment/web VERSION=2
kubelite rollout status deployment/web --timeout=120s
kubelite rollout history deployment/web
kubelite get rs -l app=web
kubelite rollout undo deployment/web
kubelite rollout status deployment/web --timeout=120s
kubelite events --for deployment/web
