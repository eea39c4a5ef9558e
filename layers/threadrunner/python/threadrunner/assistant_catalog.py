"""Which assistant a run uses: a definition in ``assistants/<name>.yaml`` (threadrunner.assistant_definitions),
or one a user created through the Assistants-compatible API (an ``asst_`` id, kept per user:
compat/assistant_store.py). The workflow's steps and the API ask here, never the two sources apart."""

from __future__ import annotations

from pathlib import Path

from threadrunner.assistant_definitions import AssistantConfig, load_assistant
from threadrunner.models.records import RunRecord

COMPAT_PREFIX = "asst_"  # never a YAML assistant's name (lower-case letters, digits and dashes)
COMPAT_METRIC_NAME = "compat"  # one metrics dimension value for every user's own assistants


def assistant_for(name: str, user_id: str, assistants_dir: Path) -> AssistantConfig:
    """The assistant ``name`` as ``user_id`` may use it; unknown: the API's 422 (YAML) or 404 (compat)."""
    if name.startswith(COMPAT_PREFIX):
        from threadrunner import aws
        from threadrunner.compat.assistant_store import CompatAssistantStore
        from threadrunner.settings import storage_settings

        return CompatAssistantStore(aws.table(storage_settings().threads_table)).get(user_id, name).config()
    return load_assistant(assistants_dir, name)


def assistant_for_run(run: RunRecord, assistants_dir: Path) -> AssistantConfig:
    """The run's assistant, with the run's own tools when it was given some (the compatible API's runs)."""
    if run.tools is None:
        return assistant_for(run.assistant, run.user_id, assistants_dir)
    from threadrunner import aws
    from threadrunner.compat.assistant_store import CompatAssistantStore
    from threadrunner.compat.wire import Tool
    from threadrunner.settings import storage_settings

    own = CompatAssistantStore(aws.table(storage_settings().threads_table)).get(run.user_id, run.assistant)
    return own.model_copy(update={"tools": [Tool.model_validate(tool) for tool in run.tools]}).config()


def metric_name(name: str) -> str:
    """The assistant as a metrics dimension: users' own assistants count together (one value, not one each)."""
    return COMPAT_METRIC_NAME if name.startswith(COMPAT_PREFIX) else name
