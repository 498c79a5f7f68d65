"""Airflow building blocks that move warehouse destinations from Segment to RudderStack.

Subpackages follow the Airflow provider layout: ``hooks`` (Segment Public API, RudderStack control
and data plane), ``operators`` (idempotent runbook steps), ``sensors`` and ``triggers`` (waits on
warehouse state) and ``dialects`` (SQL for each supported warehouse).
"""

__version__ = "0.1.0"
