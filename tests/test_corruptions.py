"""CIFAR-10-C corruptions: constants, determinism, resolution, severity order, reference maths."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from proxybench.data import corruptions as C
from proxybench.data.corruptions import (
    CIFAR10_C,
    CORRUPTIONS,
    corrupt,
    parse_corruptions,
)
from proxybench.errors import DataNotFoundError, InvalidSettingError, ProxybenchError

RANDOM = [name for name, (_, random) in C._IMPL.items() if random]


def smooth_images(n: int, size: int = 32, seed: int = 0) -> np.ndarray:
    """Natural-looking test images: 6x6 random colours upsampled (bicubic) to ``size``."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(n, 6, 6, 3), dtype=np.uint8)
    return np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.Resampling.BICUBIC)) for im in small])


IMAGES = smooth_images(6)


def mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


# --------------------------------------------------------------------------- constants


def test_constants_are_make_cifar_c_py():
    # Transcribed from hendrycks/robustness ImageNet-C/create_c/make_cifar_c.py (not imagenet_c).
    expected = {
        "gaussian_noise": [0.04, 0.06, .08, .09, .10],
        "shot_noise": [500, 250, 100, 75, 50],
        "impulse_noise": [.01, .02, .03, .05, .07],
        "defocus_blur": [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)],
        "glass_blur": [(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)],
        "motion_blur": [(6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)],
        "zoom_blur": [1.06, 1.11, 1.16, 1.21, 1.26],
        "snow": [(0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9), (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
                 (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85), (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)],
        "frost": [(1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)],
        "fog": [(.2, 3), (.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)],
        "brightness": [.05, .1, .15, .2, .3],
        "contrast": [.75, .5, .4, .3, 0.15],
        "elastic_transform": [(0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05),
                              (0.1, 0.03, 0.03)],
        "pixelate": [0.95, 0.9, 0.85, 0.75, 0.65],
        "jpeg_compression": [80, 65, 58, 50, 40],
    }  # fmt: skip
    assert list(CIFAR10_C) == list(CORRUPTIONS) == list(expected)
    for name, values in expected.items():
        assert [tuple(v) if isinstance(v, tuple) else v for v in CIFAR10_C[name]] == values, name
    # The ImageNet-C tables (imagecorruptions) are harsher: e.g. gaussian σ .08, contrast .4 at severity 1.
    assert CIFAR10_C["gaussian_noise"][0] == 0.04 and CIFAR10_C["contrast"][0] == 0.75
    # np.arange's float end: 7 zooms (1.00 .. 1.06) at severity 1, as the reference.
    assert [len(np.arange(1, e, 0.01)) for e in CIFAR10_C["zoom_blur"]] == [7, 12, 16, 21, 26]
    assert set(CORRUPTIONS.values()) == {"noise", "blur", "weather", "digital"} and len(CORRUPTIONS) == 15


def test_noise_amplitudes_follow_the_constants():
    gray = np.full((4, 32, 32, 3), 128, np.uint8)  # far from 0 and 255: no clipping
    for sev in (1, 5):
        sigma = CIFAR10_C["gaussian_noise"][sev - 1] * 255
        residual = corrupt(gray, "gaussian_noise", sev, seed=1).astype(float) - 128
        assert residual.std() == pytest.approx(sigma, rel=0.05)
        lam = CIFAR10_C["shot_noise"][sev - 1]
        residual = corrupt(gray, "shot_noise", sev, seed=1).astype(float) - 128
        assert residual.std() == pytest.approx(np.sqrt(128 / 255 / lam) * 255, rel=0.05)
        amount = CIFAR10_C["impulse_noise"][sev - 1]
        out = corrupt(gray, "impulse_noise", sev, seed=1)
        assert set(np.unique(out)) <= {0, 128, 255}
        assert np.mean(out != 128) == pytest.approx(amount, abs=4 * np.sqrt(amount / out.size) + 1e-3)


