"""Fault tests for real: Redis and PostgreSQL of their own stopped and started under the running platform
(``stack.py``, ``test_broker.py``, ``test_database.py``), workers killed and disks filled (``kill.py``,
``test_kill_and_disk.py``)."""
