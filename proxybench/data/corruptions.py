"""The 15 CIFAR-10-C corruptions, generated on the fly, seeded, at any resolution.

:func:`corrupt` applies one of the common corruptions of Hendrycks & Dietterich (ICLR 2019)
at severity 1..5 to a batch of ``uint8`` images ``(N, H, W, 3)``. The constants are the
**CIFAR-10-C** ones, copied from ``ImageNet-C/create_c/make_cifar_c.py`` in
github.com/hendrycks/robustness (:data:`CIFAR10_C`); they are much milder than the ImageNet-C
constants (``gaussian_noise`` σ = 0.04 at severity 1, against 0.08 for ImageNet-C), which is
what ``imagecorruptions`` and most packages implement.

**Why on the fly and at any resolution.** FlatNAS evaluates networks whose input is 128–224
px on CIFAR (bilinearly upsampled 32-px images) and regenerates the corruptions at that
resolution instead of resizing the 32-px CIFAR-10-C images (DESIGN.md §7). A corruption at
resolution R therefore has to mean "the CIFAR-10-C corruption of the same scene, rendered at
R". The rule used here, with ``s = min(H, W) / 32``: every *spatial* constant (blur radii,
displacement fields, texture and flake sizes, block sizes) is relative to the 32-px CIFAR frame
and is scaled by ``s``; *per-pixel* effects (sensor noise, JPEG's 8×8 blocks) and *pointwise*
colour maps stay per pixel, because scaling them would be the same as corrupting at 32 px and
resizing, which is what FlatNAS avoids. At 32 px (``s = 1``) every formula reduces to
``make_cifar_c.py``'s. Images must be at least 32×32.

========================  ===========================================  ===========================================  ======================================================
corruption (group)        implementation (source of the maths)          CIFAR-10-C constants (severity 1..5)         at resolution R (s = R/32)
========================  ===========================================  ===========================================  ======================================================
gaussian_noise (noise)    own: x + N(0, σ²), clip                      σ = .04 .06 .08 .09 .10                      per pixel, unscaled (sensor noise)
shot_noise (noise)        own: Poisson(x·λ)/λ                          λ = 500 250 100 75 50                        per pixel, unscaled
impulse_noise (noise)     own: scikit-image ``random_noise('s&p')``    amount = .01 .02 .03 .05 .07                 per pixel and channel, unscaled; each value is
                          semantics (Bernoulli(amount) per value,                                                    flipped with probability ``amount`` (today's
                          salt or pepper with probability ½)                                                         scikit-image; the 2018 version set a fixed count)
defocus_blur (blur)       own: ``make_cifar_c.disk`` (17×17 grid,      (radius, alias σ) = (.3,.4) (.4,.5) (.5,.6)  the 32-px kernel is magnified ×s (bilinear, renor-
                          3×3 cv2 Gaussian anti-alias) then a          (1,.2) (1.5,.1)                              malised): its disks are one pixel for radius < 1, so
                          reflect-101 correlation (cv2.filter2D)                                                     scaling the radius instead would blur severities
                                                                                                                     1..3 more than 4; large kernels use an FFT (same
                                                                                                                     result to ~1e-12)
glass_blur (blur)         own: Gaussian (scikit-image: mode nearest,   (σ, δ, iterations) = (.05,1,1) (.25,1,1)     σ × s, δ = round(δ·s), iterations unscaled. The
                          truncate 4), local "swaps", Gaussian again   (.4,1,1) (.25,1,2) (.4,1,2)                  reference's swap ``x[h,w], x[h',w'] = x[h',w'],
                                                                                                                     x[h,w]`` on numpy rows *copies* x[h',w'] into
                                                                                                                     x[h,w] (both end up equal); reproduced as such
motion_blur (blur)        ``imagecorruptions._motion_blur`` maths      (radius, σ) = (6,1) (6,1.5) (6,2) (8,2)      radius = round(r·s), σ × s; angle U(−45°, 45°).
                          (the Wand-free re-implementation of          (9,2.5)                                      Bit-identical to the package's function at 32 px
                          ImageMagick's MotionBlurImage that CIFAR-C
                          used): one-sided Gaussian line kernel of
                          width 2r+1, edge-replicated shifts
zoom_blur (blur)          own: mean of the image and centre zooms      zooms ``np.arange(1, e, .01)``, e = 1.06     relative to the image: unscaled. ``np.arange``'s
                          (make_cifar_c ``clipped_zoom``, centred      1.11 1.16 1.21 1.26 → 7 12 16 21 26 zooms   float end gives 7 (not 6) zooms at severity 1, as in
                          trim; scipy ``zoom`` order 1, done                                                         the reference
                          separably in NumPy: same numbers, ~10×
                          faster)
snow (weather)            own, structure of make_cifar_c ``snow``;     (μ, σ, zoom, threshold, blur radius, blur σ,  flakes: the N(μ, σ) field is zoomed by zoom·s (same
                          the flake layer's ImageMagick motion blur    blend) as in :data:`CIFAR10_C`               number of flakes as at 32 px), blur radius and σ × s;
                          is the motion_blur kernel above (layer                                                     angle U(−135°, −45°)
                          quantised to uint8 before and after)
frost (weather)           own blend ``a·x + b·frost``; textures:       (a, b) = (1,.2) (1,.3) (.9,.4) (.85,.4)      texture resized by 0.2·s (cv2 INTER_LINEAR maths),
                          ``frost1..5`` from the installed             (.75,.45)                                    so a crop covers the same part of the texture as
                          ``imagecorruptions-imaug`` package (the                                                    the reference's 32-px crop; random texture (one of
                          reference draws ``randint(5)``, so                                                         the first five) and crop offset
                          frost6 is never used)
fog (weather)             own: make_cifar_c ``plasma_fractal``         (a, wibble decay) = (.2,3) (.5,3) (.75,2.5)  map size = next power of two ≥ max(H, W) (32 at 32
                          (diamond-square) drawn from the generator    (1,2) (1.5,1.75)                             px), cropped: the fractal is relative to the image
brightness (weather)      own: scikit-image's ``rgb2hsv``/``hsv2rgb``  V + c = .05 .1 .15 .2 .3                     pointwise
                          re-done in NumPy (same floats), V + c
contrast (digital)        own: (x − mean)·c + mean per channel         c = .75 .5 .4 .3 .15                         pointwise (image means)
elastic_transform         own, make_cifar_c's (random affine with      IMSIZE·(0,0,.08) (.05,.2,.07) (.08,.06,.06)  affine jitter ± R·a₂ (the reference's IMSIZE = R);
(digital)                 reflect-101 border, then a smoothed          (.1,.04,.05) (.1,.03,.03): (α, σ, affine)    the displacement field is drawn on the 32-px frame
                          uniform displacement field, bilinear                                                       with IMSIZE = 32 and upsampled (bilinear) ×s, so
                          ``map_coordinates``, mode reflect)                                                         distortions keep their size relative to the image
pixelate (digital)        PIL BOX down then BOX up, as make_cifar_c    c = .95 .9 .85 .75 .65                       down to int(32·c) on the 32-px frame (block size
                                                                                                                     × s), then BOX up to R
jpeg_compression          PIL JPEG save/load, as make_cifar_c          quality = 80 65 58 50 40                     per pixel (the codec's 8×8 blocks), unscaled
(digital)
========================  ===========================================  ===========================================  ======================================================

Only the frost textures come from ``imagecorruptions-imaug``: every corruption function of that
package hard-codes the ImageNet-C constants (and some the ImageNet sizes), and its helpers draw
from the global NumPy RNG. Its folder is located with ``importlib.util.find_spec`` without
importing the package, so OpenCV and numba are never imported here. The maths of its helpers
(``disk``, ``plasma_fractal``, ``clipped_zoom``, ``_motion_blur``) is re-implemented with NumPy,
SciPy and Pillow, taking a generator and the scale.

**Seeding.** Every random draw of image ``i`` comes from its own
``numpy.random.Generator(PCG64(SeedSequence([seed, crc32(corruption), severity, i])))``
(:func:`image_rng`), where ``i`` is the image's index in its dataset (``indices``, default
``0..N-1``). No global RNG state is read or written, so a result depends only on
``(seed, corruption, severity, image, index)``: not on the batch it is in, the order of the
calls, other threads, or what else was corrupted before. The draws happen in the reference's
order (e.g. elastic: affine jitter, then dx, then dy). The streams are not the reference's
(it used the global Mersenne Twister with no seed), so images are equal in distribution to
CIFAR-10-C, not pixel for pixel. At 32 px the deterministic corruptions (defocus, zoom,
brightness, contrast, pixelate, JPEG) give the reference's pixels exactly, and so do glass blur
and the frost textures when fed the same draws (``tests/test_corruptions.py``); elastic differs
by rounding (cv2's ``warpAffine`` quantises coordinates to 1/32 px, here they are exact).

Example:
    >>> out = corrupt(images, "gaussian_noise", severity=3, seed=0)  # doctest: +SKIP
    >>> out.dtype, out.shape == images.shape  # doctest: +SKIP
    (dtype('uint8'), True)
"""