def test_brightness_and_contrast_exact_on_constant_images():
    for g in (0, 100, 250):
        image = np.full((1, 32, 32, 3), g, np.uint8)
        for sev in range(1, 6):
            c = CIFAR10_C["brightness"][sev - 1]
            # grey: H = S = 0, so only V moves: min(g/255 + c, 1), truncated like np.uint8
            assert np.all(corrupt(image, "brightness", sev) == np.uint8(min(g / 255 + c, 1.0) * 255))
            c = CIFAR10_C["contrast"][sev - 1]
            # contrast: (x − m)·c + m with m the image mean; on a constant image m is g/255 up to
            # the rounding of np.mean's float sum, and np.uint8 truncates, so g or g − 1
            m = np.mean(image[0] / 255.0, axis=(0, 1), keepdims=True)
            expected = np.uint8(np.clip((image[0] / 255.0 - m) * c + m, 0, 1) * 255)
            out = corrupt(image, "contrast", sev)
            assert np.array_equal(out[0], expected) and np.all(np.abs(out.astype(int) - g) <= 1)
    two = np.zeros((1, 32, 32, 3), np.uint8)
    two[:, :16], two[:, 16:] = 50, 150  # per-channel mean 100
    m = float(np.mean(two[0] / 255.0, axis=(0, 1))[0])  # 100/255 up to the float sum's rounding
    for sev in range(1, 6):
        c = CIFAR10_C["contrast"][sev - 1]
        out = corrupt(two, "contrast", sev)
        for value, part in ((50, out[:, :16]), (150, out[:, 16:])):
            assert np.all(part == np.uint8(((value / 255 - m) * c + m) * 255))
            assert np.all(np.abs(part.astype(float) - (100 + (value - 100) * c)) <= 1)


# --------------------------------------------------------------------------- seeding


@pytest.mark.parametrize("name", RANDOM)
def test_same_seed_same_output_other_seed_other_output(name):
    x = IMAGES[:2]
    a = corrupt(x, name, 3, seed=7)
    np.random.seed(123)  # the global RNG plays no part
    state = np.random.get_state()[1].copy()
    b = corrupt(x, name, 3, seed=7)
    assert np.array_equal(np.random.get_state()[1], state), "corrupt() touched the global numpy RNG"
    assert np.array_equal(a, b)
    assert not np.array_equal(a, corrupt(x, name, 3, seed=8))
    # Keyed by the dataset index, not the position in the batch: any split gives the same pixels.
    assert np.array_equal(corrupt(x[1:], name, 3, seed=7, indices=[1]), a[1:])
    assert not np.array_equal(corrupt(x[:1], name, 3, seed=7, indices=[5]), a[:1])


def test_deterministic_corruptions_ignore_the_seed():
    for name in set(CORRUPTIONS) - set(RANDOM):
        assert np.array_equal(corrupt(IMAGES[:1], name, 2, seed=0), corrupt(IMAGES[:1], name, 2, seed=9)), name


# --------------------------------------------------------------------------- shapes and resolution


@pytest.mark.parametrize("size, severities", [(32, (1, 2, 3, 4, 5)), (96, (1, 5))])
def test_shape_and_dtype_at_any_resolution(size, severities):
    x = smooth_images(1, size)
    for name in CORRUPTIONS:
        for sev in severities:
            out = corrupt(x, name, sev, seed=0)
            assert out.dtype == np.uint8 and out.shape == x.shape, (name, sev)
    single = corrupt(x[0], "fog", 2)
    assert single.shape == x[0].shape
    rect = np.zeros((1, 40, 56, 3), np.uint8)
    assert all(corrupt(rect, n, 4).shape == rect.shape for n in CORRUPTIONS)


def test_spatial_corruptions_keep_their_size_relative_to_the_image():
    # A 32-px image and its 3x upsampling: blur, pixelate and elastic change them by similar
    # amounts (relative constants); per-pixel noise does not need to.
    small = smooth_images(3, 32, seed=3)
    big = np.stack([np.asarray(Image.fromarray(im).resize((96, 96), Image.Resampling.BILINEAR)) for im in small])
    for name in ("defocus_blur", "zoom_blur", "motion_blur", "pixelate", "elastic_transform"):
        a = mad(corrupt(small, name, 5, seed=0), small)
        b = mad(corrupt(big, name, 5, seed=0), big)
        assert 0.4 < b / a < 2.5, (name, a, b)


# --------------------------------------------------------------------------- severity order


