"""The Assistants-v2-compatible API under ``/compat/v1`` (functions/compat_api): code written for OpenAI's
``client.beta.assistants/threads/runs`` runs against threadrunner by changing only the SDK's ``base_url`` and
key (the user's JWT).

Each facade object is a threadrunner object seen in the Assistants shapes: a facade assistant is stored per user
(assistant_store.py) and runs like a YAML assistant, its function tools as client tools; a facade thread is a
threadrunner thread (``thread_X`` is ``thr_X``); a run is a threadrunner run, with its Step Functions
execution, metrics, usage, budgets and cleanup; messages are the thread's log (plus the user messages waiting
for the next run). Errors are OpenAI's envelope (errors.py), which the SDK turns into its typed exceptions.
"""
