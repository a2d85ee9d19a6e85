"""Every remote entry is untrusted input, on a directory remote and on a real S3 server
(SeaweedFS): a meta.json or accuracy.json that trtops could never have written (nested
too deeply for the parser, wrong types, a bad version string, larger than the 1 MiB cap)
is skipped with its reason, counted in the summary, and the sound entries beside it are
still pulled and get their loaders; exit 0 (docs/exit-codes.md: damaged remote entries are
warnings), no traceback, no "internal error". Once such an entry is in a local cache,
`cache verify` finds it, `--delete` removes it, and the next `pull --dest` works.
Also: pulled files keep umask permissions; timing caches are checked against the sha256
recorded when they were written; secrets in endpoint URLs are never printed.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from remote_helpers import H100, TRT, add_entry

from trtops.cache.local import LocalStore
from trtops.cli import main

HERE = ["--gpu", H100[0], "--compute-capability", H100[1], "--tensorrt", TRT]
IO = {"tensors": [{"name": "input", "mode": "input", "dtype": "float32", "shape": [-1, 3, -1, -1]},
                  {"name": "output", "mode": "output", "dtype": "float32", "shape": [-1, 4, -1, -1]}],
      "profiles": [{"input": {"min": [1, 3, 8, 8], "opt": [1, 3, 16, 16], "max": [1, 3, 32, 32]}}]}

Change = Callable[[dict], "dict | bytes"]


def _set(path: str, value: object) -> Change:
    """A change of a document: ``value`` at ``path`` (keys and list indexes, ``/``-separated)."""
    def change(document: dict) -> dict:
        *parents, last = path.split("/")
        node: object = document
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]  # type: ignore[index]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value  # type: ignore[index]
        return document
    return change


DEEP = b"[" * 200000
META_CASES: dict[str, Change] = {
    "deep-nesting": lambda meta: DEEP,
    "deep-nesting-inside": lambda meta: b'{"engine_sha256": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    "size-big": _set("files/engine.plan/size", "big"),
    "engine-size-string": _set("engine_size", "4096"),
    "gpu-string": _set("gpu", "NVIDIA H100"),
    "io-list": _set("io", [1, 2]),
    "shape-not-integer": _set("io/tensors/0/shape", [1, "three", 8, 8]),
    "shape-float": _set("io/profiles/0/input/min", [1, 3, 8.5, 8]),
    "bad-tensorrt-version": _set("tensorrt_version", "10.13-evil; rm -rf /"),
    "created-at-not-time": _set("created_at", {"$date": 0}),
    "files-not-object": _set("files", ["engine.plan"]),
    "over-1MiB": lambda meta: json.dumps({**meta, "padding": "x" * (1 << 20)}).encode(),
}
ACCURACY_CASES: dict[str, Change] = {
    "accuracy-deep-nesting": lambda acc: DEEP,
    "accuracy-state-number": _set("state", 1),
    "accuracy-unknown-state": _set("state", "trusted"),
    "accuracy-cases-string": lambda acc: {**acc, "cases": "all passed"},
    "accuracy-case-shape": lambda acc: {**acc, "cases": [{"label": "x", "profile": 0,
                                                          "shapes": {"input": ["1"]}}]},
    "accuracy-not-object": lambda acc: b"[1, 2]",
    "accuracy-over-1MiB": lambda acc: json.dumps({**acc, "pad": "x" * (1 << 20)}).encode(),
}


@pytest.fixture(params=["dir", "s3"])
def remote(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, object]:
    """(URL for --remote, store) of an empty remote: a directory, or a SeaweedFS prefix."""
    if request.param == "dir":
        store = LocalStore(tmp_path / "remote")
        return str(store.root), store
    from trtops.cache.s3 import open_s3_store

    url = request.getfixturevalue("s3_url")
    return url, open_s3_store(url)


def _publish(tmp_path: Path, remote_store: object) -> tuple[str, str]:
    """A good and a bad entry (the bad one to be tampered with) on the remote."""
    from trtops.cache.transfer import push_entry

    seed = LocalStore(tmp_path / "seed")
    good = add_entry(seed, "good", io=IO, spec_id="m/good/fp16/lab", size=4096)[0].key
    bad = add_entry(seed, "bad", io=IO, spec_id="m/bad/fp16/lab", size=4096, seed=1)[0].key
    for key in (good, bad):
        push_entry(seed, remote_store, key)
    return good, bad


def _tamper(store: object, key: str, name: str, change: Change) -> None:
    """Rewrite one metadata file of a stored entry through the store's transport."""
    objects = store.objects  # type: ignore[attr-defined]
    object_name = f"engines/{key[:2]}/{key}/{name}"
    changed = change(json.loads(objects.get(object_name)))
    objects.put(object_name, changed if isinstance(changed, bytes) else json.dumps(changed).encode())


