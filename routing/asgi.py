class GatewayApplication:
    def __init__(self, django_app):
        self.django_app = django_app

    async def __call__(self, scope, receive, send):
        await self.django_app(scope, receive, send)
