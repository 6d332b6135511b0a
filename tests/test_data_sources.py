"""Real data sources: download (mirrors, checksums, interruptions), safe archives, importers, `bench data`.

Downloads are tested against a real HTTP server on 127.0.0.1 serving fixtures built
here (tiny idx, CIFAR binary and image archives), with the source table injected, so
no test touches a dataset host. Nothing here imports torch or tensorflow.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import re
import struct
import subprocess
import sys
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.run.data_cli import add_data_parser, run_data_command
from datasets import download, registry, store
from datasets.archive import UnsafeArchive, open_tree
from datasets.download import DownloadError
from datasets.importers import ChecksumMismatch, import_path
from datasets.sources import Resource, Source
from tests.conftest import REPO

# ---------------------------------------------------------------- fixtures: files


def idx(a: np.ndarray) -> bytes:
    return bytes([0, 0, 8, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.astype(np.uint8).tobytes()


def mnist_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "train-images-idx3-ubyte": rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(12, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.array([7, 2, 1, 0, 4], np.uint8),
    }


def mnist_gz() -> dict[str, bytes]:
    return {f"{k}.gz": gzip.compress(idx(v), mtime=0) for k, v in mnist_arrays().items()}


def cifar_batch(labels: list[int], first: int) -> bytes:
    """Records whose R/G/B planes hold first+i, 100+i, 200-i, with pixel (row 0, col 1) of R set to 250."""
    out = bytearray()
    for i, label in enumerate(labels):
        planes = np.stack([np.full((32, 32), v, np.uint8) for v in (first + i, 100 + i, 200 - i)])
        planes[0, 0, 1] = 250
        out += bytes([label]) + planes.tobytes()
    return bytes(out)


CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def cifar_members() -> dict[str, bytes]:
    members = {f"cifar-10-batches-bin/data_batch_{b}.bin": cifar_batch([b, b + 1], 10 * b) for b in range(1, 6)}
    members["cifar-10-batches-bin/test_batch.bin"] = cifar_batch([9, 3, 5], 70)
    members["cifar-10-batches-bin/batches.meta.txt"] = ("\n".join(CIFAR_CLASSES) + "\n\n").encode()
    return members


def tar_gz(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tf.addfile(info)
    return buf.getvalue()


def image(colour: tuple[int, int, int], size: tuple[int, int] = (24, 18), fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, fmt)
    return buf.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def image_folder_members() -> dict[str, bytes]:
    """train/{cat,dog} + test/{cat,dog}, one corrupt and one truncated JPEG, and a Thumbs.db."""
    m = {f"pets/train/cat/{i}.jpg": image((200, 30, 30)) for i in range(3)}
    m |= {f"pets/train/dog/{i}.jpg": image((30, 30, 200)) for i in range(3)}
    m |= {f"pets/test/cats/{i}.jpg": image((210, 20, 20)) for i in range(2)}
    m |= {f"pets/test/dogs/{i}.jpg": image((20, 20, 210)) for i in range(2)}
    m["pets/train/dog/broken.jpg"] = b"\xff\xd8\xff\xe0 definitely not a jpeg body"
    m["pets/train/cat/truncated.jpg"] = image((1, 2, 3), (64, 64))[:300]
    m["pets/train/cat/Thumbs.db"] = b"\0" * 16
    return m


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# ---------------------------------------------------------------- fixtures: HTTP server


class FixtureServer:
    """Routes: path -> (body, mode); mode "ok" or "short" (Content-Length says more than is sent)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[bytes, str]] = {}
        self.log: list[tuple[str, int]] = []
        routes, log = self.routes, self.log

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path not in routes:
                    log.append((self.path, 404))
                    self.send_error(404)
                    return
                body, mode = routes[self.path]
                log.append((self.path, 200))
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body if mode == "ok" else body[: len(body) // 2])
                self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = FixtureServer()
    yield s
    s.close()


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench")
    add_data_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["data", *argv])


def run(capsys, *argv: str, sources: dict[str, Source] | None = None) -> tuple[int, str, str]:
    code = run_data_command(parse(*argv), sources=sources)
    out = capsys.readouterr()
    return code, out.out, out.err


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".partial")]


