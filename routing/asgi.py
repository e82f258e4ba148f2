"""The ASGI application: inference on the lean path, everything else to Django. Handles lifespan."""

import logging

from . import proxy
from .state import GatewayState

logger = logging.getLogger(__name__)
PROXY_PATHS = {"/api/v1/chat/completions": proxy.handle}


class GatewayApplication:
    def __init__(self, django_app):
        self.django_app = django_app
        self.state = GatewayState()

    async def __call__(self, scope, receive, send):
        kind = scope["type"]
        if kind == "http":
            handler = PROXY_PATHS.get(scope["path"].rstrip("/"))
            if handler is not None:
                if self.state.session is None:
                    await self.state.start()
                await handler(self.state, scope, receive, send)
                return
            await self.django_app(scope, receive, send)
        elif kind == "lifespan":
            await self.lifespan(receive, send)
        else:
            await self.django_app(scope, receive, send)

    async def lifespan(self, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.state.start()
                except Exception as exc:
                    logger.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self.state.stop()
                finally:
                    await send({"type": "lifespan.shutdown.complete"})
                return

