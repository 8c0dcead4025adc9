"""Compute: Nova's roles, small.

Where things are:

* ``states.py`` — vm/task/power states and the API ``status`` (wire strings).
* ``lifecycle.py`` — THE state table: per action, allowed vm_states, the
  task_state walk, success/failure end states, recovery after a restart.
* ``instances.py`` — every instance write (compare-and-swap claims, faults,
  instance actions and events); ``teardown.py`` — the end of an instance.
* ``quotas.py``, ``flavors.py`` (defaults created at start), ``keypairs.py``,
  ``servicegroup.py`` (heartbeats, up/down), ``images.py`` (the image
  service's REST API as compute uses it), ``models.py`` + ``migrations/``.
* ``api/`` — the HTTP edge: ``routes.py`` (URL table), ``microversion.py``,
  ``views.py`` (bodies; version-dependent fields as data), one module per
  resource group, ``actions.py`` (one handler per server action).
* ``scheduler/`` — host states, filters, weighers, claims (one conditional
  UPDATE), the ``compute-scheduler`` bus endpoint.
* ``conductor/`` — multi-host flows (build with reschedule, resize/migrate,
  confirm/revert, live migration, evacuate, unshelve) as step lists with
  rollbacks (``flow.py``).
* ``agent/`` — the compute agent per host: host-local actions through one
  runner, registration, heartbeats, power sync, recovery at start.
* ``virt/`` — the driver boundary (``driver.py``) and the fake driver.
* ``rpc.py`` — typed bus clients between the roles; ``service.py`` — wiring.
"""
