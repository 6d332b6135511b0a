"""Shapes-10: a procedurally generated 32x32 RGB, 10-class stand-in for CIFAR-10.

Used offline when the real CIFAR-10 files are absent, so the CIFAR benchmarks still
train on something a small CNN can learn but cannot solve trivially.

The class is carried only by *shape or texture*: foreground and background colours,
position, scale, rotation and aspect are random per image, and every image gets
distractor blobs/lines, a background gradient and Gaussian pixel noise.  Colour
statistics are therefore independent of the label (a raw-pixel linear model sits
near chance) while spatial filters, which a CNN learns, separate the classes.

Rendering is vectorised over images: each image is a signed-distance field (SDF,
in pixels, negative inside) evaluated on a shared coordinate grid, turned into an
anti-aliased alpha mask and alpha-blended.  No per-pixel or per-image Python loops.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datasets.arrays import Split

CLASSES: tuple[str, ...] = (
    "disk",
    "square",
    "triangle",
    "ring",
    "cross",
    "h_stripes",
    "v_stripes",
    "diagonal",
    "checker",
    "dots",
)
N_CLASSES = len(CLASSES)
_SHAPE_CLASSES = frozenset(range(5))  # solid outlines; the rest are textured patches
_DIAGONAL = CLASSES.index("diagonal")
_LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R 601 luminance weights

# Rotation per class: (base angle, uniform jitter), radians.  Orientation is what
# separates the three stripe classes, so those barely jitter; the solid shapes get
# a modest spin (a square at 45 degrees would be a diamond, a new shape to learn).
_ROTATION: dict[int, tuple[float, float]] = {
    0: (0.0, np.pi),  # disk: spin only orients the ellipse an aspect change makes
    1: (0.0, 0.2),
    2: (0.0, 0.2),
    3: (0.0, np.pi),
    4: (0.0, 0.2),
    5: (0.0, 0.1),
    6: (0.0, 0.1),
    7: (np.pi / 4, 0.1),  # sign flipped per image: both diagonals
    8: (0.0, 0.1),
    9: (0.0, 0.2),
}

# Difficulty knobs, tuned so the Keras CIFAR-tutorial CNN (conv 32/64/64 + dense 64,
# Adam 1e-3, batch 64) reaches ~65-80% test accuracy after 3 epochs on 5000 images
# (glorot init ~0.78, torch default init ~0.66, over 6 seeds), while logistic
# regression on raw pixels stays below 20%.  The luminance gap matters most: with an
# RGB-distance floor instead (pure hue changes allowed) the same CNN stalled near 30%.
# tests/test_shapes.py holds the cheap guards.


@dataclass(frozen=True)
class Domain:
    """The look of one image domain; the classes (what is drawn) stay the same across domains.

    Two domains of the same classes make a cross-dataset transfer experiment with a
    real, controllable domain gap (DESIGN.md: procedural two-domain offline defaults).
    """

    name: str
    min_contrast: float = 100.0  # min luminance gap between foreground and background (0-255)
    chroma: float = 80.0  # max per-channel colour offset around that luminance
    noise_sigma: tuple[float, float] = (4.0, 16.0)  # per-image Gaussian pixel noise std range
    clutter_p: float = 0.5  # probability each of 3 blob and 3 line slots holds a distractor
    gradient: float = 40.0  # max background ramp amplitude per channel
    shape_radius: tuple[float, float] = (7.0, 12.0)  # solid shapes: half-size, pixels
    texture_half: tuple[float, float] = (8.0, 13.0)  # textured patches: half-width of the square window, pixels
    period: tuple[float, float] = (4.0, 7.0)  # texture period, pixels
    aspect: float = 0.25  # solid shapes: log aspect ratio uniform in +-this
    jitter: float = 8.0  # max offset of the object centre from the image centre, pixels


# Shapes-10 as tuned above: small objects anywhere, clutter, noise (the CIFAR-10 stand-in).
CLUTTERED = Domain("cluttered")
# Large, centred objects on a plain background with little noise (the AFHQ / cat-dog
# stand-in: AFHQ's animal faces fill a centred frame, CIFAR's objects do not).
CLEAN = Domain(
    "clean",
    min_contrast=120.0,
    noise_sigma=(0.0, 3.0),
    clutter_p=0.0,
    gradient=10.0,
    shape_radius=(13.0, 15.0),
    texture_half=(14.0, 16.0),
    period=(8.0, 11.0),
    aspect=0.1,
    jitter=1.5,
)

_CHUNK = 256  # images rendered at once: keeps the float32 planes cache-sized (~3 MB each)


def make_shapes10(n_train: int, n_test: int, seed: int = 0, size: int = 32) -> tuple[Split, Split, tuple[str, ...]]:
    """Generate balanced train/test splits of Shapes-10 plus the class names."""
    return make_shapes(n_train, n_test, seed=seed, size=size)


def make_shapes(
    n_train: int,
    n_test: int,
    seed: int = 0,
    size: int = 32,
    domain: Domain = CLUTTERED,
    class_ids: tuple[int, ...] = tuple(range(N_CLASSES)),
) -> tuple[Split, Split, tuple[str, ...]]:
    """Balanced train/test splits of the classes ``class_ids`` drawn in ``domain``.

    Labels are 0..len(class_ids)-1 in the order given. Train and test come from
    independent child streams of ``seed``, so changing ``n_test`` never changes the
    training images (and vice versa).
    """
    if n_train < 0 or n_test < 0:
        raise ValueError(f"split sizes must be >= 0, got {n_train}, {n_test}")
    if size < 16:
        raise ValueError(f"size must be >= 16 to render the textures, got {size}")
    if not class_ids or any(c not in range(N_CLASSES) for c in class_ids) or len(set(class_ids)) < len(class_ids):
        raise ValueError(f"class_ids must be distinct ids in 0..{N_CLASSES - 1}, got {class_ids}")
    train_ss, test_ss = np.random.SeedSequence(seed).spawn(2)
    ids = np.asarray(class_ids, dtype=np.int64)
    train = _make_split(n_train, np.random.default_rng(train_ss), size, domain, ids)
    test = _make_split(n_test, np.random.default_rng(test_ss), size, domain, ids)
    return train, test, tuple(CLASSES[c] for c in class_ids)


def _make_split(n: int, rng: np.random.Generator, size: int, domain: Domain, ids: np.ndarray) -> Split:
    """Balanced labels (counts differ by at most one), shuffled, rendered in chunks."""
    y = rng.permutation(np.arange(n, dtype=np.int64) % len(ids))
    x = np.empty((n, size, size, 3), dtype=np.uint8)
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        x[start:stop] = _render(ids[y[start:stop]], rng, size, domain)
    return Split(x, y)


def _alpha(d: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage from a pixel-unit SDF: a one-pixel soft edge, shape (n, 1, H, W)."""
    a = np.subtract(0.5, d, dtype=np.float32)
    np.clip(a, 0.0, 1.0, out=a)
    return a[:, None]


