"""Compiled (numba) per-row passes after the render: the arc noise and the injection sum, and
the arc metrics, with the definitions of :mod:`.metrics` and :mod:`.noise`, each in one pass
over the stamp with no temporaries (``inject`` uses these).

- :func:`snr_metrics_fast` = ``metrics.snr_metrics`` (arc_snr, arc_snr_sum, arc_snr_region): one
  pass for the good pixels, the max SNR and the sums; the 8-connected regions of pixels with
  SNR > 1 are labelled by a flood fill restricted to the box of those pixels, and each region's
  sums are accumulated in raster order (as ``np.bincount`` over ``ndimage.label``'s labels).
- :func:`half_light_radius_fast` = ``metrics.half_light_radius`` without sorting the stamp: the
  positive flux is histogrammed in radius (bins of 1/4 pixel), and only the pixels of the bin
  where the cumulative flux crosses one half are sorted. The interpolation partner is the pixel
  just before the crossing pixel in the full (radius, index) order, as in the stable argsort.
- :func:`noise_pixels` / :func:`add_arc` implement ``noise.arc_poisson_noise`` over the pixels
  where the arc's shot noise matters (see that function) and the injection sum.

Sums run sequentially in float64 (numpy sums pairwise), so values can differ from the numpy
definitions in the last bits (tested to 1e-12 relative); they are deterministic. Units as in
:mod:`.metrics`: arc in nanomaggies, invvar in 1/nanomaggy^2, radii in pixels (callers scale).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ..survey.maskbits import DEFAULT_BAD_MASK

_HLR_BIN = 0.25  # pixels: radial bin of the half-light histogram


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _snr_pass(arc, invvar, maskbits, bad_mask, threshold, stack, labels):
    """(n_good, max SNR, sum arc, sum 1/invvar, best region SNR) over good pixels of one band
    (``invvar > 0`` and no bit of ``bad_mask`` set: ``survey.maskbits.good_pixel_mask``)."""
    s0, s1 = arc.shape
    n_good = 0
    snr_max = -np.inf
    sum_arc = 0.0
    sum_var = 0.0
    r0, r1, c0, c1 = s0, -1, s1, -1  # box of the pixels above the threshold
    for i in range(s0):
        for j in range(s1):
            labels[i, j] = 0
            iv = np.float64(invvar[i, j])
            if not (iv > 0.0 and (np.int64(maskbits[i, j]) & bad_mask) == 0):
                continue
            a = np.float64(arc[i, j])
            n_good += 1
            root = math.sqrt(iv + 1e-12)
            v = a / (1.0 / root)  # a / sigma, as metrics.snr_metrics divides
            if v > snr_max:
                snr_max = v
            sum_arc += a
            sum_var += 1.0 / iv
            if a * root > threshold:
                labels[i, j] = -1  # candidate, not yet labelled
                r0 = min(r0, i)
                r1 = max(r1, i)
                c0 = min(c0, j)
                c1 = max(c1, j)
    if r1 < 0:
        return n_good, snr_max, sum_arc, sum_var, 0.0
    # 8-connected flood fill inside the candidate box, labels 1..n in raster order of first pixel
    n = 0
    for i in range(r0, r1 + 1):
        for j in range(c0, c1 + 1):
            if labels[i, j] != -1:
                continue
            n += 1
            labels[i, j] = n
            top = 0
            stack[top, 0] = i
            stack[top, 1] = j
            top = 1
            while top > 0:
                top -= 1
                y = stack[top, 0]
                x = stack[top, 1]
                for dy in range(-1, 2):
                    yy = y + dy
                    if yy < r0 or yy > r1:
                        continue
                    for dx in range(-1, 2):
                        xx = x + dx
                        if xx < c0 or xx > c1 or labels[yy, xx] != -1:
                            continue
                        labels[yy, xx] = n
                        stack[top, 0] = yy
                        stack[top, 1] = xx
                        top += 1
    sig = np.zeros(n + 1)
    var = np.zeros(n + 1)
    for i in range(r0, r1 + 1):
        for j in range(c0, c1 + 1):
            lab = labels[i, j]
            if lab > 0:
                sig[lab] += np.float64(arc[i, j])
                var[lab] += 1.0 / np.float64(invvar[i, j])
    best = -np.inf
    for lab in range(1, n + 1):
        v = sig[lab] / math.sqrt(var[lab])
        if v > best:
            best = v
    return n_good, snr_max, sum_arc, sum_var, best


def snr_metrics_fast(arc: np.ndarray, invvar: np.ndarray, maskbits: np.ndarray, threshold: float = 1.0,
                     bad_mask: int = DEFAULT_BAD_MASK) -> tuple[float | None, float | None, float | None, str | None]:
    """``metrics.snr_metrics`` in one compiled pass: (arc_snr, arc_snr_sum, arc_snr_region, reason).

    arc (nanomaggies), invvar (1/nanomaggy^2): one band [S, S], any float dtype (read as
    float64); maskbits int [S, S]; bad_mask: DR10 bits that make a pixel bad (``survey.bad_maskbits``).
    None values when there is no good pixel (reason says why).
    """
    arc = np.ascontiguousarray(arc)
    invvar = np.ascontiguousarray(invvar)
    maskbits = np.ascontiguousarray(maskbits)
    stack = np.empty((arc.size, 2), np.int64)
    labels = np.empty(arc.shape, np.int32)
    n_good, snr, sum_arc, sum_var, region = _snr_pass(arc, invvar, maskbits, np.int64(bad_mask), float(threshold), stack, labels)
    if n_good == 0:
        return None, None, None, "no good pixels (invvar > 0 and no bad maskbit) in the SNR band"
    snr_sum = float(sum_arc / math.sqrt(sum_var)) if sum_var > 0 else None
    return float(snr), snr_sum, float(region), None


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _hlr_pixels(img, width):
    """Half-light radius (pixels) of max(img, 0) around its flux-weighted centroid; -1 if no flux."""
    s0, s1 = img.shape
    total = 0.0
    my = 0.0
    mx = 0.0
    for i in range(s0):
        for j in range(s1):
            v = np.float64(img[i, j])
            if v > 0.0:
                total += v
                my += v * i
                mx += v * j
    if not total > 0.0:
        return -1.0
    cy = my / total
    cx = mx / total
    half = 0.5 * total
    rmax = math.hypot(max(cy, s0 - 1 - cy), max(cx, s1 - 1 - cx))
    nbin = int(rmax / width) + 2
    wsum = np.zeros(nbin)
    rtop = np.full(nbin, -1.0)  # largest radius in each bin (any pixel, flux or not)
    rad = np.empty(s0 * s1)
    pbin = np.empty(s0 * s1, np.int64)  # each pixel's bin, computed once
    count = np.zeros(nbin, np.int64)
    for i in range(s0):
        dy = i - cy
        for j in range(s1):
            dx = j - cx
            r = math.sqrt(dy * dy + dx * dx)  # np.hypot to within an ulp
            rad[i * s1 + j] = r
            b = int(r / width)
            pbin[i * s1 + j] = b
            count[b] += 1
            v = np.float64(img[i, j])
            if v > 0.0:
                wsum[b] += v
            if r > rtop[b]:
                rtop[b] = r
    cum = 0.0
    k = 0
    for k in range(nbin):
        if cum + wsum[k] >= half:
            break
        cum += wsum[k]
    # the crossing bin: its pixels in (radius, flat index) order = the stable argsort's order
    m = count[k]
    rr = np.empty(m)
    idx = np.empty(m, np.int64)
    m = 0
    for p in range(s0 * s1):
        if pbin[p] == k:
            rr[m] = rad[p]
            idx[m] = p
            m += 1
    order = np.argsort(rr, kind="mergesort")  # stable: ties keep the flat-index order
    prev_r = -1.0  # radius of the pixel before the current one in the full order
    for b in range(k - 1, -1, -1):
        if rtop[b] >= 0.0:
            prev_r = rtop[b]
            break
    for t in range(m):
        p = idx[order[t]]
        r = rr[order[t]]
        v = np.float64(img[p // s1, p % s1])
        w = v if v > 0.0 else 0.0
        if w > 0.0 and cum + w >= half:
            if prev_r < 0.0:  # the first pixel of the full order holds half the flux
                return r
            return prev_r + (half - cum) / w * (r - prev_r)
        cum += w
        prev_r = r
    return prev_r  # not reached unless rounding: the last positive pixel


def half_light_radius_fast(image: np.ndarray, pixel_scale: float) -> float | None:
    """``metrics.half_light_radius`` (arcsec) of a 2-D image without a full sort; None for zero flux."""
    r = _hlr_pixels(np.ascontiguousarray(image), _HLR_BIN)
    return None if r < 0 else float(r * pixel_scale)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def band_sums(arc):
    """float64 [B] sum of each band of arc [B, S, S] (nanomaggies)."""
    out = np.zeros(arc.shape[0])
    for b in range(arc.shape[0]):
        acc = 0.0
        for i in range(arc.shape[1]):
            for j in range(arc.shape[2]):
                acc += np.float64(arc[b, i, j])
        out[b] = acc
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def noise_pixels(arc, invvar, sky, min_sky_fraction, index, lam):
    """Pixels that get arc shot noise, in C order over (band, row, col): invvar > 0 and
    arc >= min_sky_fraction x sky[band] (and arc > 0). Writes their flat indices and expected
    counts lam = arc x invvar x sky (electrons) and returns how many there are."""
    nb, s0, s1 = arc.shape
    n = 0
    for b in range(nb):
        floor = min_sky_fraction * sky[b]
        for i in range(s0):
            for j in range(s1):
                a = np.float64(arc[b, i, j])
                iv = np.float64(invvar[b, i, j])
                if a > 0.0 and a >= floor and iv > 0.0:
                    index[n] = (b * s0 + i) * s1 + j
                    lam[n] = a * (iv * sky[b])
                    n += 1
    return n


@numba.njit(cache=True, nogil=True, error_model="numpy")
def add_arc(image, arc, invvar, sky, index, lam, counts, out):
    """out = float32(image + arc + shot noise) where invvar > 0, else image (float64 sums).

    The noise of pixel index[m] is (counts[m] - lam[m]) / gain, gain = invvar x sky[band].
    Returns :func:`band_sums` of the arc (float64 [B], the same sequential sums), taken in the
    same pass.
    """
    nb, s0, s1 = arc.shape
    sums = np.zeros(nb)
    for b in range(nb):
        acc = 0.0
        for i in range(s0):
            for j in range(s1):
                iv = np.float64(invvar[b, i, j])
                a = np.float64(arc[b, i, j])
                acc += a
                add = a if iv > 0.0 else 0.0
                out[b, i, j] = np.float32(np.float64(image[b, i, j]) + add)
        sums[b] = acc
    for m in range(index.shape[0]):
        p = index[m]
        b = p // (s0 * s1)
        i = (p // s1) % s0
        j = p % s1
        gain = np.float64(invvar[b, i, j]) * sky[b]
        add = np.float64(arc[b, i, j]) + (np.float64(counts[m]) - lam[m]) / gain
        out[b, i, j] = np.float32(np.float64(image[b, i, j]) + add)
    return sums


@numba.njit(cache=True, nogil=True, error_model="numpy")
def cutout_flags(image, invvar):
    """One pass over a cutout: (image has a non-finite pixel, invvar has a non-finite pixel,
    invvar has a negative pixel, invvar has a positive pixel)."""
    bad_image = False
    bad_invvar = False
    negative = False
    positive = False
    flat_i = image.reshape(-1)
    flat_v = invvar.reshape(-1)
    for p in range(flat_i.shape[0]):
        if not math.isfinite(flat_i[p]):
            bad_image = True
    for p in range(flat_v.shape[0]):
        v = flat_v[p]
        if not math.isfinite(v):
            bad_invvar = True
        elif v < 0.0:
            negative = True
        elif v > 0.0:
            positive = True
    return bad_image, bad_invvar, negative, positive
