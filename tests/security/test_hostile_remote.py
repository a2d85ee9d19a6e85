"""A hostile or damaged remote cache: its meta.json decides which files are fetched, under
which names, verified against which digests, and which loader names `pull --dest` writes.
Entries whose meta.json names files like ``../../x`` or ``/abs/x``, a spec id that is not
``manifest/model/precision/target``, another key, components that do not hash to the key,
no engine digest, or engine bytes that do not match, are refused; nothing is written
outside the local cache and --dest, and the sound entries beside them are still pulled.

The remote here is a shared directory (a LocalStore, which `--remote DIR` opens); the same
checks run for S3, whose object listing is tested at the end with a real S3 server.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from remote_helpers import H100, TRT, add_entry, sha256

from trtops.cache.local import LocalStore
from trtops.cli import main
from trtops.errors import CacheError

HERE = ["--gpu", H100[0], "--compute-capability", H100[1], "--tensorrt", TRT]
IO = {"tensors": [{"name": "input", "mode": "input", "dtype": "float32", "shape": [-1, 3, -1, -1]},
                  {"name": "output", "mode": "output", "dtype": "float32", "shape": [-1, 4, -1, -1]}],
      "profiles": [{"input": {"min": [1, 3, 8, 8], "opt": [1, 3, 16, 16], "max": [1, 3, 32, 32]}}]}
ESCAPE = "pwned"  # every hostile name aims at a file called so


def _files(meta: dict, entry: Path, name: str) -> None:
    meta["files"][name] = {"sha256": sha256(b"evil"), "size": 4}


def _write_meta(entry: Path, meta: object | str) -> None:
    text = meta if isinstance(meta, str) else json.dumps(meta)
    (entry / "meta.json").write_text(text)


def dotdot_file(meta: dict, entry: Path) -> None:
    _files(meta, entry, f"../../../../{ESCAPE}")


def absolute_file(meta: dict, entry: Path) -> None:
    _files(meta, entry, str(entry.parents[4] / ESCAPE))


def dot_file(meta: dict, entry: Path) -> None:
    _files(meta, entry, f".{ESCAPE}")


def spec_id_traversal(meta: dict, entry: Path) -> None:
    meta["spec_id"] = f"../../{ESCAPE}/fp16/lab"


def spec_id_absolute(meta: dict, entry: Path) -> None:
    meta["spec_id"] = f"/tmp/{ESCAPE}/fp16/lab"


def spec_id_five_parts(meta: dict, entry: Path) -> None:
    meta["spec_id"] = f"m/../{ESCAPE}/fp16/lab"


def spec_id_code(meta: dict, entry: Path) -> None:
    meta["spec_id"] = "m/x');import os;os.mkdir('" + ESCAPE + "');#/fp16/lab"


def other_key(meta: dict, entry: Path) -> None:
    meta["key"] = "0" * 64


def tampered_components(meta: dict, entry: Path) -> None:
    meta["components"]["model_digest"] = "f" * 64


def no_engine_digest(meta: dict, entry: Path) -> None:
    del meta["engine_sha256"]
    meta["files"]["engine.plan"].pop("sha256")


def not_an_object(meta: dict, entry: Path) -> str:
    return "[1, 2, 3]"


def not_json(meta: dict, entry: Path) -> str:
    return "{this is not json"


def gpu_string(meta: dict, entry: Path) -> None:
    meta["gpu"] = "NVIDIA H100"


def shape_not_integer(meta: dict, entry: Path) -> None:
    meta["io"]["tensors"][0]["shape"] = [1, "three", 8, 8]


def deep_nesting(meta: dict, entry: Path) -> str:
    return "[" * 200000


def swapped_engine(meta: dict, entry: Path) -> None:
    (entry / "engine.plan").write_bytes(b"\0" * 1024)  # meta.json still names the old digest


Tamper = Callable[[dict, Path], "str | None"]
SKIPPED = [dotdot_file, absolute_file, dot_file, spec_id_traversal, spec_id_absolute,
           spec_id_five_parts, spec_id_code, other_key, tampered_components, no_engine_digest,
           gpu_string, shape_not_integer, not_an_object, not_json]
APPLY_CASES = [dotdot_file, gpu_string, shape_not_integer, deep_nesting]


def build_remote(root: Path) -> tuple[LocalStore, str, str]:
    remote = LocalStore(root)
    good = add_entry(remote, "good", io=IO, spec_id="m/good/fp16/lab", size=4096)[0].key
    bad = add_entry(remote, "bad", io=IO, spec_id="m/bad/fp16/lab", size=4096, seed=1)[0].key
    return remote, good, bad


def tamper(remote: LocalStore, key: str, change: Tamper) -> None:
    entry = remote.entry_dir(key)
    meta = json.loads((entry / "meta.json").read_text())
    replaced = change(meta, entry)
    _write_meta(entry, replaced if isinstance(replaced, str) else meta)


def escaped(tmp_path: Path) -> list[str]:
    """Anything named like the escape target, anywhere it could have landed."""
    found = [str(p) for p in tmp_path.rglob(f"*{ESCAPE}*")]
    found += [str(p) for p in tmp_path.parent.glob(f"*{ESCAPE}*")]
    found += [p for p in (f"/tmp/{ESCAPE}",) if os.path.exists(p)]
    return found


@pytest.mark.parametrize("change", SKIPPED, ids=[c.__name__ for c in SKIPPED])
def test_pull_refuses_a_hostile_entry_and_pulls_the_rest(change: Tamper, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    remote, good, bad = build_remote(tmp_path / "remote")
    tamper(remote, bad, change)
    node, dest = tmp_path / "node", tmp_path / "deploy"
    code = main(["pull", "--remote", str(remote.root), "--cache", str(node), "--dest", str(dest),
                 "--loaders", "python,triton", *HERE])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Traceback" not in out + err and "internal error" not in err
    local = LocalStore(node)
    assert set(local.list_keys()) == {good}
    assert local.read_file(good, "engine.plan") == remote.read_file(good, "engine.plan")
    assert (dest / "python" / "good_fp16_lab.py").is_file()
    assert escaped(tmp_path) == []
    assert "damaged" in err or "refus" in err, err
    assert not (node / "tmp").exists() or list((node / "tmp").iterdir()) == []
    # The dry run tells why.
    assert main(["pull", "--remote", str(remote.root), "--cache", str(node), "--dry-run", *HERE]) == 0
    out = capsys.readouterr().out
    assert f"({bad[:12]})" in out and "damaged" in out


def test_pull_of_swapped_engine_bytes_fails_cleanly(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    remote, good, bad = build_remote(tmp_path / "remote")
    tamper(remote, bad, swapped_engine)
    node = tmp_path / "node"
    code = main(["pull", "--remote", str(remote.root), "--cache", str(node), *HERE])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "sha256 mismatch" in err and "Traceback" not in err
    assert set(LocalStore(node).list_keys()) == {good}
    assert list((node / "tmp").iterdir()) == []


@pytest.mark.parametrize("change", SKIPPED[:-2], ids=[c.__name__ for c in SKIPPED[:-2]])
def test_fetch_refuses_a_hostile_entry(change: Tamper, tmp_path: Path) -> None:
    """What `apply --remote` does on a cache hit: the same refusal, as a CacheError."""
    from trtops.cache.transfer import fetch_entry

    remote, _, bad = build_remote(tmp_path / "remote")
    tamper(remote, bad, change)
    local = LocalStore(tmp_path / "node")
    with pytest.raises(CacheError, match="refusing remote entry"):
        fetch_entry(remote, local, bad)
    assert not local.has_entry(bad)
    assert escaped(tmp_path) == []


@pytest.mark.parametrize("change", APPLY_CASES, ids=[c.__name__ for c in APPLY_CASES])
def test_apply_with_a_hostile_remote_entry_writes_nothing_outside(change: Tamper,
                                                                  tmp_path: Path) -> None:
    """Machine A publishes; the remote entry is then tampered with; machine B applies with
    --remote: the hit is refused (exit 1, a clear message, no exit 70), the other engine is
    downloaded, nothing escapes."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("polygraphy")
    from apply_helpers import make_project, trtops

    remote_dir = tmp_path / "remote"
    a = make_project(tmp_path / "a")
    first = trtops(a, "apply", "--no-emit", "--remote", str(remote_dir), "--json")
    assert first.returncode == 0, first.stderr
    key = next(e["key"] for e in json.loads(first.stdout)["engines"] if e["id"] == "demo/conv/fp32/lab")
    remote = LocalStore(remote_dir)
    tamper(remote, key, change)
    b = make_project(tmp_path / "b")
    second = trtops(b, "apply", "--remote", str(remote_dir), "--keep-going", "--json")
    assert second.returncode == 1, second.stdout + second.stderr
    engines = {e["id"]: e for e in json.loads(second.stdout)["engines"]}
    assert engines["demo/conv/fp32/lab"]["status"] == "invalid"
    message = engines["demo/conv/fp32/lab"]["message"]
    assert "refusing remote entry" in message or "meta.json" in message, message
    assert engines["demo/heavy/fp32/lab"]["status"] == "downloaded"
    assert "Traceback" not in second.stderr
    assert not LocalStore(b / "cache").has_entry(key)
    assert escaped(tmp_path) == []


