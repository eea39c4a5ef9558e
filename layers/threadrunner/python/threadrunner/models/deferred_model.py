"""The base of the library's pydantic models: each builds its validator and serializer when first used, not
when its class is defined. A Lambda's INIT defines every model its modules hold (the API's answers, every
record, the whole workflow state) and one invocation uses a few of them: building all of them at INIT cost each
Lambda some 30 ms of a cold start (``threadrunner bench imports``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class DeferredModel(BaseModel):
    model_config = ConfigDict(defer_build=True)
