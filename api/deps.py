"""Dependencies declared with Annotated, so routers stay thin and tests can override them."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from core.settings import Settings
from services.container import Services


def get_services(request: Request) -> Services:
    return request.app.state.services


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.services.settings


ServicesDep = Annotated[Services, Depends(get_services)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
