"""Training-set augmentation done once by the harness, so every framework trains on the same pixels.

The tutorials' ImageDataGenerator list: random rotation, width/height shift and shear. Instead of a
per-framework random stream, the harness draws one seeded affine transform per training image and
applies it with vectorised bilinear sampling (numpy only), producing one augmented copy of x_train.
Pixels sampled outside the image take the nearest edge pixel (ImageDataGenerator's fill_mode='nearest').
"""

from __future__ import annotations

import numpy as np

ROTATION_DEG = 10.0  # uniform in [-10, 10] degrees
SHIFT = 0.1  # uniform in [-10%, 10%] of height and of width
SHEAR_RAD = 0.1  # uniform in [-0.1, 0.1] radians (about 5.7 degrees)
_STREAM = 0xA06  # keeps augmentation draws apart from the split's stream for the same seed

DESCRIPTION = (f"augmented once: per-image random rotation +-{ROTATION_DEG:g} deg, shift +-{SHIFT:.0%} of "
               f"height/width, shear +-{SHEAR_RAD:g} rad, bilinear, nearest fill, seeded")


def augment_images(x: np.ndarray, seed: int, rotation_deg: float = ROTATION_DEG, shift: float = SHIFT,
                   shear_rad: float = SHEAR_RAD, chunk: int = 256) -> np.ndarray:
    """One randomly transformed float32 copy of NHWC images ``x``; deterministic for a given seed.

    Parameters are drawn for all images up front, so the result does not depend on ``chunk``.
    """
    n, height, width = x.shape[:3]
    rng = np.random.default_rng([seed, _STREAM])
    theta = np.deg2rad(rng.uniform(-rotation_deg, rotation_deg, n))
    shear = rng.uniform(-shear_rad, shear_rad, n)
    shift_y = rng.uniform(-shift, shift, n) * height
    shift_x = rng.uniform(-shift, shift, n) * width
    # forward map (row, col): A = rotation @ shear, applied about the centre, then shifted.
    # Each output pixel samples the input at A^-1 (p - centre - shift) + centre.
    cos, sin = np.cos(theta), np.sin(theta)
    sh_a, sh_b, sh_d = np.ones(n), -np.sin(shear), np.cos(shear)  # shear = [[1, b], [0, d]]
    a, b = cos * sh_a, cos * sh_b - sin * sh_d
    c, d = sin * sh_a, sin * sh_b + cos * sh_d
    det = a * d - b * c
    inv = np.stack([d / det, -b / det, -c / det, a / det], axis=1)

    cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
    rows, cols = np.meshgrid(np.arange(height, dtype=np.float64) - cy, np.arange(width, dtype=np.float64) - cx,
                             indexing="ij")
    out = np.empty(x.shape, dtype=np.float32)
    for start in range(0, n, chunk):
        sl = slice(start, min(start + chunk, n))
        out[sl] = _sample(np.asarray(x[sl], dtype=np.float32), inv[sl], shift_y[sl], shift_x[sl], rows, cols,
                          cy, cx)
    return out


def _sample(images, inv, shift_y, shift_x, rows, cols, cy, cx) -> np.ndarray:
    k, height, width = images.shape[:3]
    channels = images.shape[3] if images.ndim == 4 else 1
    f32 = np.float32
    dy = rows[None].astype(f32) - shift_y[:, None, None].astype(f32)
    dx = cols[None].astype(f32) - shift_x[:, None, None].astype(f32)
    m = inv.astype(f32)
    src_y = m[:, 0, None, None] * dy + m[:, 1, None, None] * dx + f32(cy)
    src_x = m[:, 2, None, None] * dy + m[:, 3, None, None] * dx + f32(cx)
    y0 = np.floor(src_y)
    x0 = np.floor(src_x)
    wy = src_y - y0
    wx = src_x - x0
    y0i = np.clip(y0, 0, height - 1).astype(np.int32)
    y1i = np.clip(y0 + 1, 0, height - 1).astype(np.int32)
    x0i = np.clip(x0, 0, width - 1).astype(np.int32)
    x1i = np.clip(x0 + 1, 0, width - 1).astype(np.int32)
    base = (np.arange(k, dtype=np.int32) * (height * width))[:, None, None]
    row0, row1 = base + y0i * width, base + y1i * width
    out = np.empty((k, height, width, channels), dtype=f32)
    for ch in range(channels):
        pixels = np.ascontiguousarray(images.reshape(k, height, width, channels)[..., ch]).reshape(-1)
        top = pixels[row0 + x0i]
        top += (pixels[row0 + x1i] - top) * wx
        bottom = pixels[row1 + x0i]
        bottom += (pixels[row1 + x1i] - bottom) * wx
        top += (bottom - top) * wy
        out[..., ch] = top
    return out.reshape(images.shape)
