"""The aiohttp application: routes, error middleware, and the resources it owns (cleanup_ctx).

Start-up order: storage → watch caches (listed) → system namespaces → ready; background tasks
(watch caches, compaction, namespace finalizer) run in one TaskGroup owned by the app. Shutdown
reverses it: not ready → close client watches → cancel tasks → close storage.
"""

from __future__ import annotations

import asyncio
import logging
from typing import AsyncIterator, Awaitable, Callable

from aiohttp import web

from apiserver import discovery, metrics, metrics_api, openapi, proxy
from apiserver.handlers.common import STATE, ApiState, Settings, json_response, status_response
from apiserver.handlers.dispatch import dispatch
from apiserver.eventttl import run_event_ttl
from apiserver.namespaces import ensure_system_namespaces, run_namespace_finalizer
from apiserver.objects import Objects
from apiserver.storage import Store, UnavailableError
from apiserver.storage.compactor import run_compactor
from apiserver.watchcache import WatchCache
from kubelite.api import errors
from kubelite.api.resources import RESOURCES

logger = logging.getLogger(__name__)

StoreFactory = Callable[[Settings], Store]


def _default_store(settings: Settings) -> Store:
    from apiserver.storage.etcd import EtcdStore
    return EtcdStore(settings.etcd_servers)


@web.middleware
async def error_middleware(request: web.Request,
                           handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """Every failure leaves as a ``Status``; storage outages are 503, never 500."""
    try:
        return await handler(request)
    except errors.ApiError as e:
        return status_response(e)
    except UnavailableError as e:
        return status_response(errors.ServiceUnavailable(f"storage is unavailable: {e}"))
    except web.HTTPException as e:
        if e.status >= 400:
            err = errors.ApiError(e.reason if e.status != 404 else "the server could not find the requested resource",
                                  code=e.status, reason={404: "NotFound", 405: "MethodNotAllowed",
                                                         413: "RequestEntityTooLarge"}.get(e.status, e.reason))
            return status_response(err)
        raise
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception:  # noqa: BLE001 - the loop boundary of a request
        logger.exception("%s %s failed", request.method, request.path)
        return status_response(errors.InternalError("an error on the server has prevented the request from succeeding"))


async def _core(request: web.Request) -> web.StreamResponse:
    return await dispatch(request, "", "v1", request.match_info["tail"])


async def _group(request: web.Request) -> web.StreamResponse:
    return await dispatch(request, request.match_info["group"], request.match_info["version"], request.match_info["tail"])


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _readyz(request: web.Request) -> web.Response:
    st = request.app[STATE]
    if not st.ready or st.stopping:
        return web.Response(status=503, text="not ready")
    return web.Response(text="ok")


async def _not_found(request: web.Request) -> web.Response:
    return json_response(errors.NotFound("the server could not find the requested resource", details={}).to_status(),
                         status=404)


def _state_ctx(settings: Settings, store_factory: StoreFactory) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        store = metrics.instrument(app, store_factory(settings), settings.etcd_prefix)
        cache = WatchCache(store, settings.etcd_prefix.rstrip("/"), RESOURCES, settings.watch_window)
        st = ApiState(settings, store, cache, Objects(store, settings.etcd_prefix, cache))
        app[STATE] = st
        try:
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(cache.run(), name="watchcache")]
                await _wait_ready(st)
                tasks.append(tg.create_task(run_compactor(store, settings.compaction_interval), name="compactor"))
                tasks.append(tg.create_task(run_event_ttl(store, cache), name="event-ttl"))
                tasks.append(tg.create_task(run_namespace_finalizer(st.objects), name="namespace-finalizer"))
                st.ready = True
                logger.info("apiserver ready (storage prefix %s)", settings.etcd_prefix)
                try:
                    yield
                finally:
                    st.stopping = True
                    st.ready = False
                    for rc in cache.caches.values():
                        for w in list(rc.watchers):
                            w.close()
                    for t in tasks:
                        t.cancel()
        except* asyncio.CancelledError:
            pass
        finally:
            await store.close()
    return ctx


async def _wait_ready(st: ApiState) -> None:
    """Wait for every watch cache to have listed, then make the system namespaces (retrying on outages)."""
    await st.cache.wait_ready()
    delay = 0.1
    while True:
        try:
            await ensure_system_namespaces(st.objects)
            return
        except UnavailableError as e:
            logger.warning("storage not ready (%s); retrying", e)
            await asyncio.sleep(delay)
            delay = min(2.0, delay * 2)


async def _close_watches(app: web.Application) -> None:
    """On shutdown (before waiting for open requests): not ready any more, end every client watch."""
    st = app[STATE]
    st.stopping = True
    st.ready = False
    for rc in st.cache.caches.values():
        for w in list(rc.watchers):
            w.close()


def make_app(settings: Settings, store_factory: StoreFactory = _default_store) -> web.Application:
    """The apiserver application for ``settings`` (``store_factory`` lets tests use the memory store)."""
    app = web.Application(middlewares=[error_middleware], client_max_size=4 * 1024 * 1024)
    app.cleanup_ctx.append(_state_ctx(settings, store_factory))
    app.on_shutdown.append(_close_watches)
    metrics.install(app)
    metrics_api.add_routes(app)
    r = app.router
    r.add_get("/version", discovery.handle_version)
    r.add_get("/healthz", _healthz)
    r.add_get("/livez", _healthz)
    r.add_get("/readyz", _readyz)
    r.add_get("/api", discovery.handle_api)
    r.add_get("/api/", discovery.handle_api)
    r.add_get("/apis", discovery.handle_apis)
    r.add_get("/apis/", discovery.handle_apis)
    r.add_get("/api/v1", discovery.handle_core_v1)
    r.add_get("/apis/{group}", discovery.handle_group)
    r.add_get("/apis/{group}/{version}", discovery.handle_group_version)
    proxy.add_routes(app)
    r.add_route("*", "/api/v1/{tail:.+}", _core)
    r.add_route("*", "/apis/{group}/{version}/{tail:.+}", _group)
    openapi.add_routes(app)
    r.add_route("*", "/{tail:.*}", _not_found)
    return app


