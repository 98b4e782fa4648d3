"""An activation cache computed by Ray tasks: one slice per task, merged into one cache.

`cache_on_ray(model, data, hooks, out, workers=N, address="local")` (CLI
`interp cache ... --ray local|ADDRESS --workers N`) starts N Ray tasks. Task i loads the model
once, caches the prompts numbered i mod N into `out/slice-i` with `cache_file(...,
shard=(i, N), resume=True)`, and returns; the driver then merges the slices with
`merge_caches` into `out/index.json`. `open_cache(out)` reads the result like a single-process
cache (same prompts and values; the slices are where the shards live).

A task whose worker dies (killed, out of memory, node lost) is retried by Ray up to
`max_retries` times; the retry resumes its slice after the last complete shard, so finished
shards are kept and nothing is lost. A user mistake inside a task (an unknown hook, a prompt too
long) is not retried: it comes back as one InterpError line.

Every worker reads `data` and writes `out` at the same path, so on a multi-machine cluster both
must be on a shared file system. `address="local"` starts a local cluster with `workers` CPUs;
any other value is passed to `ray.init(address=...)` ("auto" joins the cluster this machine is
part of, "ray://host:10001" a remote one); a Ray that is already initialized is used as it is.

Example (not run here: it starts Ray):
    cache_on_ray("zoo-2l", "prompts.parquet", "blocks.*.hook_resid_post", "acts", workers=2,
                 text_field="body")
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

from interp.errors import InterpError

SLICE_DIR = "slice-{}"
__all__ = ["cache_on_ray", "model_spec"]


def model_spec(model) -> str:
    """What a worker passes to `interp.load` to get `model` again: a name, or the directory or file
    its weights came from."""
    if isinstance(model, (str, os.PathLike)):
        return str(model)
    info = getattr(model, "info", None)
    if info is None or info.source == "object":
        raise InterpError("a Ray cache loads the model in every worker: pass its name or directory "
                          "(e.g. 'zoo-2l'), not a model object built in this process")
    return info.name if info.source in ("zoo", "package") else (info.origin or info.path)


def _check(workers: int, out: Path, resume: bool, force: bool) -> None:
    from interp.cache import _ours

    if workers < 1:
        raise InterpError(f"--workers {workers} must be at least 1")
    if resume and force:
        raise InterpError("--resume continues --out and --force clears it: pass one of them, not both")
    if out.exists() and not out.is_dir():
        raise InterpError(f"output {str(out)!r} is a file, not a directory: choose another --out")
    entries = sorted(out.iterdir()) if out.is_dir() else []
    if not entries or resume:
        return
    if not force:
        raise InterpError(f"output directory {str(out)!r} is not empty: pass --resume to continue it or "
                          "--force to replace it")
    for e in entries:  # only an index and slice directories of interp's own files are cleared
        ok = e.name == "index.json" or (e.is_dir() and e.name.startswith("slice-")
                                        and all(_ours(p.name) for p in e.iterdir()))
        if not ok:
            raise InterpError(f"--force will not clear {str(out)!r}: it holds {e.name!r}, which interp "
                              "did not write; choose an empty --out")
    for e in entries:
        if e.is_dir():
            shutil.rmtree(e)
        else:
            e.unlink()


def _init_ray(address: str, workers: int):
    try:
        import ray
    except ImportError:
        raise InterpError("--ray needs Ray: pip install 'interp[ray]' (or pip install ray)") from None
    if not ray.is_initialized():
        if address == "local":
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
                     object_store_memory=128 * 2**20)
        else:
            ray.init(address=address, log_to_driver=False)
    return ray


def _slice(spec: str, device: str, data: str, hooks, out: str, shard: tuple[int, int], options: dict,
           kill_once: str | None) -> dict:
    """One Ray task: load the model, cache slice `shard` into `out` (resuming what is there)."""
    import interp
    from interp.cache import cache_file

    model = interp.load(spec, device=device, progress=False)
    if kill_once and not os.path.exists(kill_once):  # tests: die after one shard, as a lost worker would
        cache_file(model, data, hooks, out, shard=shard, resume=True, progress=False, max_shards=1, **options)
        Path(kill_once).write_text(f"{os.getpid()}\n")
        os.kill(os.getpid(), signal.SIGKILL)
    index = cache_file(model, data, hooks, out, shard=shard, resume=True, progress=False, **options)
    return {"pid": os.getpid(), "shards": len(index["shards"]), "complete": index["complete"]}


def cache_on_ray(model, data, hooks, out, workers: int = 2, address: str = "local", device: str = "cpu",
                 max_retries: int = 3, resume: bool = False, force: bool = False, _kill_once=None,
                 **options) -> dict:
    """Cache `data` through `model` in `workers` Ray tasks and merge them into one cache in `out`.

    Args:
        model: a name, directory or file for `interp.load`, or a model it loaded (the workers load
            it again from where it came from).
        data, hooks: as in `interp.cache.cache_file`; `data` must be readable by every worker.
        out: output directory: `out/slice-i` per task, `out/index.json` for the whole.
        workers: the number of tasks (slices); one CPU each.
        address: "local" (start a local cluster) or an address for `ray.init`.
        device: the device each worker loads the model on ("cuda": one GPU per task).
        max_retries: how often Ray reruns a task whose worker died (each rerun resumes).
        resume: continue an earlier run with the same `workers` in `out`.
        force: clear a non-empty `out` (only what interp wrote there).
        _kill_once: tests only: a marker file; task 0 kills its own process once after one shard.
        **options: batch_size, shard_size, truncate, max_tokens, dtype, text_field for `cache_file`.

    Returns:
        The merged index, as written to `out/index.json`.

    Raises:
        InterpError: Ray missing, bad arguments, a non-empty `out`, or the first user mistake a
            task met (one line).
    """
    from interp.cache_index import merge_caches
    from interp.datasets_io import check_data
    from interp.paths import check_path

    out = Path(check_path(out, "out"))
    spec = model_spec(model)
    check_data(data, options.get("text_field", "text"))
    _check(workers, out, resume, force)
    ray = _init_ray(address, workers)
    gpus = 1 if str(device).startswith("cuda") else 0  # Ray gives each task its own GPU as cuda:0
    task = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=max_retries, retry_exceptions=False)(_slice)
    dirs = [out / SLICE_DIR.format(i) for i in range(workers)]
    data = str(Path(data).resolve())
    refs = [task.remote(spec, device, data, hooks, str(d.resolve()), (i, workers), options,
                        str(_kill_once) if _kill_once and i == 0 else None) for i, d in enumerate(dirs)]
    _gather(ray, refs)
    return merge_caches(dirs, out)


def _gather(ray, refs) -> list:
    """Results of all tasks (each one waited for: none is left running or unread); a user mistake
    in one comes back as its own one-line InterpError."""
    results, failure = [], None
    for ref in refs:
        try:
            results.append(ray.get(ref))
        except ray.exceptions.RayTaskError as e:
            failure = failure or e
    if failure is None:
        return results
    cause = getattr(failure, "cause", None)
    if isinstance(cause, InterpError):
        raise InterpError(str(cause)) from None
    raise failure
