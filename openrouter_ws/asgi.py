"""The ASGI entry point: the lean proxy for inference in front of Django for everything else."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "openrouter_ws.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_application = get_asgi_application()

from routing.asgi import GatewayApplication  # noqa: E402

application = GatewayApplication(django_application)
