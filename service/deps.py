"""Dependencies: the loaded model and the settings, as Annotated aliases that routes declare."""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from cxnlp.settings import Settings, get_settings
from cxnlp.store import LoadedModel


def get_model(request: Request) -> LoadedModel:
    model = getattr(request.app.state, "model", None)
    if model is None:
        raise HTTPException(status_code=503, detail="model is not loaded yet")
    return model


ModelDep = Annotated[LoadedModel, Depends(get_model)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