from __future__ import annotations

import functools
import importlib.util
import io
import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage

from proxybench._naming import suggest
from proxybench.errors import DataNotFoundError, InvalidSettingError, ProxybenchError

__all__ = [
    "CIFAR10_C",
    "CORRUPTIONS",
    "CORRUPTIONS_VERSION",
    "GROUPS",
    "MIN_SIZE",
    "SEVERITIES",
    "UnknownCorruptionError",
    "corrupt",
    "frost_textures_dir",
    "image_rng",
    "list_corruptions",
    "parse_corruptions",
]

#: Corruption name → group, in CIFAR-10-C's order (``make_cifar_c.py``).
CORRUPTIONS: Mapping[str, str] = MappingProxyType({
    "gaussian_noise": "noise", "shot_noise": "noise", "impulse_noise": "noise",
    "defocus_blur": "blur", "glass_blur": "blur", "motion_blur": "blur", "zoom_blur": "blur",
    "snow": "weather", "frost": "weather", "fog": "weather", "brightness": "weather",
    "contrast": "digital", "elastic_transform": "digital", "pixelate": "digital", "jpeg_compression": "digital",
})  # fmt: skip

#: Group name → its corruptions.
GROUPS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {g: tuple(n for n, gg in CORRUPTIONS.items() if gg == g) for g in ("noise", "blur", "weather", "digital")}
)

SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)

#: Bumped whenever :func:`corrupt` gives different pixels for the same arguments.
CORRUPTIONS_VERSION = "1"

#: Smallest height/width accepted (CIFAR's own size; the constants are relative to it).
MIN_SIZE = 32

