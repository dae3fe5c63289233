"""Errors of the engine sidecar, and what to do about each.

::

    SidecarError
    ├── PublishError      Kafka did not acknowledge a record (broker down, timeout). Retriable:
    │                     send the same record again; the stream drops repeats by (engine,
    │                     sequence), and the checkpoint keeps a batch that was not acknowledged
    ├── RunError          a run cannot start on this engine; not retriable: the engine reports
    │   │                 the run failed, with this message
    │   ├── DownloadError a plan file could not be fetched, or is not the file announced
    │   └── PlanError     a plan cannot be prepared (not XML, no test plan, two .jmx files …)
    ├── FormatError       a results file is not a JTL the sidecar can read; its lines count as
    │                     malformed
    └── TaskCrashedError       a long-lived task of the sidecar failed: the process stops, with the
                          task and its error in the log (a restart picks a running JMeter up)
"""

from __future__ import annotations


class SidecarError(Exception):
    retriable = False


class PublishError(SidecarError):
    retriable = True


class RunError(SidecarError):
    pass


class DownloadError(RunError):
    pass


class PlanError(RunError):
    pass


class FormatError(SidecarError):
    pass


class TaskCrashedError(SidecarError):
    def __init__(self, task: str, error: BaseException) -> None:
        super().__init__(f"the sidecar's {task} task failed: {error!r}")
        self.task = task
