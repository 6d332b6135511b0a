"""Where each dataset's original files come from, and the digests they are checked against.

This module is data, not behaviour: ``fetch`` and ``verify`` take a source table as an
argument (``SOURCES`` by default), so tests pass their own URLs and digests and never
touch the real hosts. Every digest below is copied from a published list, named in
``checksum_from``; where none is published (PetImages, AFHQ) the entry has none, and
``fetch`` records the SHA-256 of what it received instead of pretending it was checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Resource:
    """One file of a dataset's original distribution, with its mirrors tried in order."""

    filename: str
    urls: tuple[str, ...]
    md5: str | None = None
    sha256: str | None = None
    size: int | None = None  # bytes, when published
    checksum_from: str = ""  # where the digest was published (repository and path)

    @property
    def has_digest(self) -> bool:
        return bool(self.md5 or self.sha256)


@dataclass(frozen=True)
class Source:
    """A dataset's downloadable form: its files and the local layouts ``import`` accepts."""

    dataset: str
    resources: tuple[Resource, ...]
    homepage: str
    licence: str
    layouts: tuple[str, ...] = field(default=())  # human-readable, shown by `data list`


_MNIST_MIRRORS = (
    # The order torchvision tries (pytorch/vision torchvision/datasets/mnist.py), then the
    # Google CVDF mirror that TensorFlow Datasets downloads from; both serve the LeCun files.
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
_MNIST_FILES = (
    # (file, MD5 from torchvision, size and SHA-256 from TensorFlow Datasets)
    (
        "train-images-idx3-ubyte.gz",
        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        9912422,
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    ),
    (
        "train-labels-idx1-ubyte.gz",
        "d53e105ee54ea40749a09fcbcd1e9432",
        28881,
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    ),
    (
        "t10k-images-idx3-ubyte.gz",
        "9fb629c4189551a2d022fa330f9573f3",
        1648877,
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    ),
    (
        "t10k-labels-idx1-ubyte.gz",
        "ec29112dd5afa0611ce80d1b7f02629c",
        4542,
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    ),
)
_MNIST_FROM = (
    "MD5: pytorch/vision torchvision/datasets/mnist.py; "
    "size + SHA-256: tensorflow/datasets tensorflow_datasets/url_checksums/mnist.txt"
)

PETIMAGES_ZIP = "kagglecatsanddogs_5340.zip"

SOURCES: dict[str, Source] = {
    s.dataset: s
    for s in (
        Source(
            "mnist",
            tuple(
                Resource(name, tuple(m + name for m in _MNIST_MIRRORS), md5, sha, size, _MNIST_FROM)
                for name, md5, size, sha in _MNIST_FILES
            ),
            homepage="http://yann.lecun.com/exdb/mnist/",
            licence="no licence stated by the authors; commonly redistributed under CC BY-SA 3.0",
            layouts=("a folder with the four idx files (.gz or uncompressed), or its MNIST/raw/ subfolder",),
        ),
        Source(
            "cifar10",
            (
                Resource(
                    "cifar-10-binary.tar.gz",
                    ("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",),
                    md5="c32a1d4ab5d03f1284b67883e8d87530",
                    checksum_from="aria-ml/dataeval src/dataeval/utils/datasets/_cifar10.py "
                    "(the MD5 the Toronto download page lists for the binary version)",
                ),
            ),
            homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
            licence="no licence stated; cite Krizhevsky 2009",
            layouts=("cifar-10-binary.tar.gz, or its extracted cifar-10-batches-bin/ folder (binary version only)",),
        ),
        Source(
            "catsdogs",
            (
                Resource(
                    PETIMAGES_ZIP,
                    (
                        "https://download.microsoft.com/download/3/E/1/3E1C3F21-ECDB-4869-8368-6DEBA77B919F/"
                        + PETIMAGES_ZIP,
                    ),
                    checksum_from="none published: Microsoft lists no checksum for this archive",
                ),
            ),
            homepage="https://www.microsoft.com/en-us/download/details.aspx?id=54765",
            licence="Kaggle Dogs vs. Cats / Microsoft Asirra: non-commercial research use",
            layouts=(
                "kagglecatsanddogs_*.zip or its PetImages/{Cat,Dog}/ folder",
                "an ImageFolder tree (zip or folder): train/{cat,dog}/ with test/ or val/",
            ),
        ),
        Source(
            "afhq",
            (
                Resource(
                    "afhq.zip",
                    (
                        # The link in clovaai/stargan-v2 download.sh, then the same Dropbox file
                        # with dl=1, Dropbox's switch for a direct download instead of a web page.
                        "https://www.dropbox.com/s/t9l9o3vsx2jai3z/afhq.zip?dl=0",
                        "https://www.dropbox.com/s/t9l9o3vsx2jai3z/afhq.zip?dl=1",
                    ),
                    checksum_from="none published: clovaai/stargan-v2 download.sh gives only the URL",
                ),
            ),
            homepage="https://github.com/clovaai/stargan-v2",
            licence="CC BY-NC 4.0",
            layouts=("afhq.zip or its afhq/{train,val}/{cat,dog,wild}/ folder (the classes present are kept)",),
        ),
    )
}

# Local archives whose digest is published although we do not download them: an older
# PetImages release (TensorFlow Datasets recorded it; the URL no longer serves it).
KNOWN_ARCHIVES: dict[str, Resource] = {
    "kagglecatsanddogs_3367a.zip": Resource(
        "kagglecatsanddogs_3367a.zip",
        (),
        sha256="f9553e426bd725354ed3a27e3c6920caadb55c835d1ebd880d2e56d3f1fbb22b",
        size=824894548,
        checksum_from="tensorflow/datasets tensorflow_datasets/url_checksums/cats_vs_dogs.txt",
    ),
}

# The cache-form files shipped beside the repository (../shared/data): their SHA-256 as
# listed in that folder's README.md, so `verify` can check a copy wherever it is found.
SHARED_CACHE_SHA256: dict[str, str] = {
    "mnist.npz": "b7a84cdadea6498cc8e9dcffd89a3a792dd6f749f7be51fcd42e55152bbc2c9c",
    "cifar10.npz": "a4e3621fa9e6d18ace83b7634e477991efb6665757a10b5c153ee87921398197",
    "kaggle_dogs_vs_cats_64.npz": "ed56c31b94c650c2acc943aebb22d5f2998efbfde53a1ecb207531fd71b6ddba",
}
# where those digests come from, as `data verify` names it: a path relative to the repository, not to the folder the
# command runs in (QA, 2026-12-07: "listed in ../shared/data/README.md" read as a path from /tmp)
SHARED_CACHE_FROM = "the README.md of the shared data folder beside the repository (../shared/data from its root)"


def published_resource(filename: str, sources: dict[str, Source] | None = None) -> Resource | None:
    """The resource with a published digest for a local file of this name, if any.

    ``import`` checks a local copy against it before parsing, as ``fetch`` does a download.
    """
    for source in (SOURCES if sources is None else sources).values():
        for r in source.resources:
            if r.filename == filename and r.has_digest:
                return r
    return KNOWN_ARCHIVES.get(filename)
