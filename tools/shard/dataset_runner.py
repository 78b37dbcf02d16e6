"""Dataset builds requested through the shard's API: each in its own lower-priority process.

`request` checks the parameters and derives the id in a thread (file IO stays off the event
loop), answers at once, and starts `feature-service dataset build` as a child process under
`nice` so the shard's ticks keep their CPU. An identical request while it runs, or after it is
done, gets the same id. When a build ends well the shard publishes ``features.dataset.ready`` on
its publish endpoint (msgpack ``{dataset_id, path, from, to, symbols, rows, registry_hash}``,
from/to as ISO-8601 UTC strings).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import orjson

log = logging.getLogger("feature_service.datasets")

READY_TOPIC = b"features.dataset.ready"
#: CPU priority of a build process (nice increment).
BUILD_NICE = 10


class DatasetRunner:
    """The shard's `DatasetService`: builds keyed by dataset id, at most one process per id."""

    def __init__(self, config_path: str, datasets_dir: Path, publish: Callable[[bytes, bytes], object]) -> None:
        self.config_path = str(Path(config_path).resolve())
        self.datasets_dir = datasets_dir
        self.publish = publish
        self.running: dict[str, asyncio.Task[None]] = {}

    async def request(self, params: dict[str, str]) -> dict[str, Any]:
        """Check `params`, then start the build unless it is running or done; {dataset_id, status}."""
        args, ds_id = await asyncio.get_running_loop().run_in_executor(None, self._checked, params)
        if ds_id in self.running:
            return {"dataset_id": ds_id, "status": "running"}
        from tools.dataset.build import read_manifest, write_status

        if read_manifest(self.datasets_dir / ds_id) is not None:
            return {"dataset_id": ds_id, "status": "done"}
        data = self._data()
        write_status(data, ds_id, "queued")
        self.running[ds_id] = asyncio.create_task(self._run(ds_id, args), name=f"dataset-{ds_id}")
        return {"dataset_id": ds_id, "status": "queued"}

    def _data(self) -> Any:
        from tools.dataset.source import ShardData

        return ShardData.open(self.config_path)

    def _checked(self, params: dict[str, str]) -> tuple[list[str], str]:
        """The CLI arguments of the build and its id; ValueError with the reason when the request is bad."""
        from tools.dataset.build import request_id, symbols_of
        from tools.dataset.params import BuildParams, DatasetRequestError, parse_horizons
        from tools.timeparse import parse_time

        try:
            from_ns, to_ns = parse_time(params["from"], "from"), parse_time(params["to"], "to")
            data = self._data()
            symbols = symbols_of(data, [s.strip() for s in params.get("symbols", "").split(",") if s.strip()])
            horizons = parse_horizons(params.get("horizons", "60s"))
            bps = float(params.get("threshold_bps", "2"))
            drop = _flag(params.get("drop_invalid", "false"))
            built = BuildParams(from_ns, to_ns, symbols, horizons, bps, drop)
            ds_id = request_id(data, built)
            seq = data.fingerprint(built.to_ns + built.longest_ns + 1)["through_seq"]
        except DatasetRequestError as e:
            raise ValueError(str(e)) from None
        except ValueError as e:
            raise ValueError(f"bad parameter: {e}") from None
        args = ["--from", str(from_ns), "--to", str(to_ns), "--symbols", ",".join(symbols),
                "--horizons", ",".join(horizons), "--threshold-bps", repr(bps), "--through-seq", str(seq)]
        args += ["--drop-invalid"] if drop else []
        return args, ds_id

    async def _run(self, ds_id: str, args: list[str]) -> None:
        """Run the build process; publish on success, mark it failed when the process could not say so."""
        try:
            proc = await asyncio.create_subprocess_exec(
                "nice", "-n", str(BUILD_NICE), sys.executable, "-m", "tools.cli", "-q", "dataset", "build",
                "--config", self.config_path, *args, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await proc.communicate()
            if proc.returncode == 0:
                self._ready(orjson.loads(out))
            else:
                self._failed(ds_id, err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"],
                             proc.returncode)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - a build must never take the shard down
            self._failed(ds_id, [f"{type(e).__name__}: {e}"], None)
        finally:
            self.running.pop(ds_id, None)

    def _ready(self, summary: dict[str, Any]) -> None:
        p = summary["params"]
        body = {"dataset_id": summary["dataset_id"], "path": summary["path"], "from": p["from"], "to": p["to"],
                "symbols": p["symbols"], "rows": summary["rows_total"], "registry_hash": summary["registry_hash"]}
        self.publish(READY_TOPIC, msgpack.packb(body))
        log.info("dataset_ready", extra={"dataset_id": summary["dataset_id"], "rows": summary["rows_total"]})

    def _failed(self, ds_id: str, last: list[str], code: int | None) -> None:
        from tools.dataset.build import read_status, write_status

        status = read_status(self.datasets_dir, ds_id)
        if status is None or status.get("status") != "failed":
            write_status(self._data(), ds_id, "failed", error=f"build process exited {code}: {last[0]}")
        log.warning("dataset_failed", extra={"dataset_id": ds_id, "exit_code": code})

    def status(self, dataset_id: str) -> dict[str, Any] | None:
        """The manifest of a built dataset, else its status file."""
        from tools.dataset.build import read_manifest, read_status

        manifest = read_manifest(self.datasets_dir / dataset_id)
        if manifest is not None:
            return {"dataset_id": dataset_id, "status": "done", "manifest": manifest}
        return read_status(self.datasets_dir, dataset_id)

    def datasets(self) -> list[dict[str, Any]]:
        """Every dataset and build under the datasets directory."""
        from tools.dataset.build import list_datasets

        return list_datasets(self.datasets_dir)

    async def close(self) -> None:
        """Cancel the waits on running builds (their processes finish on their own)."""
        for task in list(self.running.values()):
            task.cancel()


def _flag(text: str) -> bool:
    if text.lower() in ("1", "true", "yes"):
        return True
    if text.lower() in ("0", "false", "no", ""):
        return False
    raise ValueError(f"drop_invalid {text!r} is not true or false")