_IMSIZE = 32  # make_cifar_c.py's elastic_transform constants are fractions of this

#: The per-severity constants of ``make_cifar_c.py`` (hendrycks/robustness), verbatim.
#: ``zoom_blur`` holds the ``np.arange(1, end, 0.01)`` ends; ``elastic_transform`` the
#: fractions that the reference multiplies by ``IMSIZE`` (α, σ, affine).
CIFAR10_C: Mapping[str, tuple[Any, ...]] = MappingProxyType({
    "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),
    "shot_noise": (500, 250, 100, 75, 50),
    "impulse_noise": (0.01, 0.02, 0.03, 0.05, 0.07),
    "defocus_blur": ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
    "glass_blur": ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)),
    "motion_blur": ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)),
    "zoom_blur": (1.06, 1.11, 1.16, 1.21, 1.26),
    "snow": (
        (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
        (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
        (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
        (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
    ),
    "frost": ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)),
    "fog": ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)),
    "brightness": (0.05, 0.1, 0.15, 0.2, 0.3),
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),
    "elastic_transform": (
        (0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03),
    ),
    "pixelate": (0.95, 0.9, 0.85, 0.75, 0.65),
    "jpeg_compression": (80, 65, 58, 50, 40),
})  # fmt: skip

_FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg")
_FROST_CHOICES = 5  # make_cifar_c.py: np.random.randint(5) — frost6 is never drawn
_FROST_BASE_SCALE = 0.2  # make_cifar_c.py: cv2.resize(frost, (0, 0), fx=0.2, fy=0.2)
_FFT_MIN_KERNEL = 12  # defocus kernels wider than this are applied with an FFT


class UnknownCorruptionError(ProxybenchError, KeyError):
    """A corruption name that :data:`CORRUPTIONS` does not hold."""

    def __str__(self) -> str:  # KeyError would otherwise wrap the message in quotes
        return str(self.args[0]) if self.args else ""


# --------------------------------------------------------------------------- public API


def list_corruptions(group: str | None = None) -> list[str]:
    """Corruption names in CIFAR-10-C's order, optionally only one group's."""
    if group is None:
        return list(CORRUPTIONS)
    if group not in GROUPS:
        raise UnknownCorruptionError(f"unknown corruption group '{group}'{suggest(group, GROUPS)}; groups: {', '.join(GROUPS)}")
    return list(GROUPS[group])


def parse_corruptions(spec: str | Sequence[str] | None) -> list[str]:
    """Corruption names from ``None`` (all 15), a list, or a comma list of names and groups.

    ``"all"`` means all 15; a group name (``noise``, ``blur``, ``weather``, ``digital``) means
    its corruptions. Order follows :data:`CORRUPTIONS`; duplicates are dropped.

    Raises:
        UnknownCorruptionError: A name is neither a corruption nor a group.
    """
    if spec is None:
        return list(CORRUPTIONS)
    items = [p.strip() for p in spec.split(",")] if isinstance(spec, str) else [str(p).strip() for p in spec]
    items = [p for p in items if p]
    if not items:
        raise UnknownCorruptionError("no corruption given; name some of: " + ", ".join(CORRUPTIONS))
    wanted: set[str] = set()
    for item in items:
        if item == "all":
            wanted.update(CORRUPTIONS)
        elif item in GROUPS:
            wanted.update(GROUPS[item])
        else:
            wanted.add(_check_name(item))
    return [n for n in CORRUPTIONS if n in wanted]


def image_rng(seed: int, corruption: str, severity: int, index: int) -> np.random.Generator:
    """The generator every random draw for one image comes from (see the module doc)."""
    key = [int(seed), zlib.crc32(corruption.encode("utf-8")), int(severity), int(index)]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(key)))


def corrupt(
    images: np.ndarray,
    corruption: str,
    severity: int,
    seed: int = 0,
    *,
    indices: Sequence[int] | np.ndarray | None = None,
) -> np.ndarray:
    """Apply a CIFAR-10-C corruption to ``uint8`` images of any resolution ≥ 32 px.

    Args:
        images: ``uint8`` array ``(N, H, W, 3)`` (or one image ``(H, W, 3)``), RGB 0..255.
        corruption: A name from :data:`CORRUPTIONS`.
        severity: 1..5.
        seed: Non-negative run seed.
        indices: Each image's index in its dataset (``N`` non-negative integers), which
            keys its random stream, so an image gets the same corruption in any batch;
            default ``0..N-1``.

    Returns:
        A new ``uint8`` array of the input's shape. As in ``make_cifar_c.py`` the float
        result is clipped to 0..255 and truncated (``np.uint8``), not rounded.

    Raises:
        UnknownCorruptionError: ``corruption`` is not known (the message names close matches).
        InvalidSettingError: ``severity`` is outside 1..5, ``seed`` or an index is negative,
            or ``images`` is not ``uint8`` RGB of at least 32×32.
        DataNotFoundError: ``frost`` without the ``imagecorruptions-imaug`` package installed.

    Example:
        >>> clean = np.full((2, 32, 32, 3), 128, np.uint8)
        >>> corrupt(clean, "brightness", 1)[0, 0, 0].tolist()  # (128/255 + 0.05) * 255 = 140.75
        [140, 140, 140]
    """
    name = _check_name(corruption)
    sev = _check_severity(severity)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or int(seed) < 0:
        raise InvalidSettingError(f"seed must be a non-negative integer, got {seed!r}")
    arr = np.asarray(images)
    single = arr.ndim == 3
    if single:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise InvalidSettingError(f"images must be an (N, H, W, 3) RGB array, got shape {tuple(np.shape(images))}")
    if arr.dtype != np.uint8:
        raise InvalidSettingError(f"images must be uint8 (0..255), got {arr.dtype}; convert with .astype(np.uint8)")
    n, h, w, _ = arr.shape
    if min(h, w) < MIN_SIZE:
        raise InvalidSettingError(
            f"images must be at least {MIN_SIZE}x{MIN_SIZE} px (the CIFAR-10-C constants are relative to 32 px), "
            f"got {h}x{w}; upsample them first"
        )
    if indices is None:
        idx = np.arange(n, dtype=np.int64)
    else:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.shape[0] != n:
            raise InvalidSettingError(f"indices has {idx.shape[0]} entries for {n} images")
        if n and idx.min() < 0:
            raise InvalidSettingError(f"indices must be non-negative, got {int(idx.min())}")
    if n == 0:
        out = arr.copy()
        return out[0] if single else out
    impl, random = _IMPL[name]
    rngs = [image_rng(int(seed), name, sev, int(i)) for i in idx] if random else None
    scale = min(h, w) / _IMSIZE
    result = impl(np.ascontiguousarray(arr), CIFAR10_C[name][sev - 1], scale, rngs)
    if result.dtype != np.uint8:
        result = np.clip(result, 0, 255).astype(np.uint8)
    return result[0] if single else result


