"""HTTP API: thin FastAPI routers over the services."""
