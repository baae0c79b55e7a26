"""Agent economics: tasks and outcomes, value per task, the token shredder, per-task caps.

The HTTP side lives in the gateway: ``gateway/task_headers.py`` (which task a call belongs
to: ``X-Tokenomy-Task`` and the aliases) and ``gateway/outcomes.py``
(``POST /v1/tasks/{task_id}/outcome``).

* ``caps``     — per-task caps (``[tasks]``), reserved before each call across replicas.
* ``shredder`` — live detectors over what each step adds (``wire/steps.py`` hashes it).
* ``office``   — the gateway's hooks: ``admit`` before the upstream, ``finish`` after.
* ``reports``  — ``tokenomy tasks``, ``value`` and ``shredder``.
"""

from __future__ import annotations