def frost_textures_dir() -> Path:
    """The folder holding ``frost1.png`` .. ``frost6.jpg`` of the installed ``imagecorruptions`` package.

    Found with :func:`importlib.util.find_spec`, which does not import the package (so
    neither OpenCV nor numba is loaded).

    Raises:
        DataNotFoundError: The package, or its frost images, is not installed.
    """
    spec = importlib.util.find_spec("imagecorruptions")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        folder = Path(location) / "frost"
        if all((folder / f).is_file() for f in _FROST_FILES[:_FROST_CHOICES]):
            return folder
    raise DataNotFoundError(
        "the frost corruption needs the frost textures of the imagecorruptions-imaug package; "
        "install it with: pip install imagecorruptions-imaug"
    )


# --------------------------------------------------------------------------- checks


def _check_name(corruption: str) -> str:
    if corruption in CORRUPTIONS:
        return corruption
    hint = suggest(str(corruption), CORRUPTIONS)
    tail = " See: proxybench.data.corruptions.CORRUPTIONS" if hint else "; known: " + ", ".join(CORRUPTIONS)
    raise UnknownCorruptionError(f"unknown corruption '{corruption}'{hint}{tail}")


def _check_severity(severity: int) -> int:
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or int(severity) not in SEVERITIES:
        raise InvalidSettingError(f"severity must be an integer in 1..5, got {severity!r}")
    return int(severity)


# --------------------------------------------------------------------------- shared helpers


def _float01(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float64) / 255.0


def _clipped_zoom(img: np.ndarray, zoom: float) -> np.ndarray:
    """make_cifar_c's ``clipped_zoom`` on the axes 1 and 2 of a batch: centre crop, zoom, centre trim."""
    h, w = img.shape[1], img.shape[2]
    ch, cw = int(np.ceil(h / zoom)), int(np.ceil(w / zoom))
    top, left = (h - ch) // 2, (w - cw) // 2
    out = _zoom_linear(img[:, top : top + ch, left : left + cw], round(ch * zoom), round(cw * zoom))
    trim_top, trim_left = (out.shape[1] - h) // 2, (out.shape[2] - w) // 2
    return out[:, trim_top : trim_top + h, trim_left : trim_left + w]


