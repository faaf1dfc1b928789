"""Data parallel at world size 2 (gloo, CPU): distinct episodes per rank, identical weights,
and the same episodes (hence, up to summation order, the same weights) as one process."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import torch
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).parent))
from fewshot_fixtures import make_dataset, tiny_overrides  # noqa: E402


def _worker(rank, world, port, overrides, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))  # fmt: skip
    import torch.distributed as dist

    from d2st.config import load_config
    from d2st.models.fewshot import trainable_state
    from d2st.train import train

    torch.set_num_threads(1)
    seen = []
    result = train(load_config(None, overrides), progress=False, on_episode=seen.append)
    state = {k: v.detach().clone() for k, v in trainable_state(result.model).items()}
    torch.save({"seen": seen, "state": state}, Path(out) / f"rank{rank}.pt")
    dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_ranks_distinct_episodes_identical_weights(tmp_path):
    train_dir, test_dir = make_dataset(tmp_path)
    overrides = tiny_overrides(
        tmp_path, train_dir, test_dir, **{"run.name": "ddp", "train.episodes": 8}
    )
    mp.spawn(_worker, args=(2, _free_port(), overrides, str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["seen"] and r1["seen"] and not set(r0["seen"]) & set(r1["seen"])
    assert sorted(r0["seen"] + r1["seen"]) == list(range(8))
    for k in r0["state"]:
        assert torch.equal(r0["state"][k], r1["state"][k]), k

    from d2st.config import load_config
    from d2st.models.fewshot import trainable_state
    from d2st.train import train

    single = train(load_config(None, tiny_overrides(tmp_path, train_dir, test_dir, **{
        "run.name": "single", "train.episodes": 8})), progress=False)  # fmt: skip
    ref = trainable_state(single.model)
    for k, v in r0["state"].items():
        torch.testing.assert_close(v, ref[k], rtol=1e-4, atol=1e-6)