def _pull(url: str, node: Path, *extra: str) -> tuple[int, str]:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "trtops", "pull", "--remote", url, "--cache",
                           str(node), *extra, *HERE], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    return done.returncode, done.stdout + done.stderr


CASES = [(META_FILE_NAME, name, change) for META_FILE_NAME, cases in
         (("meta.json", META_CASES), ("accuracy.json", ACCURACY_CASES))
         for name, change in cases.items()]


@pytest.mark.parametrize("file_name,case,change", CASES, ids=[c[1] for c in CASES])
def test_a_malformed_entry_is_skipped_and_the_rest_pulled(remote, file_name: str, case: str,
                                                          change: Change, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    url, store = remote
    good, bad = _publish(tmp_path, store)
    _tamper(store, bad, file_name, change)
    node, dest = tmp_path / "node", tmp_path / "deploy"
    code = main(["pull", "--remote", url, "--cache", str(node), "--dest", str(dest), *HERE])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Traceback" not in out + err and "internal error" not in err
    assert set(LocalStore(node).list_keys()) == {good}
    assert (dest / "python" / "good_fp16_lab.py").is_file()
    assert f"warning: skipped remote entry {bad[:12]}: damaged" in err, err
    assert "1 damaged (skipped)" in err
    # The dry run and --json tell why, too.
    assert main(["pull", "--remote", url, "--cache", str(node), "--dry-run", *HERE]) == 0
    assert f"({bad[:12]})" in capsys.readouterr().out
    assert main(["pull", "--remote", url, "--cache", str(node), "--json", *HERE]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["damaged"] == 1
    assert any(s["key"] == bad and s["reason"].startswith("damaged: ") for s in report["skipped"])


def test_the_cli_survives_deep_json_in_a_subprocess(tmp_path: Path) -> None:
    """The deep-nesting case through the real entry point (its own recursion limit and
    stack), on a directory remote."""
    store = LocalStore(tmp_path / "remote")
    good, bad = _publish(tmp_path, store)
    _tamper(store, bad, "meta.json", META_CASES["deep-nesting"])
    _tamper(store, good, "accuracy.json", lambda acc: acc)  # untouched
    code, output = _pull(str(store.root), tmp_path / "node")
    assert code == 0, output
    assert "Traceback" not in output and "internal error" not in output
    assert "nested too deeply" in output


def test_metadata_reads_are_capped_before_parsing(tmp_path: Path) -> None:
    """A 3 MiB meta.json is refused after reading 1 MiB + 1 byte of it, never parsed."""
    from trtops.cache.entry_schema import MAX_METADATA_BYTES

    store = LocalStore(tmp_path / "remote")
    _, bad = _publish(tmp_path, store)
    _tamper(store, bad, "meta.json", lambda meta: b" " * (3 << 20) + b"{}")
    assert len(store.read_file(bad, "meta.json")) == MAX_METADATA_BYTES + 1
    from trtops.errors import CacheError

    with pytest.raises(CacheError, match="larger than 1 MiB"):
        store.read_meta(bad)


@pytest.mark.parametrize("case", ["gpu-string", "io-list", "size-big", "bad-tensorrt-version"])
def test_a_malformed_local_entry_is_found_and_deleted_by_cache_verify(
        case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = LocalStore(tmp_path / "remote")
    good, bad = _publish(tmp_path, store)
    node, dest = tmp_path / "node", tmp_path / "deploy"
    assert main(["pull", "--remote", str(store.root), "--cache", str(node), *HERE]) == 0
    _tamper(LocalStore(node), bad, "meta.json", META_CASES[case])
    capsys.readouterr()
    assert main(["cache", "verify", "--cache", str(node)]) == 1
    out, err = capsys.readouterr()
    assert f"corrupt {bad}: meta.json field" in out, out + err
    assert "Traceback" not in out + err
    assert main(["cache", "verify", "--cache", str(node), "--delete"]) == 1
    assert set(LocalStore(node).list_keys()) == {good}
    capsys.readouterr()
    code = main(["pull", "--remote", str(store.root), "--cache", str(node), "--dest", str(dest), *HERE])
    err = capsys.readouterr().err
    assert code == 0, err
    assert set(LocalStore(node).list_keys()) == {good, bad}
    assert (dest / "python" / "bad_fp16_lab.py").is_file()


def test_pull_with_dest_over_a_malformed_local_entry_is_no_internal_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Before `cache verify --delete`: the damaged local copy gets no loader (exit 1, its
    reason), the other engine does, and nothing crashes."""
    store = LocalStore(tmp_path / "remote")
    good, bad = _publish(tmp_path, store)
    node, dest = tmp_path / "node", tmp_path / "deploy"
    assert main(["pull", "--remote", str(store.root), "--cache", str(node), *HERE]) == 0
    _tamper(LocalStore(node), bad, "meta.json", META_CASES["io-list"])
    capsys.readouterr()
    code = main(["pull", "--remote", str(store.root), "--cache", str(node), "--dest", str(dest), *HERE])
    out, err = capsys.readouterr()
    assert code in (0, 1), err
    assert "Traceback" not in out + err and "internal error" not in err
    assert (dest / "python" / "good_fp16_lab.py").is_file()
    assert not (dest / "python" / "bad_fp16_lab.py").exists()


# --------------------------------------------------------------------------- permissions


def test_pulled_files_keep_umask_permissions(remote, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """A serving account must be able to read what a deploy account pulled: files are
    0666 minus the umask (0644 under 022), whatever the remote's files were."""
    from trtops.fsutil import FILE_MODE

    url, store = remote
    good, _ = _publish(tmp_path, store)
    if isinstance(store, LocalStore):  # a remote written by a stricter account
        for path in store.entry_dir(good).iterdir():
            path.chmod(0o600)
    node, dest = tmp_path / "node", tmp_path / "deploy"
    assert main(["pull", "--remote", url, "--cache", str(node), "--dest", str(dest), *HERE]) == 0
    entry = LocalStore(node).entry_dir(good)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in entry.iterdir()}
    assert modes and set(modes.values()) == {FILE_MODE}, modes
    assert stat.S_IMODE((dest / "python" / "good_fp16_lab.py").stat().st_mode) == FILE_MODE


# --------------------------------------------------------------------------- timing caches


def test_a_tampered_timing_cache_never_reaches_tensorrt(remote, tmp_path: Path) -> None:
    """Timing caches carry the sha256 recorded when written; bytes that do not match it
    (or have none recorded) are not returned, so TensorRT never deserializes them."""
    url, store = remote
    signature = "cc9.0-nvidia-h100-80gb-hbm3"
    store.write_timing_cache(TRT, signature, b"timing cache bytes")
    assert store.read_timing_cache(TRT, signature) == b"timing cache bytes"
    name = f"timing/{TRT}/{signature}.cache"
    store.objects.put(name, b"timing cache bytes, swapped")
    assert store.read_timing_cache(TRT, signature) is None
    store.objects.delete(name + ".sha256")
    assert store.read_timing_cache(TRT, signature) is None
    assert store.list_timing_caches() == [(TRT, signature)]  # the digest is no timing cache


# --------------------------------------------------------------------------- secrets


SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"


@pytest.mark.parametrize("endpoint", [
    f"http://AKIDEXAMPLE:{SECRET}@127.0.0.1:9",
    f"http://AKIDEXAMPLE:{SECRET}@127.0.0.1:notaport",
    f"ht!tp://AKIDEXAMPLE:{SECRET}@host",
    f"http://AKIDEXAMPLE:{SECRET}@[::1",
], ids=["userinfo", "bad-port", "bad-scheme", "bad-ipv6"])
@pytest.mark.parametrize("verbose", [False, True], ids=["plain", "verbose"])
@pytest.mark.parametrize("via", ["url", "env"])
def test_secrets_in_the_endpoint_are_never_printed(endpoint: str, verbose: bool, via: str,
                                                   tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from remote_helpers import set_fake_credentials

    set_fake_credentials(os.environ)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "another-secret-value-from-env")
    if via == "env":
        monkeypatch.setenv("TRTOPS_S3_ENDPOINT_URL", endpoint)
        remote = "s3://bucket/prefix"
    else:
        from urllib.parse import quote

        remote = f"s3://bucket/prefix?endpoint_url={quote(endpoint, safe='')}"
    code = main([*(["-v"] if verbose else []), "pull", "--remote", remote,
                 "--cache", str(tmp_path / "node"), *HERE])
    out, err = capsys.readouterr()
    assert code == 1, err
    assert SECRET not in out + err and "another-secret-value-from-env" not in out + err
    assert "internal error" not in err


def test_the_redaction_helper() -> None:
    from trtops.redact import redact

    text = redact(f"Invalid endpoint: http://ak:{SECRET}@h:9000/x?X-Amz-Signature=abc&y=1 and "
                  f"s3://user:pw@bucket")
    assert SECRET not in text and "abc" not in text and "pw@" not in text
    assert "http://***@h:9000/x?X-Amz-Signature=***&y=1" in text
