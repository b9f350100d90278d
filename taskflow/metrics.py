"""Prometheus / OpenMetrics metrics of a task manager: `TaskflowCollector` (see `taskflow._prometheus` for
the metric families). Needs `pip install 'anyio-taskflow[prometheus]'`."""

from ._prometheus import TaskflowCollector as TaskflowCollector

__all__ = ["TaskflowCollector"]