# ---------------------------------------------------------------- downloads


def test_fetch_tries_the_next_mirror_and_builds_the_cache(clean_env, server, capsys):
    files = mnist_gz()
    for name, data in files.items():
        server.routes[f"/mirror2/{name}"] = (data, "ok")
    sources = {
        "mnist": Source(
            "mnist",
            tuple(
                Resource(name, (f"{server.base}/mirror1/{name}", f"{server.base}/mirror2/{name}"), md5=md5(data))
                for name, data in files.items()
            ),
            homepage="test",
            licence="test",
        )
    }
    code, out, _ = run(capsys, "fetch", "mnist", sources=sources)
    assert code == 0, out
    assert ("/mirror1/train-images-idx3-ubyte.gz", 404) in server.log
    assert ("/mirror2/train-images-idx3-ubyte.gz", 200) in server.log
    assert "HTTP 404" in out and "MD5 match the published ones" in out

    ds = registry.load("mnist", fallback="none")
    arrays = mnist_arrays()
    assert ds.train.x.shape == (12, 28, 28, 1) and ds.test.x.shape == (5, 28, 28, 1)
    assert np.array_equal(ds.train.x[..., 0], arrays["train-images-idx3-ubyte"])
    assert ds.test.y.tolist() == [7, 2, 1, 0, 4]
    prov = json.loads((registry.default_cache_dir() / "mnist.npz.source.json").read_text())
    assert all("/mirror2/" in d["url"] for d in prov["downloads"])

    served = len(server.log)  # fetched again: downloads are reused, nothing is requested
    assert run(capsys, "fetch", "mnist", "--force", sources=sources)[0] == 0
    assert len(server.log) == served


def test_checksum_mismatch_is_a_clear_error_and_caches_nothing(clean_env, server):
    data = gzip.compress(b"tampered", mtime=0)
    server.routes["/m/t10k-labels-idx1-ubyte.gz"] = (data, "ok")
    wrong = "0" * 32
    res = Resource("t10k-labels-idx1-ubyte.gz", (f"{server.base}/m/t10k-labels-idx1-ubyte.gz",), md5=wrong)
    sources = {"mnist": Source("mnist", (res,), "test", "test")}
    cache = registry.default_cache_dir()
    with pytest.raises(
        DownloadError, match=rf"(?s)t10k-labels-idx1-ubyte.gz: no mirror.*MD5 is {md5(data)}, expected {wrong}"
    ):
        store.fetch_dataset("mnist", cache, sources=sources, progress=False, log=lambda _: None)
    assert not (cache / "mnist.npz").exists()
    assert not (cache / "downloads" / "mnist" / "t10k-labels-idx1-ubyte.gz").exists()
    assert leftovers(cache) == []


def test_interrupted_download_is_never_a_cache_entry(clean_env, server, capsys):
    archive = zip_bytes({"PetImages/Cat/1.jpg": image((200, 0, 0)), "PetImages/Dog/1.jpg": image((0, 0, 200))})
    server.routes["/petimages.zip"] = (archive, "short")  # Content-Length promises more than is sent
    res = Resource("kagglecatsanddogs_5340.zip", (f"{server.base}/petimages.zip",))  # no published digest
    sources = {"catsdogs": Source("catsdogs", (res,), "test", "test")}
    code, _, err = run(capsys, "fetch", "catsdogs", sources=sources)
    assert code == 1 and "incomplete: the connection closed after" in err and "nothing was cached" in err
    cache = registry.default_cache_dir()
    assert leftovers(cache) == [] and not list(cache.rglob("*.zip")) and not list(cache.rglob("*.sha256"))
    assert registry.find_file("catsdogs") is None