# --------------------------------------------------------------------------- S3 object names


def test_s3_listing_ignores_hostile_object_names(tmp_path: Path, moto_url: str,
                                                 moto_endpoint: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Objects a hostile writer put into the bucket under names with '..' or extra levels
    are no entries; an entry whose meta.json lists such a file is refused. On moto:
    SeaweedFS refuses such object names itself (InvalidRequest), so they cannot be planted
    there, while other S3 servers store them."""
    from remote_helpers import BUCKET, s3_client

    from trtops.cache.s3 import open_s3_store
    from trtops.cache.transfer import push_entry

    seed = LocalStore(tmp_path / "seed")
    good = add_entry(seed, "good", io=IO, spec_id="m/good/fp16/lab", size=4096)[0].key
    bad = add_entry(seed, "bad", io=IO, spec_id="m/bad/fp16/lab", size=4096, seed=1)[0].key
    store = open_s3_store(moto_url)
    for key in (good, bad):
        push_entry(seed, store, key)
    client = s3_client(moto_endpoint)
    prefix = store.prefix
    meta = json.loads(store.read_file(bad, "meta.json"))
    meta["files"][f"../../../../{ESCAPE}"] = {"sha256": sha256(b"evil"), "size": 4}
    hostile = {
        f"engines/{bad[:2]}/{bad}/meta.json": json.dumps(meta).encode(),
        f"engines/{bad[:2]}/{bad}/../../../../{ESCAPE}": b"evil",
        f"engines/../../{ESCAPE}/meta.json": b"{}",
        f"engines/{good[:2]}/{good}/../meta.json": b"{}",
        f"engines/{good[:2]}/{good}/sub/meta.json": b"{}",
    }
    for name, body in hostile.items():
        client.put_object(Bucket=BUCKET, Key=f"{prefix}/{name}", Body=body)
    assert set(store.list_keys()) == {good, bad}
    node, dest = tmp_path / "node", tmp_path / "deploy"
    code = main(["pull", "--remote", moto_url, "--cache", str(node), "--dest", str(dest), *HERE])
    err = capsys.readouterr().err
    assert code == 0, err
    assert set(LocalStore(node).list_keys()) == {good}
    assert escaped(tmp_path) == []
    assert "Traceback" not in err