def _zoom_linear(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """``scipy.ndimage.zoom(img, (1, out_h/h, out_w/w, ...), order=1)`` on axes 1 and 2, separably.

    SciPy's order-1 zoom maps output index ``o`` to input ``o·(n_in − 1)/(n_out − 1)``; doing
    the two axes one after the other in float64 gives its numbers (to the last bit of the
    output dtype) about ten times faster, which matters for zoom blur's 7..26 zooms.
    """

    def along(a: np.ndarray, axis: int, n_out: int) -> np.ndarray:
        n_in = a.shape[axis]
        if n_out == n_in:
            return a
        src = np.arange(n_out) * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros(1)
        lo = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
        hi = np.minimum(lo + 1, n_in - 1)
        shape = [1] * a.ndim
        shape[axis] = n_out
        f = (src - lo).reshape(shape)
        return np.take(a, lo, axis=axis) * (1 - f) + np.take(a, hi, axis=axis) * f

    return along(along(img.astype(np.float64), 1, out_h), 2, out_w).astype(img.dtype)


def _motion_blur(x: np.ndarray, radius: int, sigma: float, angle: float) -> np.ndarray:
    """``imagecorruptions.corruptions._motion_blur`` for one image ``(H, W[, C])``, as float64.

    A one-sided Gaussian line kernel of width ``2·radius + 1``; the shifted copies replicate
    the border (the package's ``shift``), taken here as slices of one edge-padded array,
    which gives the same numbers.
    """
    width = 2 * int(radius) + 1
    kernel = np.exp(-(np.arange(width) ** 2) / (2 * sigma**2)) / (np.sqrt(2 * np.pi) * sigma)
    kernel = kernel / np.sum(kernel)
    point = (width * np.sin(np.deg2rad(angle)), width * np.cos(np.deg2rad(angle)))
    hypot = math.hypot(point[0], point[1])
    h, w = x.shape[0], x.shape[1]
    shifts: list[tuple[int, int, int]] = []
    for i in range(width):
        dy = -math.ceil(((i * point[0]) / hypot) - 0.5)
        dx = -math.ceil(((i * point[1]) / hypot) - 0.5)
        if abs(dy) >= h or abs(dx) >= w:
            break  # the motion left the image (as the package)
        shifts.append((i, dx, dy))
    pad = max(max(abs(dx), abs(dy)) for _, dx, dy in shifts)
    widths = ((pad, pad), (pad, pad)) + ((0, 0),) * (x.ndim - 2)
    padded = np.pad(x, widths, mode="edge")
    blurred = np.zeros(x.shape, dtype=np.float64)
    for i, dx, dy in shifts:
        blurred = blurred + kernel[i] * padded[pad - dy : pad - dy + h, pad - dx : pad - dx + w]
    return blurred


def _gaussian(x: np.ndarray, sigma: float, **kwargs: Any) -> np.ndarray:
    """scikit-image ``gaussian(x, sigma, channel_axis=-1)`` on a batch ``(N, H, W, 3)``."""
    kwargs.setdefault("mode", "nearest")
    kwargs.setdefault("truncate", 4.0)
    return ndimage.gaussian_filter(x, sigma=(0, sigma, sigma, 0), **kwargs)


# --------------------------------------------------------------------------- noise

def _gaussian_noise(x: np.ndarray, c: float, s: float, rngs: list[np.random.Generator]) -> np.ndarray:
    out = np.empty(x.shape, dtype=np.float64)
    for k, rng in enumerate(rngs):
        xi = _float01(x[k])
        out[k] = np.clip(xi + rng.normal(size=xi.shape, scale=c), 0, 1) * 255
    return out


def _shot_noise(x: np.ndarray, c: float, s: float, rngs: list[np.random.Generator]) -> np.ndarray:
    out = np.empty(x.shape, dtype=np.float64)
    for k, rng in enumerate(rngs):
        xi = _float01(x[k])
        out[k] = np.clip(rng.poisson(xi * c) / c, 0, 1) * 255
    return out


def _impulse_noise(x: np.ndarray, c: float, s: float, rngs: list[np.random.Generator]) -> np.ndarray:
    out = np.empty(x.shape, dtype=np.float64)
    for k, rng in enumerate(rngs):
        xi = _float01(x[k])
        flipped = rng.random(xi.shape) <= c  # skimage _bernoulli(amount)
        salted = rng.random(xi.shape) <= 0.5  # skimage _bernoulli(salt_vs_pepper=0.5)
        xi[flipped & salted] = 1.0
        xi[flipped & ~salted] = 0.0
        out[k] = np.clip(xi, 0, 1) * 255
    return out


# --------------------------------------------------------------------------- blur


@functools.lru_cache(maxsize=64)
def _defocus_kernel(radius: float, alias_blur: float, scale: float) -> np.ndarray:
    """make_cifar_c's ``disk(radius, alias_blur)`` cropped to its support, magnified by ``scale``.

    At 32 px the kernel is the reference's: a disk on the 17×17 integer grid (a single pixel
    for radius < 1, which is why severities 1..3 differ only by the anti-alias σ), blurred by a
    3×3 cv2 Gaussian. At another resolution that same point-spread function is magnified
    (bilinear resampling of the 32-px kernel at ``1/scale`` steps, renormalised) rather than
    redrawn with radius·scale, which would turn the sub-pixel disks of severities 1..3 into
    real disks and blur them more than severity 4.
    """
    grid = np.arange(-8, 9)
    xx, yy = np.meshgrid(grid, grid)
    disk = np.array((xx**2 + yy**2) <= radius**2, dtype=np.float32)
    disk /= np.sum(disk)
    # cv2.GaussianBlur(disk, (3, 3), alias_blur): getGaussianKernel weights, reflect-101 border
    taps = np.exp(-(np.arange(-1, 2, dtype=np.float64) ** 2) / (2 * alias_blur**2))
    taps = (taps / taps.sum()).astype(np.float32)
    disk = ndimage.correlate1d(disk, taps, axis=0, mode="mirror")
    disk = ndimage.correlate1d(disk, taps, axis=1, mode="mirror")
    rows, cols = np.nonzero(disk)
    extent = int(max(np.abs(rows - 8).max(), np.abs(cols - 8).max()))
    kernel = disk[8 - extent : 8 + extent + 1, 8 - extent : 8 + extent + 1]
    if scale != 1.0:
        padded = np.pad(kernel.astype(np.float64), 1)  # zero ring: the magnified kernel fades to 0
        half = math.ceil(scale * (extent + 1))
        src = np.arange(-half, half + 1) / scale + extent + 1
        sy, sx = np.meshgrid(src, src, indexing="ij")
        kernel = ndimage.map_coordinates(padded, [sy, sx], order=1, mode="constant", cval=0.0)
        kernel /= kernel.sum()
        rows, cols = np.nonzero(kernel > 0)
        extent = int(max(np.abs(rows - half).max(), np.abs(cols - half).max()))
        kernel = kernel[half - extent : half + extent + 1, half - extent : half + extent + 1]
    kernel = np.ascontiguousarray(kernel)
    kernel.setflags(write=False)
    return kernel


def _defocus_blur(x: np.ndarray, c: tuple[float, float], s: float, rngs: None) -> np.ndarray:
    kernel = _defocus_kernel(float(c[0]), float(c[1]), float(s)).astype(np.float64)
    xf = _float01(x)
    if kernel.shape[0] < _FFT_MIN_KERNEL:
        # cv2.filter2D: correlation with a reflect-101 ("mirror") border
        out = ndimage.correlate(xf, kernel[None, :, :, None], mode="mirror")
    else:
        from scipy.signal import fftconvolve

        e = kernel.shape[0] // 2
        padded = np.pad(xf, ((0, 0), (e, e), (e, e), (0, 0)), mode="reflect")  # numpy reflect = reflect-101
        out = fftconvolve(padded, kernel[::-1, ::-1][None, :, :, None], mode="valid", axes=(1, 2))
    return np.clip(out, 0, 1) * 255


def _glass_blur(x: np.ndarray, c: tuple[float, int, int], s: float, rngs: list[np.random.Generator]) -> np.ndarray:
    sigma = c[0] * s
    delta = max(1, round(c[1] * s))
    iterations = int(c[2])
    _, h, w, _ = x.shape
    blurred = (_gaussian(_float01(x), sigma) * 255).astype(np.uint8)  # np.uint8(...) truncates
    rows = np.arange(h - delta, delta, -1)
    cols = np.arange(w - delta, delta, -1)
    flat_pos = (rows[:, None] * w + cols[None, :]).reshape(-1)
    positions = flat_pos.tolist()
    shuffled = np.empty_like(blurred)
    for k, rng in enumerate(rngs):
        order = list(range(h * w))  # order[p] = which original pixel now sits at p
        for _ in range(iterations):
            off = rng.integers(-delta, delta, size=(flat_pos.shape[0], 2))  # (dx, dy) per position
            sources = (flat_pos + off[:, 1] * w + off[:, 0]).tolist()
            for p, q in zip(positions, sources):
                # x[h, w], x[h', w'] = x[h', w'], x[h, w] on numpy rows copies x[h', w'] to both
                order[p] = order[q]
        shuffled[k] = blurred[k].reshape(-1, 3)[np.asarray(order)].reshape(h, w, 3)
    return np.clip(_gaussian(shuffled / 255.0, sigma), 0, 1) * 255


def _motion_blur_corruption(x: np.ndarray, c: tuple[float, float], s: float, rngs: list[np.random.Generator]) -> np.ndarray:
    radius = max(1, round(c[0] * s))
    sigma = c[1] * s
    out = np.empty(x.shape, dtype=np.float64)
    for k, rng in enumerate(rngs):
        angle = rng.uniform(-45, 45)
        out[k] = _motion_blur(x[k], radius, sigma, angle)
    return np.clip(out, 0, 255)


def _zoom_blur(x: np.ndarray, c: float, s: float, rngs: None) -> np.ndarray:
    zooms = np.arange(1, c, 0.01)  # the reference's expression, float end and all
    xf = (x / 255.0).astype(np.float32)
    out = np.zeros_like(xf)
    for zoom in zooms:
        out += _clipped_zoom(xf, float(zoom))
    return np.clip((xf + out) / (len(zooms) + 1), 0, 1) * 255


# --------------------------------------------------------------------------- weather


def _snow(x: np.ndarray, c: tuple[float, ...], s: float, rngs: list[np.random.Generator]) -> np.ndarray:
    loc, scale, zoom, threshold, mb_radius, mb_sigma, blend = c
    radius = max(1, round(mb_radius * s))
    sigma = mb_sigma * s
    _, h, w, _ = x.shape
    out = np.empty(x.shape, dtype=np.float64)
    for k, rng in enumerate(rngs):
        xi = x[k].astype(np.float32) / 255.0
        layer = rng.normal(size=(h, w), loc=loc, scale=scale)
        layer = _clipped_zoom(layer[None, :, :, None], zoom * s)[0]
        layer[layer < threshold] = 0
        layer8 = (np.clip(layer[:, :, 0], 0, 1) * 255).astype(np.uint8)  # the PNG handed to ImageMagick
        blurred = _motion_blur(layer8, radius, sigma, rng.uniform(-135, -45))
        flakes = (np.clip(np.round(blurred), 0, 255) / 255.0)[:, :, None]  # ImageMagick's uint8 output
        gray = (0.299 * xi[:, :, 0] + 0.587 * xi[:, :, 1] + 0.114 * xi[:, :, 2])[:, :, None]  # cv2 RGB2GRAY
        xi = blend * xi + (1 - blend) * np.maximum(xi, gray * 1.5 + 0.5)
        out[k] = np.clip(xi + flakes + np.rot90(flakes, k=2), 0, 1) * 255
    return out


@functools.lru_cache(maxsize=16)
def _frost_texture(index: int, factor: float) -> np.ndarray:
    """Frost texture ``index`` resized by ``factor`` like ``cv2.resize(..., fx, fy)`` (INTER_LINEAR)."""
    with Image.open(frost_textures_dir() / _FROST_FILES[index]) as im:
        tex = np.asarray(im.convert("RGB"), dtype=np.float64)  # cv2.imread drops alpha too
    h, w = tex.shape[:2]
    new_h, new_w = max(1, round(h * factor)), max(1, round(w * factor))

    def axis_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        src = np.clip((np.arange(n_out) + 0.5) / factor - 0.5, 0, n_in - 1)  # half-pixel centres
        lo = np.floor(src).astype(np.int64)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, (src - lo)

    lo, hi, f = axis_weights(h, new_h)
    tex = tex[lo] * (1 - f)[:, None, None] + tex[hi] * f[:, None, None]
    lo, hi, f = axis_weights(w, new_w)
    tex = tex[:, lo] * (1 - f)[None, :, None] + tex[:, hi] * f[None, :, None]
    out = np.clip(np.round(tex), 0, 255).astype(np.uint8)
    out.setflags(write=False)
    return out


def _frost(x: np.ndarray, c: tuple[float, float], s: float, rngs: list[np.random.Generator]) -> np.ndarray:
    _, h, w, _ = x.shape
    out = np.empty(x.shape, dtype=np.float64)
    for k, rng in enumerate(rngs):
        tex = _frost_texture(int(rng.integers(_FROST_CHOICES)), _FROST_BASE_SCALE * s)
        top = int(rng.integers(0, tex.shape[0] - h))
        left = int(rng.integers(0, tex.shape[1] - w))
        frost = tex[top : top + h, left : left + w].astype(np.float64)
        out[k] = np.clip(c[0] * x[k].astype(np.float64) + c[1] * frost, 0, 255)
    return out


def _plasma_fractal(mapsize: int, wibbledecay: float, rng: np.random.Generator) -> np.ndarray:
    """make_cifar_c's diamond-square ``plasma_fractal`` with its draws taken from ``rng``."""
    maparray = np.empty((mapsize, mapsize), dtype=np.float64)
    maparray[0, 0] = 0
    stepsize = mapsize
    wibble = 100.0

    def wibbledmean(array: np.ndarray) -> np.ndarray:
        return array / 4 + wibble * rng.uniform(-wibble, wibble, array.shape)

    while stepsize >= 2:
        # fill squares
        cornerref = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
        squareaccum = cornerref + np.roll(cornerref, shift=-1, axis=0)
        squareaccum += np.roll(squareaccum, shift=-1, axis=1)
        maparray[stepsize // 2 : mapsize : stepsize, stepsize // 2 : mapsize : stepsize] = wibbledmean(squareaccum)
        # fill diamonds
        drgrid = maparray[stepsize // 2 : mapsize : stepsize, stepsize // 2 : mapsize : stepsize]
        ulgrid = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
        ltsum = drgrid + np.roll(drgrid, 1, axis=0) + ulgrid + np.roll(ulgrid, -1, axis=1)
        maparray[0:mapsize:stepsize, stepsize // 2 : mapsize : stepsize] = wibbledmean(ltsum)
        ttsum = drgrid + np.roll(drgrid, 1, axis=1) + ulgrid + np.roll(ulgrid, -1, axis=0)
        maparray[stepsize // 2 : mapsize : stepsize, 0:mapsize:stepsize] = wibbledmean(ttsum)
        stepsize //= 2
        wibble /= wibbledecay
    maparray -= maparray.min()
    return maparray / maparray.max()


def _fog(x: np.ndarray, c: tuple[float, float], s: float, rngs: list[np.random.Generator]) -> np.ndarray:
    _, h, w, _ = x.shape
    mapsize = 1 << (max(h, w) - 1).bit_length()  # next power of two: 32 at 32 px, as the reference
    out = np.empty(x.shape, dtype=np.float64)
    for k, rng in enumerate(rngs):
        xi = _float01(x[k])
        max_val = xi.max()
        xi = xi + c[0] * _plasma_fractal(mapsize, c[1], rng)[:h, :w][..., None]
        out[k] = np.clip(xi * max_val / (max_val + c[0]), 0, 1) * 255
    return out


def _rgb2hsv(rgb: np.ndarray) -> np.ndarray:
    """scikit-image's ``rgb2hsv`` (same operations, so the same floats), on ``(..., 3)`` in [0, 1]."""
    out = np.empty_like(rgb)
    v = rgb.max(-1)
    delta = np.ptp(rgb, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = delta / v
        s[delta == 0.0] = 0.0
        for channel, offset, a, b in ((0, 0.0, 1, 2), (1, 2.0, 2, 0), (2, 4.0, 0, 1)):  # later max wins
            idx = rgb[..., channel] == v
            out[idx, 0] = offset + (rgb[idx, a] - rgb[idx, b]) / delta[idx]
        h = (out[..., 0] / 6.0) % 1.0
    h[delta == 0.0] = 0.0
    out[..., 0], out[..., 1], out[..., 2] = h, s, v
    out[np.isnan(out)] = 0
    return out


def _hsv2rgb(hsv: np.ndarray) -> np.ndarray:
    """scikit-image's ``hsv2rgb`` (same operations, so the same floats)."""
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    hi = np.floor(h * 6)
    f = h * 6 - hi
    p = v * (1 - s)
    q = v * (1 - f * s)
    t = v * (1 - (1 - f) * s)
    sector = (hi.astype(np.uint8) % 6)[..., None]
    choices = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    out = np.zeros(hsv.shape, dtype=np.float64)
    for k, rgb in enumerate(choices):
        out = np.where(sector == k, np.stack(rgb, axis=-1), out)
    return out


def _brightness(x: np.ndarray, c: float, s: float, rngs: None) -> np.ndarray:
    hsv = _rgb2hsv(_float01(x))
    hsv[..., 2] = np.clip(hsv[..., 2] + c, 0, 1)
    return np.clip(_hsv2rgb(hsv), 0, 1) * 255


# --------------------------------------------------------------------------- digital


def _contrast(x: np.ndarray, c: float, s: float, rngs: None) -> np.ndarray:
    xf = _float01(x)
    # per image, as the reference's np.mean(x, axis=(0, 1)): a batched mean may round differently
    means = np.stack([np.mean(xf[k], axis=(0, 1), keepdims=True) for k in range(xf.shape[0])])
    return np.clip((xf - means) * c + means, 0, 1) * 255


def _affine_from_points(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """``cv2.getAffineTransform``: the 2×3 matrix mapping three (x, y) points onto three others."""
    a = np.hstack([src.astype(np.float64), np.ones((3, 1))])
    return np.linalg.solve(a, dst.astype(np.float64)).T


def _elastic_transform(x: np.ndarray, c: tuple[float, float, float], s: float, rngs: list[np.random.Generator]) -> np.ndarray:
    _, h, w, _ = x.shape
    alpha, sigma = _IMSIZE * c[0], _IMSIZE * c[1]  # displacement field: on the 32-px frame
    affine = min(h, w) * c[2]  # the reference's IMSIZE * c[2] with IMSIZE = the image size
    base = (max(1, round(h / s)), max(1, round(w / s)))
    center = np.float32((h, w)) // 2
    size = min(h, w) // 3
    pts1 = np.float32([center + size, [center[0] + size, center[1] - size], center - size])
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    out = np.empty(x.shape, dtype=np.float64)
    for k, rng in enumerate(rngs):
        image = x[k].astype(np.float32) / 255.0
        pts2 = pts1 + rng.uniform(-affine, affine, size=pts1.shape).astype(np.float32)
        # cv2.warpAffine(image, M, (w, h), borderMode=BORDER_REFLECT_101): dst(p) = src(M⁻¹ p)
        m = np.vstack([_affine_from_points(pts1, pts2), [0.0, 0.0, 1.0]])
        inv = np.linalg.inv(m)
        src_x = inv[0, 0] * xx + inv[0, 1] * yy + inv[0, 2]
        src_y = inv[1, 0] * xx + inv[1, 1] * yy + inv[1, 2]
        image = np.stack(
            [ndimage.map_coordinates(image[:, :, ch], [src_y, src_x], order=1, mode="mirror") for ch in range(3)],
            axis=-1,
        ).astype(np.float32)
        fields = []
        for _ in range(2):  # dx, then dy, as the reference
            field = ndimage.gaussian_filter(rng.uniform(-1, 1, size=base), sigma, mode="reflect", truncate=3) * alpha
            if base != (h, w):
                field = ndimage.zoom(field, (h / base[0], w / base[1]), order=1, grid_mode=True, mode="nearest") * s
            fields.append(field.astype(np.float32))
        dx, dy = fields
        coords = [(yy + dy).reshape(-1), (xx + dx).reshape(-1)]
        warped = np.stack(
            [ndimage.map_coordinates(image[:, :, ch], coords, order=1, mode="reflect").reshape(h, w) for ch in range(3)],
            axis=-1,
        )
        out[k] = np.clip(warped, 0, 1) * 255
    return out


def _pixelate(x: np.ndarray, c: float, s: float, rngs: None) -> np.ndarray:
    n, h, w, _ = x.shape
    m = min(h, w)
    small = (max(1, int(w * _IMSIZE / m * c)), max(1, int(h * _IMSIZE / m * c)))  # int(32·c) on the 32-px frame
    out = np.empty_like(x)
    for k in range(n):
        img = Image.fromarray(x[k]).resize(small, Image.Resampling.BOX).resize((w, h), Image.Resampling.BOX)
        out[k] = np.asarray(img)
    return out


def _jpeg_compression(x: np.ndarray, c: int, s: float, rngs: None) -> np.ndarray:
    out = np.empty_like(x)
    for k in range(x.shape[0]):
        buffer = io.BytesIO()
        Image.fromarray(x[k]).save(buffer, "JPEG", quality=int(c))
        buffer.seek(0)
        with Image.open(buffer) as img:
            out[k] = np.asarray(img.convert("RGB"))
    return out


_Impl = Callable[[np.ndarray, Any, float, Any], np.ndarray]

#: name → (implementation, draws random numbers)
_IMPL: dict[str, tuple[_Impl, bool]] = {
    "gaussian_noise": (_gaussian_noise, True),
    "shot_noise": (_shot_noise, True),
    "impulse_noise": (_impulse_noise, True),
    "defocus_blur": (_defocus_blur, False),
    "glass_blur": (_glass_blur, True),
    "motion_blur": (_motion_blur_corruption, True),
    "zoom_blur": (_zoom_blur, False),
    "snow": (_snow, True),
    "frost": (_frost, True),
    "fog": (_fog, True),
    "brightness": (_brightness, False),
    "contrast": (_contrast, False),
    "elastic_transform": (_elastic_transform, True),
    "pixelate": (_pixelate, False),
    "jpeg_compression": (_jpeg_compression, False),
}
assert tuple(_IMPL) == tuple(CORRUPTIONS)