def test_ctrl_c_mid_download_leaves_no_partial(tmp_path: Path, monkeypatch):
    def interrupted(url: str, partial: Path, **_: object) -> None:
        partial.write_bytes(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(download, "download", interrupted)
    with pytest.raises(KeyboardInterrupt):
        download.fetch(Resource("x.zip", ("http://127.0.0.1:9/x.zip",)), tmp_path, log=lambda _: None)
    assert list(tmp_path.iterdir()) == []


def test_fetch_without_published_checksum_records_one_and_verify_says_so(clean_env, server, capsys):
    members = {
        f"PetImages/{c}/{i}.jpg": image(col)
        for c, col in (("Cat", (220, 0, 0)), ("Dog", (0, 0, 220)))
        for i in range(5)
    }
    server.routes["/kagglecatsanddogs_5340.zip"] = (zip_bytes(members), "ok")
    res = Resource("kagglecatsanddogs_5340.zip", (f"{server.base}/kagglecatsanddogs_5340.zip",))
    sources = {"catsdogs": Source("catsdogs", (res,), "test", "test")}
    assert run(capsys, "fetch", "catsdogs", "--size", "16", sources=sources)[0] == 0
    ds = registry.load("catsdogs")
    assert ds.classes == ("cat", "dog") and ds.image_shape == (16, 16, 3)
    assert (len(ds.train), len(ds.test)) == (8, 2)  # 20% of each class held out
    code, out, _ = run(capsys, "verify", "catsdogs", sources=sources)
    assert code == 0, out
    assert "no published checksum exists" in out and "recorded at download" in out
    assert "does not prove the download was authentic" in out


def test_a_web_page_served_instead_of_an_archive_is_rejected_and_the_next_mirror_used(clean_env, server, capsys):
    server.routes["/afhq.zip?dl=0"] = (b"<!DOCTYPE html><html>Dropbox preview</html>", "ok")
    members = {
        f"afhq/{split}/{c}/{i}.jpg": image((9, 9, 9))
        for split in ("train", "val")
        for c in ("cat", "wild")
        for i in range(2)
    }
    server.routes["/afhq.zip?dl=1"] = (zip_bytes(members), "ok")
    res = Resource("afhq.zip", (f"{server.base}/afhq.zip?dl=0", f"{server.base}/afhq.zip?dl=1"))
    code, out, _ = run(capsys, "fetch", "afhq", "--size", "8", sources={"afhq": Source("afhq", (res,), "t", "t")})
    assert code == 0 and "it looks like a web page" in out
    ds = registry.load("afhq")
    assert ds.classes == ("cat", "wild") and (len(ds.train), len(ds.test)) == (4, 4)


# ---------------------------------------------------------------- CIFAR-10


def test_cifar_binary_fetch_gives_nhwc_in_batch_order(clean_env, server):
    archive = tar_gz(cifar_members())
    server.routes["/cifar-10-binary.tar.gz"] = (archive, "ok")
    res = Resource("cifar-10-binary.tar.gz", (f"{server.base}/cifar-10-binary.tar.gz",), md5=md5(archive))
    sources = {"cifar10": Source("cifar10", (res,), "test", "test")}
    store.fetch_dataset("cifar10", registry.default_cache_dir(), sources=sources, progress=False, log=lambda _: None)
    ds = registry.load("cifar10", fallback="none")
    assert ds.train.x.shape == (10, 32, 32, 3) and ds.test.x.shape == (3, 32, 32, 3)
    assert ds.train.y.tolist() == [1, 2, 2, 3, 3, 4, 4, 5, 5, 6] and ds.test.y.tolist() == [9, 3, 5]
    assert ds.train.x[0, 5, 5].tolist() == [10, 100, 200]  # channel planes became the last axis
    assert ds.train.x[0, 0, 1, 0] == 250 and ds.train.x[0, 1, 0, 0] == 10  # row-major within a plane
    assert ds.classes == tuple(CIFAR_CLASSES)


def test_cifar_python_version_is_refused(tmp_path: Path, capsys, clean_env):
    (tmp_path / "cifar-10-batches-py").mkdir()
    (tmp_path / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"\x80\x04pickle")
    code, _, err = run(capsys, "import", "cifar10", str(tmp_path))
    assert code == 2 and "pickle" in err and "cifar-10-binary.tar.gz" in err


# ---------------------------------------------------------------- archives and images


def test_traversal_and_links_are_refused_naming_the_member(tmp_path: Path, capsys, clean_env):
    evil = tmp_path / "evil.zip"
    evil.write_bytes(zip_bytes({"PetImages/Cat/1.jpg": image((1, 1, 1)), "../escaped.jpg": image((2, 2, 2))}))
    code, _, err = run(capsys, "import", "catsdogs", str(evil))
    assert code == 2 and "'../escaped.jpg'" in err and "refused" in err
    assert not (tmp_path.parent / "escaped.jpg").exists() and registry.find_file("catsdogs") is None

    absolute = tmp_path / "abs.zip"
    absolute.write_bytes(zip_bytes({"/etc/cron.d/x.jpg": b"x"}))
    with pytest.raises(UnsafeArchive, match=r"'/etc/cron\.d/x\.jpg' is an absolute path"):
        open_tree(absolute)
    linked = tmp_path / "linked.tar.gz"
    linked.write_bytes(tar_gz({"a/train/cat/1.jpg": image((1, 1, 1))}, links={"a/train/cat/2.jpg": "/etc/passwd"}))
    with pytest.raises(UnsafeArchive, match=r"'a/train/cat/2\.jpg' is a symbolic link"):
        open_tree(linked)


def test_corrupt_images_are_skipped_counted_and_reported(tmp_path: Path, capsys, clean_env):
    path = tmp_path / "pets.zip"
    path.write_bytes(zip_bytes(image_folder_members()))
    code, out, err = run(capsys, "import", "catsdogs", str(path), "--size", "8")
    assert code == 0, err
    assert "skipped 2 corrupt or undecodable image(s)" in out
    assert "pets/train/dog/broken.jpg" in out and "pets/train/cat/truncated.jpg" in out
    ds = registry.load("catsdogs")
    assert (len(ds.train), len(ds.test)) == (6, 4) and ds.image_shape == (8, 8, 3)
    assert ds.train.y.tolist() == [0, 0, 0, 1, 1, 1]
    assert ds.train.x[0, ..., 0].min() > 150 and ds.train.x[3, ..., 2].min() > 150  # red cats, blue dogs
    prov = json.loads((registry.default_cache_dir() / "catsdogs.npz.source.json").read_text())
    assert len(prov["skipped_images"]) == 2


def test_import_from_local_directories(tmp_path: Path, capsys, clean_env):
    src = tmp_path / "src"
    raw = src / "MNIST" / "raw"  # torchvision's layout, uncompressed idx files
    raw.mkdir(parents=True)
    for name, a in mnist_arrays().items():
        (raw / name).write_bytes(idx(a))
    code, out, _ = run(capsys, "import", "mnist", str(src))
    assert code == 0 and "no published checksum: checked by structure only" in out
    labels = mnist_arrays()["train-labels-idx1-ubyte"]
    assert registry.load("mnist", fallback="none").train.y.tolist() == labels.tolist()

    for name, data in cifar_members().items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(data)
    assert run(capsys, "import", "cifar10", str(src / "cifar-10-batches-bin"))[0] == 0
    assert len(registry.load("cifar10", fallback="none").train) == 10

    afhq = src / "afhq"  # train + val, only two of AFHQ's three classes present
    thirds = np.zeros((10, 30, 3), np.uint8)
    thirds[:, :10, 0] = thirds[:, 10:20, 1] = thirds[:, 20:, 2] = 200
    buf = io.BytesIO()
    Image.fromarray(thirds).save(buf, "PNG")
    wide = buf.getvalue()  # the centre crop keeps only the green middle third
    for split, n in (("train", 3), ("val", 1)):
        for cls in ("cat", "dog"):
            (afhq / split / cls).mkdir(parents=True)
            for i in range(n):
                (afhq / split / cls / f"{i}.png").write_bytes(wide)
    code, out, _ = run(capsys, "import", "afhq", str(afhq), "--size", "10")
    assert code == 0 and "val/ used as the test split" in out
    ds = registry.load("afhq")
    assert ds.classes == ("cat", "dog") and (len(ds.train), len(ds.test)) == (6, 2)
    assert ds.train.x.shape == (6, 10, 10, 3) and ds.train.x[0, 5, 5].tolist() == [0, 200, 0]


def test_import_of_the_petimages_folder_itself_as_the_docs_show_it(tmp_path: Path, capsys, clean_env):
    """`bench data import catsdogs ~/PetImages` (docs/data.md): the folder given is PetImages/ itself, its Cat/ and
    Dog/ right under it. Its members were named from inside it (`Cat/1.jpg`), so no PetImages/ was found and the
    import was refused ('no images found in PetImages/{Cat,Dog}/'); the folder above it imported."""
    pets = tmp_path / "home" / "PetImages"
    for cls, colour in (("Cat", (220, 0, 0)), ("Dog", (0, 0, 220))):
        (pets / cls).mkdir(parents=True)
        for i in range(5):
            (pets / cls / f"{i}.jpg").write_bytes(image(colour))
    for folder in (pets, pets.parent):
        code, out, err = run(capsys, "import", "catsdogs", str(folder), "--size", "8")
        assert code == 0, err
        assert "no published split: 20% of each class held out" in out
        ds = registry.load("catsdogs", fallback="none")
        assert ds.classes == ("cat", "dog") and (len(ds.train), len(ds.test)) == (8, 2)
        assert ds.train.x[0, ..., 0].min() > 150 and ds.train.x[-1, ..., 2].min() > 150  # red cats, blue dogs
    other = pets.rename(tmp_path / "home" / "MyPets")  # Cat/ and Dog/ in a folder of no layout: still refused
    code, _, err = run(capsys, "import", "catsdogs", str(other))
    assert code == 2 and "no images found in PetImages/{Cat,Dog}/" in err, err


def test_local_archive_with_a_published_checksum_is_checked_before_parsing(tmp_path: Path):
    folder = tmp_path / "mnist"  # the real table: our fixture .gz files are not the published ones
    folder.mkdir()
    for name, data in mnist_gz().items():
        (folder / name).write_bytes(data)
    with pytest.raises(
        ChecksumMismatch, match=r"train-images-idx3-ubyte.gz: size is .*published in MD5: pytorch/vision"
    ):
        import_path("mnist", folder)
    archive = tmp_path / "cifar-10-binary.tar.gz"
    archive.write_bytes(tar_gz(cifar_members()))
    with pytest.raises(ChecksumMismatch, match=r"MD5 is \w+, expected c32a1d4ab5d03f1284b67883e8d87530"):
        import_path("cifar10", archive)


# ---------------------------------------------------------------- list, verify, bad input


def test_list_and_verify(tmp_path: Path, capsys, clean_env):
    code, out, _ = run(capsys, "list")
    assert code == 0 and "get it: python -m bench data fetch catsdogs" in out
    # afhq has no embedded default of its own: catsdogs stands in for it, as `bench list` and a run say
    assert "afhq      not cached (runs use catsdogs in its place)" in out and "runs need it" not in out
    assert registry.load("afhq").source.endswith("(stand-in for afhq)")
    folder = tmp_path / "digits"
    folder.mkdir()
    for name, a in mnist_arrays().items():
        (folder / name).write_bytes(idx(a))
    run(capsys, "import", "mnist", str(folder))
    written = registry.default_cache_dir() / "mnist.npz"
    code, out, _ = run(capsys, "list")
    assert f"mnist     cached: {written.resolve()}, {written.stat().st_size:,} bytes" in out
    assert "17 images (12 train + 5 test) of 28x28x1" in out

    code, out, _ = run(capsys, "verify", "mnist")
    assert code == 0 and "matches the one recorded by `bench data import`" in out
    with written.open("r+b") as f:  # flip one byte of an image
        f.seek(written.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))
    code, out, _ = run(capsys, "verify", "mnist")
    assert code == 1 and "FAIL" in out and "NOT verified" in out


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"y_test": np.full(5, 10, np.uint8)}, "y_test has labels outside 0..9 (min 10, max 10; 10 classes)"),
        ({"x_train": np.zeros((12, 28, 28, 1), np.float32)}, "x_train must be uint8 (N, H, W, C)"),
        ({"y_train": np.zeros(11, np.uint8)}, "y_train must hold one label per image (12), got shape (11,)"),
        ({"x_test": np.zeros((5, 32, 32, 1), np.uint8)}, "x_train images are (28, 28, 1) (H, W, C), x_test images"),
    ],
)
def test_list_calls_cached_only_what_a_run_can_read(tmp_path: Path, capsys, clean_env, change, why):
    """`data list` read the headers alone and said "cached, 17 images" of files every run refused (QA,
    2026-12-07): it checks all but the pixels, and says what a run would say."""
    arrays = {
        "x_train": np.zeros((12, 28, 28, 1), np.uint8),
        "y_train": np.arange(12, dtype=np.uint8) % 10,
        "x_test": np.zeros((5, 28, 28, 1), np.uint8),
        "y_test": np.arange(5, dtype=np.uint8),
        "classes": np.array([str(i) for i in range(10)]),
    }
    np.savez(tmp_path / "mnist.npz", **arrays)
    code, out, _ = run(capsys, "list", "--data-dir", str(tmp_path))
    assert code == 0 and "mnist     cached: " in out and "17 images (12 train + 5 test)" in out
    np.savez(tmp_path / "mnist.npz", **{**arrays, **change})
    code, out, _ = run(capsys, "list", "--data-dir", str(tmp_path))
    assert code == 0 and f"mnist     cached but not usable: {why}" in out and "mnist     cached:" not in out, out
    with pytest.raises(store.DatasetFileError, match=re.escape(why)):
        store.read_npz(tmp_path / "mnist.npz", "mnist")  # the run's reader says the same


