"""HTTP API: thin FastAPI routers over the services."""

API_PREFIX = "/v1"  # every JSON endpoint lives below it (api/app.py includes the routers there)
