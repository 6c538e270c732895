"""Job objects (§6): JobOps, mixed into Machine."""

from __future__ import annotations


class JobOps:
    def _job_process_exited(self, process) -> None:
        pass

    def _commit_step(self, t, size: int) -> None:
        pass

    def job_name(self, job) -> str:
        return job.name if job.name is not None else f"Job#{job.jid}"

    def _job_states(self) -> list:
        return []