def test_verify_checks_shared_cache_files_against_the_readme(shared_data: Path, capsys, clean_env):
    code, out, _ = run(capsys, "verify", "mnist", "--data-dir", str(shared_data))
    assert (
        code == 0 and "matches the one listed in the README.md of the shared data folder beside the repository" in out
    )


def test_bad_input_exits_2_with_one_line(tmp_path: Path, capsys, clean_env):
    for argv in (("fetch", "imagenet"), ("import", "mnist"), ("frobnicate",)):
        with pytest.raises(SystemExit) as e:
            parse(*argv)
        assert e.value.code == 2
    assert "invalid choice: 'imagenet'" in capsys.readouterr().err  # argparse's own one-line error
    nope = str(tmp_path / "nope")
    for argv in (("fetch", "mnist", "--size", "32"), ("import", "mnist", nope), ("list", "--data-dir", nope)):
        code, _, err = run(capsys, *argv)
        assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "import", "catsdogs", str(tmp_path / "empty"))
    assert code == 2 and "no images found" in err


def test_help_of_every_data_command(capsys):
    for argv in ((), ("list",), ("fetch",), ("verify",), ("import",)):
        with pytest.raises(SystemExit) as e:
            parse(*argv, "--help")
        assert e.value.code == 0
    out = capsys.readouterr().out
    assert "{list,fetch,verify,import}" in out and "NAME PATH" in out and "--size" in out