def test_severity_increases_the_deviation_from_the_clean_image():
    x = IMAGES
    deviation = {name: [mad(corrupt(x, name, s, seed=0), x) for s in range(1, 6)] for name in CORRUPTIONS}
    exceptions = {"glass_blur", "frost", "elastic_transform"}
    for name, values in deviation.items():
        if name not in exceptions:
            assert all(np.diff(values) > 0), (name, values)
    # glass_blur: severities 4-5 shuffle twice, 1-3 once; within a group the larger σ smooths
    # the shuffled edges, so the deviation is ordered by the number of iterations only.
    glass = deviation["glass_blur"]
    assert min(glass[3:]) > max(glass[:3]), glass
    # frost: a·x + b·frost. Severities 4-5 lower the image weight a (.85, .75) with b almost
    # unchanged (.4, .45); the bright texture then partly cancels the darkened image, so the
    # deviation need not grow past severity 3 (also true of CIFAR-10-C itself). It grows up to 3,
    # and the frost-to-image ratio b/a grows at every severity.
    frost = deviation["frost"]
    assert frost[0] < frost[1] < frost[2] and max(frost[3:]) > frost[0], frost
    ratios = [b / a for a, b in CIFAR10_C["frost"]]
    assert all(np.diff(ratios) > 0)
    # elastic_transform: CIFAR-10-C's random affine jitter shrinks with severity (±.08 → ±.03 of the
    # image) while the smooth displacement field grows (α 0 → 3.2 px); the global affine shift
    # dominates the pixel deviation, which therefore falls with severity in CIFAR-10-C too.
    elastic = deviation["elastic_transform"]
    assert elastic[0] > elastic[2] > elastic[4], elastic


# --------------------------------------------------------------------------- reference maths


def test_deterministic_corruptions_match_make_cifar_c_at_32px():
    cv2 = pytest.importorskip("cv2")
    skcolor = pytest.importorskip("skimage.color")
    from scipy.ndimage import zoom as scizoom

    x = IMAGES[:3]

    def disk(radius, alias_blur):  # make_cifar_c.disk for radius <= 8
        grid = np.arange(-8, 9)
        xx, yy = np.meshgrid(grid, grid)
        d = np.array((xx**2 + yy**2) <= radius**2, dtype=np.float32)
        d /= np.sum(d)
        return cv2.GaussianBlur(d, ksize=(3, 3), sigmaX=alias_blur)

    def clipped_zoom(img, z):
        h = img.shape[0]
        ch = int(np.ceil(h / z))
        top = (h - ch) // 2
        img = scizoom(img[top:top + ch, top:top + ch], (z, z, 1), order=1)
        t = (img.shape[0] - h) // 2
        return img[t:t + h, t:t + h]

    for sev in range(1, 6):
        r, a = CIFAR10_C["defocus_blur"][sev - 1]
        k = disk(r, a)
        ref = [np.uint8(np.clip(np.stack([cv2.filter2D((im / 255.0)[:, :, d], -1, k) for d in range(3)], -1), 0, 1) * 255)
               for im in x]  # fmt: skip
        assert np.array_equal(corrupt(x, "defocus_blur", sev), np.stack(ref)), sev

        zooms = np.arange(1, CIFAR10_C["zoom_blur"][sev - 1], 0.01)
        ref = []
        for im in x:
            f = (im / 255.0).astype(np.float32)
            acc = np.zeros_like(f)
            for z in zooms:
                acc += clipped_zoom(f, z)
            ref.append(np.uint8(np.clip((f + acc) / (len(zooms) + 1), 0, 1) * 255))
        assert np.array_equal(corrupt(x, "zoom_blur", sev), np.stack(ref)), sev

        c = CIFAR10_C["brightness"][sev - 1]
        ref = []
        for im in x:
            hsv = skcolor.rgb2hsv(im / 255.0)
            hsv[:, :, 2] = np.clip(hsv[:, :, 2] + c, 0, 1)
            ref.append(np.uint8(np.clip(skcolor.hsv2rgb(hsv), 0, 1) * 255))
        assert np.array_equal(corrupt(x, "brightness", sev), np.stack(ref)), sev

        c = CIFAR10_C["pixelate"][sev - 1]
        ref = [np.asarray(Image.fromarray(im).resize((int(32 * c),) * 2, Image.Resampling.BOX)
                          .resize((32, 32), Image.Resampling.BOX)) for im in x]  # fmt: skip
        assert np.array_equal(corrupt(x, "pixelate", sev), np.stack(ref)), sev


