"""Agent economics: tasks and outcomes, value per task, the token shredder, per-task caps.

* ``headers``  — which task a call belongs to (``X-Tokenomy-Task`` and the aliases).
* ``caps``     — per-task caps (``[tasks]``), reserved before each call across replicas.
* ``shredder`` — live detectors over what each step adds (``wire/steps.py`` hashes it).
* ``office``   — the gateway's hooks: ``admit`` before the upstream, ``finish`` after.
* ``outcomes`` — ``POST /v1/tasks/{task_id}/outcome``.
* ``reports``  — ``tokenomy tasks``, ``value`` and ``shredder``.
"""

from __future__ import annotations