def test_a_cache_file_runs_would_never_read_is_not_written(tmp_path: Path, capsys, clean_env):
    """QA, 2026-12-07: `data import catsdogs PETS --data-dir D`, D holding the shared Kaggle copy, wrote D/catsdogs.npz
    and said "runs find it with --data-dir D": runs read kaggle_dogs_vs_cats_64.npz first, and the import never.
    Import and fetch refuse, naming the file that comes first, and write nothing; elsewhere the import goes on."""
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "kaggle_dogs_vs_cats_64.npz").write_bytes(b"the shared copy")
    path = tmp_path / "pets.zip"
    path.write_bytes(zip_bytes(image_folder_members()))
    for argv in (("import", "catsdogs", str(path)), ("fetch", "catsdogs")):
        code, out, err = run(capsys, *argv, "--data-dir", str(shared))
        assert code == 2 and out == "", out
        assert err == (
            f"error: {shared} holds kaggle_dogs_vs_cats_64.npz, which runs read before catsdogs.npz (the file this "
            "writes): written there it would never be read; give another --data-dir, or move kaggle_dogs_vs_cats_64.npz"
            " away\n"
        ), err
        assert sorted(p.name for p in shared.iterdir()) == ["kaggle_dogs_vs_cats_64.npz"]
    code, out, _ = run(capsys, "import", "catsdogs", str(path), "--size", "8", "--data-dir", str(tmp_path / "own"))
    assert code == 0 and f"runs find it with --data-dir {tmp_path / 'own'}" in out