def _blend(img: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> None:
    """In place on channels-first ``img``: img += alpha * (colour - img), per image.

    Channels-first so the broadcast inner loops run over whole H*W planes, not over 3 channels.
    """
    diff = colour[:, :, None, None] - img
    diff *= alpha
    img += diff


def _colours(rng: np.random.Generator, n: int, contrast: float, chroma_max: float) -> tuple[np.ndarray, np.ndarray]:
    """Random background/foreground colours whose luminances differ by >= ``contrast``.

    Hue, saturation and which of the two is brighter are random per image, so colour
    says nothing about the class; the luminance gap keeps the shape visible through
    the noise (a pure hue difference is easy to miss for a small CNN after 3 epochs).
    """
    lo = rng.uniform(0, 255 - contrast, n)
    hi = rng.uniform(lo + contrast, 255)
    swap = rng.random(n) < 0.5
    lum = np.stack([np.where(swap, hi, lo), np.where(swap, lo, hi)])  # (2, n): bg, fg
    chroma = rng.uniform(-chroma_max, chroma_max, (2, n, 3))
    chroma -= (chroma @ _LUMA)[..., None]  # zero luminance: only the hue/saturation moves
    rgb = np.clip(lum[..., None] + chroma, 0, 255).astype(np.float32)
    return rgb[0], rgb[1]


def _shape_sdf(c: int, u: np.ndarray, v: np.ndarray, r: np.ndarray) -> np.ndarray:
    """SDF (pixels) of solid shape class ``c`` with half-size ``r`` in local coords."""
    r = r[:, None, None]
    p, q = u / r, v / r  # unit coordinates
    if c == 0:  # disk
        d = np.hypot(p, q) - 1.0
    elif c == 1:  # square
        d = np.maximum(np.abs(p), np.abs(q)) - 0.85
    elif c == 2:  # equilateral triangle: intersection of three half-planes
        d = np.maximum(np.maximum(q, -0.866 * p - 0.5 * q), 0.866 * p - 0.5 * q) - 0.55
    elif c == 3:  # ring
        d = np.abs(np.hypot(p, q) - 0.72) - 0.28
    else:  # cross: union of two bars
        ap, aq = np.abs(p), np.abs(q)
        d = np.minimum(np.maximum(ap - 1.0, aq - 0.3), np.maximum(ap - 0.3, aq - 1.0))
    return d * r


def _texture_sdf(
    c: int, u: np.ndarray, v: np.ndarray, half: np.ndarray, period: np.ndarray, phase: np.ndarray
) -> np.ndarray:
    """SDF (pixels) of texture class ``c`` clipped to a square window of ``half`` pixels."""
    half, period = half[:, None, None], period[:, None, None]
    pu, pv = phase[:, 0, None, None], phase[:, 1, None, None]
    window = np.maximum(np.abs(u), np.abs(v)) - half
    if c in (5, 6, 7):  # stripes across v (horizontal) or u (vertical / diagonal after rotation)
        t = (v if c == 5 else u) / period + pu
        tex = (np.abs(t - np.round(t)) - 0.25) * period
    elif c == 8:  # checkerboard of period/2 cells
        cell = period / 2
        gu, gv = u / cell + pu, v / cell + pv
        fu, fv = gu - np.floor(gu), gv - np.floor(gv)
        edge = np.minimum(np.minimum(fu, 1 - fu), np.minimum(fv, 1 - fv)) * cell
        inside = (np.floor(gu) + np.floor(gv)) % 2 == 0
        tex = np.where(inside, -edge, edge)
    else:  # dots on a square lattice
        gu, gv = u / period + pu, v / period + pv
        tex = np.hypot(gu - np.floor(gu) - 0.5, gv - np.floor(gv) - 0.5) * period - 0.3 * period
    return np.maximum(tex, window)


def _col(a: np.ndarray) -> np.ndarray:
    """Per-image scalars as (n, 1, 1) float32, to broadcast against (n, H, W) planes."""
    return np.asarray(a, dtype=np.float32)[:, None, None]


def _render(y: np.ndarray, rng: np.random.Generator, size: int, dom: Domain) -> np.ndarray:
    """Render one chunk of images for labels ``y``; returns uint8 (n, size, size, 3).

    Works channels-first internally; per-image offsets along x and y are kept
    separable ((n, 1, W) and (n, H, 1)) so each rotated coordinate costs one full-size op.
    """
    n = len(y)
    k = size / 32.0  # all pixel-unit parameters below are tuned at 32x32
    grid = np.arange(size, dtype=np.float32) + 0.5
    xs, ys = grid[None, None, :], grid[None, :, None]

    # Background: flat random colour plus a random linear gradient.
    bg, fg = _colours(rng, n, dom.min_contrast, dom.chroma)
    g_dir = rng.uniform(0, 2 * np.pi, n)
    ramp = _col(np.cos(g_dir) / size) * (xs - size / 2) + _col(np.sin(g_dir) / size) * (ys - size / 2)
    g_amp = rng.uniform(-dom.gradient, dom.gradient, (n, 3)).astype(np.float32)
    img = ramp[:, None] * g_amp[:, :, None, None]
    img += bg[:, :, None, None]

    # Clutter under the main object: up to 3 blobs in one colour, up to 3 thin line
    # segments in another.  Absent ones are parked off-canvas instead of masked.
    n_slots = 3
    off = np.float32(-1e3)
    blob_d = None
    for _ in range(n_slots):
        cx, cy = rng.uniform(0, size, (2, n))
        cx = np.where(rng.random(n) < dom.clutter_p, cx, off)
        rad = rng.uniform(1.2, 3.0, n) * k
        d = np.sqrt((xs - _col(cx)) ** 2 + (ys - _col(cy)) ** 2) - _col(rad)
        blob_d = d if blob_d is None else np.minimum(blob_d, d, out=blob_d)
    line_d = None
    for _ in range(n_slots):
        cx, cy = rng.uniform(0, size, (2, n))
        cx = np.where(rng.random(n) < dom.clutter_p, cx, off)
        ang = rng.uniform(0, np.pi, n)
        ca, sa = _col(np.cos(ang)), _col(np.sin(ang))
        half_len = _col(rng.uniform(3, 8, n) * k)
        dx, dy = xs - _col(cx), ys - _col(cy)
        along = dx * ca + dy * sa
        excess = along - np.clip(along, -half_len, half_len)
        d = np.hypot(dx * sa - dy * ca, excess) - 0.6 * k
        line_d = d if line_d is None else np.minimum(line_d, d, out=line_d)
    assert blob_d is not None and line_d is not None  # n_slots > 0
    _blend(img, _alpha(blob_d), rng.uniform(0, 255, (n, 3)).astype(np.float32))
    _blend(img, _alpha(line_d), rng.uniform(0, 255, (n, 3)).astype(np.float32))

    # Main object: per-image pose, then a per-class SDF on that class's images only.
    theta = np.empty(n)
    jitter = rng.uniform(-1, 1, n)
    flip = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    for c, (base, jit) in _ROTATION.items():
        m = y == c
        theta[m] = (base * flip[m] if c == _DIAGONAL else base) + jit * jitter[m]
    shape = np.isin(y, list(_SHAPE_CLASSES))
    radius = np.where(shape, rng.uniform(*dom.shape_radius, n), rng.uniform(*dom.texture_half, n)) * k
    cx, cy = size / 2 + rng.uniform(-dom.jitter, dom.jitter, (2, n)) * k
    aspect = np.exp(rng.uniform(-dom.aspect, dom.aspect, n))
    aspect[~shape] = 1.0  # textures keep square cells; their scale is in `period`
    period = rng.uniform(*dom.period, n).astype(np.float32) * k
    phase = rng.random((n, 2)).astype(np.float32)

    ct, st = np.cos(theta), np.sin(theta)
    dx, dy = xs - _col(cx), ys - _col(cy)
    u = dx * _col(ct * aspect) + dy * _col(st * aspect)
    v = dy * _col(ct / aspect) - dx * _col(st / aspect)

    d = np.empty((n, size, size), dtype=np.float32)
    radius = radius.astype(np.float32)
    for c in range(N_CLASSES):
        m = y == c
        if not m.any():
            continue
        if c in _SHAPE_CLASSES:
            d[m] = _shape_sdf(c, u[m], v[m], radius[m])
        else:
            d[m] = _texture_sdf(c, u[m], v[m], radius[m], period[m], phase[m])
    _blend(img, _alpha(d), fg)

    sigma = rng.uniform(*dom.noise_sigma, n).astype(np.float32)
    noise = rng.standard_normal(img.shape, dtype=np.float32)
    noise *= sigma[:, None, None, None]
    img += noise
    np.clip(img, 0, 255, out=img)
    np.rint(img, out=img)
    return img.astype(np.uint8).transpose(0, 2, 3, 1)
