"""Training jobs: each train request runs in a worker process, niced, its status on disk.

The service's event loop never trains: `submit` records the request as ``queued`` and hands it to a
spawn-context process pool whose workers lower their priority and use one BLAS/OpenMP thread, so
scoring keeps a core. The same request again gets the same id and is not trained twice (unless it failed).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import structlog

from model_service.artifacts import ModelStore
from model_service.request import TrainRequest

log = structlog.get_logger("model_service.jobs")

#: Thread-count variables set to 1 before scikit-learn loads (workers always; `model-service` unless given).
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _worker_init(nice: int) -> None:
    """Lower the worker's priority and keep it to one thread."""
    for var in THREAD_VARS:
        os.environ[var] = "1"
    if nice:
        os.nice(nice)


def _train(models_dir: str, request: dict[str, Any]) -> dict[str, Any]:
    from model_service.train import run_training  # imported in the worker, after _worker_init

    return run_training(models_dir, request)


class TrainingJobs:
    """Queue trainings onto worker processes; `on_done(result)` runs in the loop when one ends."""

    def __init__(self, store: ModelStore, workers: int = 1, nice: int = 10,
                 on_done: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.store, self.on_done = store, on_done
        self._workers, self._nice = workers, nice
        self._pool: ProcessPoolExecutor | None = None
        self._running: dict[str, asyncio.Future] = {}

    def submit(self, req: TrainRequest) -> dict[str, Any]:
        """Start training `req` unless it is queued, running or done: ``{model_id, status}``."""
        model_id = req.model_id()
        known = self.store.status(model_id)
        if model_id in self._running:
            return {"model_id": model_id, "status": (known or {}).get("status", "queued")}
        if known is not None and known["status"] == "done":
            return {"model_id": model_id, "status": "done"}
        self.store.write_status(model_id, "queued", request=req.as_dict())
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self._workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_worker_init, initargs=(self._nice,))
        fut = asyncio.get_running_loop().run_in_executor(self._pool, _train, str(self.store.dir), req.as_dict())
        self._running[model_id] = fut
        fut.add_done_callback(lambda f, m=model_id: self._ended(m, f))
        log.info("training_queued", model_id=model_id, dataset_id=req.dataset_id, horizon=req.horizon, kind=req.kind)
        return {"model_id": model_id, "status": "queued"}

    def _ended(self, model_id: str, fut: asyncio.Future) -> None:
        self._running.pop(model_id, None)
        if fut.cancelled():
            return
        try:
            result = fut.result()
        except Exception as e:  # noqa: BLE001 - the worker died (killed, out of memory): record it
            result = {"model_id": model_id, "status": "failed", "error": f"training process died: {e}"}
            self.store.write_status(model_id, "failed", error=result["error"])
        log.info("training_ended", model_id=model_id, status=result["status"], error=result.get("error"))
        if self.on_done is not None:
            self.on_done(result)

    def running(self) -> list[str]:
        return list(self._running)

    def close(self) -> None:
        """Stop the workers (a training in progress is lost and marked failed at the next start)."""
        if self._pool is not None:
            workers = list((getattr(self._pool, "_processes", None) or {}).values())
            self._pool.shutdown(wait=False, cancel_futures=True)
            for p in workers:
                p.terminate()