def test_a_fetch_timeout_outside_its_range_is_refused_by_the_parser(capsys):
    """QA, 2026-12-07: --timeout 0 read "cannot connect: Operation now in progress" and -1 raised the socket's
    ValueError, a traceback."""
    for bad in ("0", "-1", "1e9", "soon"):
        with pytest.raises(SystemExit) as e:
            parse("fetch", "mnist", "--timeout", bad)
        assert e.value.code == 2
    assert "argument --timeout: -1: give 0.1 to 3600 seconds" in capsys.readouterr().err
    assert parse("fetch", "mnist", "--timeout", "2.5").timeout == 2.5


def test_registry_finds_imported_catsdogs_and_knows_afhq(clean_env):
    assert registry.DATASETS["catsdogs"].files == ("kaggle_dogs_vs_cats_64.npz", "catsdogs.npz")
    assert store.cache_file_name("catsdogs") == "catsdogs.npz" and store.cache_file_name("afhq") == "afhq.npz"
    with pytest.raises(registry.DatasetNotFound, match=r"afhq\.npz.*python -m bench data fetch afhq"):
        registry.load("afhq", fallback="none")


def test_fallback_none_on_afhq_says_it_turned_its_stand_in_off(clean_env):
    """afhq has no embedded default but a stand-in (catsdogs); the message said "it has no embedded default", as if
    nothing could have stood in, where the task's fallback = "none" had turned catsdogs off."""
    for call in (registry.load, registry.check_found):
        with pytest.raises(registry.DatasetNotFound) as e:
            call("afhq", None, "none")
        said = str(e.value)
        assert "and the spec says fallback='none', which turns off its stand-in (catsdogs); set " in said, said
        assert "no embedded default" not in said
    with pytest.raises(registry.DatasetNotFound, match=r"and the spec says fallback='none'; set BENCH_DATA_DIR"):
        registry.check_found("mnist", None, "none")  # an embedded default turned off: as it said