def test_motion_blur_kernel_is_the_packages():
    ic = pytest.importorskip("imagecorruptions.corruptions")
    for radius, sigma in CIFAR10_C["motion_blur"]:
        for angle in (-44.0, 0.0, 17.5):
            expected = ic._motion_blur(IMAGES[0], radius=radius, sigma=sigma, angle=angle)
            assert np.array_equal(C._motion_blur(IMAGES[0], radius, sigma, angle), expected)


def test_glass_blur_is_make_cifar_c_fed_the_same_draws():
    gaussian = pytest.importorskip("skimage.filters").gaussian
    for sev in (2, 4):
        sigma, delta, iterations = CIFAR10_C["glass_blur"][sev - 1]
        im = IMAGES[1]
        rng = C.image_rng(3, "glass_blur", sev, 1)
        x = np.uint8(gaussian(im / 255.0, sigma=sigma, channel_axis=-1) * 255)
        for _ in range(iterations):
            offsets = rng.integers(-delta, delta, size=((32 - 2 * delta) ** 2, 2))
            j = 0
            for h in range(32 - delta, delta, -1):
                for w in range(32 - delta, delta, -1):
                    dx, dy = offsets[j]
                    j += 1
                    h_prime, w_prime = h + dy, w + dx
                    x[h, w], x[h_prime, w_prime] = x[h_prime, w_prime], x[h, w]  # the reference's "swap"
        ref = np.uint8(np.clip(gaussian(x / 255.0, sigma=sigma, channel_axis=-1), 0, 1) * 255)
        assert np.array_equal(corrupt(IMAGES[1:2], "glass_blur", sev, seed=3, indices=[1])[0], ref), sev


def test_frost_textures_come_from_the_installed_package(monkeypatch):
    folder = C.frost_textures_dir()
    assert (folder / "frost1.png").is_file()
    cv2 = pytest.importorskip("cv2")
    for index in range(5):  # make_cifar_c: cv2.imread, cv2.resize(fx=fy=0.2), BGR → RGB
        ref = cv2.resize(cv2.imread(str(folder / C._FROST_FILES[index])), (0, 0), fx=0.2, fy=0.2)[..., ::-1]
        assert np.array_equal(C._frost_texture(index, 0.2), ref)
    monkeypatch.setattr(C.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataNotFoundError, match="pip install imagecorruptions-imaug"):
        C.frost_textures_dir()


# --------------------------------------------------------------------------- errors


def test_errors_are_one_line_and_say_what_to_do():
    with pytest.raises(C.UnknownCorruptionError) as info:
        corrupt(IMAGES, "gausian_noise", 1)
    assert str(info.value).startswith("unknown corruption 'gausian_noise'; did you mean 'gaussian_noise'")
    assert "\n" not in str(info.value) and isinstance(info.value, ProxybenchError)
    with pytest.raises(C.UnknownCorruptionError, match="known: gaussian_noise, shot_noise"):
        corrupt(IMAGES, "xyz", 1)
    for bad in (0, 6, "3", 2.0, True):
        with pytest.raises(InvalidSettingError, match="severity must be an integer in 1..5"):
            corrupt(IMAGES, "fog", bad)
    with pytest.raises(InvalidSettingError, match="uint8"):
        corrupt(IMAGES.astype(np.float32), "fog", 1)
    with pytest.raises(InvalidSettingError, match="at least 32x32"):
        corrupt(np.zeros((1, 16, 16, 3), np.uint8), "fog", 1)
    with pytest.raises(InvalidSettingError, match="RGB"):
        corrupt(np.zeros((1, 32, 32), np.uint8), "fog", 1)
    with pytest.raises(InvalidSettingError, match="seed"):
        corrupt(IMAGES, "fog", 1, seed=-1)
    with pytest.raises(InvalidSettingError, match="indices has 1 entries for 6 images"):
        corrupt(IMAGES, "fog", 1, indices=[0])


def test_parse_corruptions_accepts_groups_and_all():
    assert parse_corruptions(None) == list(CORRUPTIONS) == parse_corruptions("all")
    assert parse_corruptions("blur,gaussian_noise") == ["gaussian_noise", "defocus_blur", "glass_blur",
                                                        "motion_blur", "zoom_blur"]  # fmt: skip
    assert parse_corruptions(["fog", "fog"]) == ["fog"]
    with pytest.raises(C.UnknownCorruptionError, match="did you mean 'snow'"):
        parse_corruptions("fog,snwo")