def test_data_commands_import_no_framework():
    code = "import sys, bench.run.data_cli, datasets.store; print(sorted({'torch', 'tensorflow'} & set(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr


def test_an_image_tree_of_one_class_is_refused_found_or_decoded(tmp_path: Path, capsys, clean_env):
    """QA: a PetImages tree whose Dog/ folder was renamed (or whose dog images are all corrupt) imported as a
    one-class dataset, exit 0: a classifier trained on it cannot be wrong. Refused, naming what it found."""
    pets = tmp_path / "PetImages"
    (pets / "Cat").mkdir(parents=True)
    (pets / "Doggies").mkdir()
    for i in range(5):
        (pets / "Cat" / f"{i}.jpg").write_bytes(image((220, 0, 0)))
        (pets / "Doggies" / f"{i}.jpg").write_bytes(image((0, 0, 220)))
    code, _, err = run(capsys, "import", "catsdogs", str(pets), "--size", "8")
    assert code == 2 and "images of one class only found (cat (5 images)); a classifier needs two" in err, err
    (pets / "Doggies").rename(pets / "Dog")
    for f in (pets / "Dog").iterdir():
        f.write_bytes(b"not a jpeg")
    code, _, err = run(capsys, "import", "catsdogs", str(pets), "--size", "8")
    assert code == 2 and "images of one class only decoded (cat (5 images))" in err, err
    assert not (registry.default_cache_dir() / "catsdogs.npz").exists()  # nothing written
