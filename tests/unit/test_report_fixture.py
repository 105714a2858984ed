"""Small stamp datasets written at the DESIGN 3.3 paths for the report tests, honest or broken
on purpose, plus checks that the fixture itself is what it claims to be.

Hosts are elliptical Gaussian LRGs (r = 19-21.5 mag, g - r = 1.7, r - z = 0.9) seen through a
Gaussian PSF, with Gaussian sky noise matching ``invvar``; injections add a Gaussian ring-segment
arc at theta_E with its own Poisson noise and store it in ``arc_npz``. Broken variants:

* ``bright_hosts``: injection hosts 3x brighter (the Gen5 worry);
* ``noisy_injections``: injection stamps get 1.5x the sky noise their invvar claims;
* ``source_reuse``: a test-split COSMOS source also used in train;
* ``galaxy_reuse``: a galaxy_id present in two splits;
* ``tampered_snr``: a few stored arc_snr values 5 % off the arrays.

Variants combine with ``+`` (``"source_reuse+tampered_snr"``). Every variant also holds a few
failed cutouts (``cutout_ok = false``, no pixels) and injections whose arc lies under a mask.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from darkhaloscope.config import Config, config_hash, config_to_dict
from darkhaloscope.dataset.schema import rows_to_table
from darkhaloscope.dataset.stamp import decode_arc, decode_stamp, encode_arc, encode_stamp

S = 64
PIX = 0.262
SPLIT_P = {"train": 0.3, "val": 0.35, "test": 0.35}
COSMOS_POOL = {"train": (0, 100), "val": (100, 200), "test": (200, 300)}
GAIN = 2000.0  # 1/nanomaggy: arc Poisson variance = arc / GAIN


def _gauss2d(flux: float, sigma_pix: float, q: float, phi: float, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    c, s = np.cos(phi), np.sin(phi)
    u = c * xx + s * yy
    v = (-s * xx + c * yy) / q
    img = np.exp(-0.5 * (u * u + v * v) / sigma_pix**2)
    return flux * img / img.sum()


def _arc(theta_e: float, fluxes: np.ndarray, psf_sigma_pix: float, phi0: float, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    r = np.hypot(xx, yy)
    dphi = np.angle(np.exp(1j * (np.arctan2(yy, xx) - phi0)))
    shape = np.exp(-0.5 * ((r - theta_e / PIX) / max(psf_sigma_pix, 0.8)) ** 2) * np.exp(-0.5 * (dphi / 0.6) ** 2)
    shape /= shape.sum()
    return np.stack([f * shape for f in fluxes]).astype(np.float32)


def _regions(mask: np.ndarray) -> list[list[tuple[int, int]]]:
    """8-connected regions of a boolean image by breadth-first search (no scipy)."""
    seen = np.zeros_like(mask, bool)
    out = []
    for y0, x0 in zip(*np.nonzero(mask), strict=True):
        if seen[y0, x0]:
            continue
        seen[y0, x0] = True
        queue, region = [(y0, x0)], []
        while queue:
            y, x = queue.pop()
            region.append((y, x))
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    v, u = y + dy, x + dx
                    if 0 <= v < mask.shape[0] and 0 <= u < mask.shape[1] and mask[v, u] and not seen[v, u]:
                        seen[v, u] = True
                        queue.append((v, u))
        out.append(region)
    return out


def snr_reference(arc: np.ndarray, invvar: np.ndarray, maskbits: np.ndarray, band: int = 1) -> tuple:
    """The seeds' definitions written out independently, in the r band (index 1):
    good = invvar > 0 and maskbits == 0; peak, integrated and best-region SNR."""
    a, iv = arc[band].astype(np.float64), invvar[band].astype(np.float64)
    good = (iv > 0) & (maskbits == 0)
    if not good.any():
        return None, None, None
    peak = max(a[y, x] * np.sqrt(iv[y, x]) for y, x in zip(*np.nonzero(good), strict=True))
    total = a[good].sum() / np.sqrt((1.0 / iv[good]).sum())
    above = good & (a * np.sqrt(np.where(good, iv, 0)) > 1.0)
    best = 0.0
    for region in _regions(above):
        ys, xs = np.array(region).T
        best = max(best, a[ys, xs].sum() / np.sqrt((1.0 / iv[ys, xs]).sum()))
    return float(peak), float(total), float(best)


def make_rows(n: int = 800, variant: str = "honest", seed: int = 7) -> list[dict]:
    breaks = set(variant.split("+"))
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:S, 0:S] - (S - 1) / 2.0
    cfg = Config()
    chash = config_hash(cfg)
    rows = []
    splits = rng.choice(list(SPLIT_P), size=n, p=list(SPLIT_P.values()))
    for i in range(n):
        split = str(splits[i])
        role = "injection" if rng.random() < 0.5 else "control"
        inj = role == "injection"
        brickid = 1000 + i // 50
        psf_r = rng.uniform(0.9, 1.6)
        psf = np.array([1.1, 1.0, 0.9]) * psf_r
        sigma_sky = rng.uniform(0.005, 0.008) * np.array([0.7, 1.0, 2.0])
        invvar = np.stack([np.full((S, S), 1.0 / s**2, np.float32) for s in sigma_sky])
        mag_r = rng.uniform(19.0, 21.5)
        flux_r = 10 ** ((22.5 - mag_r) / 2.5)
        if "bright_hosts" in breaks and inj:
            flux_r *= 3.0
        host_flux = flux_r * np.array([10 ** (-0.4 * 1.7), 1.0, 10 ** (0.4 * 0.9)])
        hlr = rng.uniform(0.6, 1.5)
        q, phi = rng.uniform(0.5, 1.0), rng.uniform(0, np.pi)
        host = np.stack([
            _gauss2d(f, np.hypot(hlr / 1.1774, p / 2.3548) / PIX, q, phi, xx, yy) for f, p in zip(host_flux, psf, strict=True)
        ])
        maskbits = np.zeros((S, S), np.int32)
        if rng.random() < 0.08:  # a bright-star mask somewhere, for both roles
            y0, x0 = rng.integers(0, S - 8, 2)
            maskbits[y0:y0 + 8, x0:x0 + 8] = 2
        noise_scale = 1.5 if ("noisy_injections" in breaks and inj) else 1.0
        image = host + rng.normal(0.0, 1.0, (3, S, S)) * (sigma_sky * noise_scale)[:, None, None]
        row = {
            "task_id": (10000 << 41) | (brickid << 21) | i,
            "galaxy_id": f"10000_{brickid}_{i}",
            "brickname": f"b{brickid}",
            "ra": 150.0 + i * 1e-3, "dec": 10.0,
            "split": split, "role": role, "cutout_ok": True,
            "psf_fwhm_g": psf[0], "psf_fwhm_r": psf[1], "psf_fwhm_z": psf[2],
            "psfdepth_g": 1 / (sigma_sky[0] ** 2 * 4 * np.pi * (psf[0] / 2.3548 / PIX) ** 2),
            "psfdepth_r": 1 / (sigma_sky[1] ** 2 * 4 * np.pi * (psf[1] / 2.3548 / PIX) ** 2),
            "psfdepth_z": 1 / (sigma_sky[2] ** 2 * 4 * np.pi * (psf[2] / 2.3548 / PIX) ** 2),
            "flux_g": host_flux[0], "flux_r": host_flux[1], "flux_z": host_flux[2],
            "seed": 12345, "config_hash": chash, "code_version": "test",
        }
        if inj:
            theta_e = rng.uniform(0.5, 2.5)
            mag = rng.uniform(21.0, 24.5)
            gr, rz = rng.normal(0.35, 0.2), rng.normal(0.3, 0.2)
            fr = 10 ** ((22.5 - mag) / 2.5)
            fl = np.array([fr * 10 ** (-0.4 * gr), fr, fr * 10 ** (0.4 * rz)])
            arc = _arc(theta_e, fl, psf_r / 2.3548 / PIX, rng.uniform(-np.pi, np.pi), xx, yy)
            image = image + arc + rng.normal(0.0, 1.0, arc.shape) * np.sqrt(arc / GAIN)
            if rng.random() < 0.05:  # the arc falls under a bright-star mask
                maskbits[arc[1] > 0.02 * arc[1].max()] = 2
            snr, snr_sum, snr_region = snr_reference(arc, invvar, maskbits)
            lo, hi = COSMOS_POOL[split]
            row.update({
                "theta_e": theta_e, "lens_e1": 0.0, "lens_e2": 0.0, "shear_g1": 0.0, "shear_g2": 0.0,
                "lens_x": 0.0, "lens_y": 0.0,
                "cosmos_index": int(rng.integers(lo, hi)), "cosmos_ident": "x", "src_x": 0.1, "src_y": 0.0,
                "src_rotation_deg": 0.0, "src_flip": False,
                "arc_flux_g": float(arc[0].sum()), "arc_flux_r": float(arc[1].sum()), "arc_flux_z": float(arc[2].sum()),
                "arc_snr": snr, "arc_snr_sum": snr_sum, "arc_snr_region": snr_region,
                "lensed_hlr_arcsec": theta_e * rng.uniform(0.8, 1.3), "magnification": rng.uniform(2.0, 20.0),
                "arc_npz": encode_arc(arc),
            })
        row["stamp_npz"] = encode_stamp(image.astype(np.float32), invvar, maskbits)
        if rng.random() < 0.02:  # a failed cutout: kept, flagged, no pixels, no arc
            for k in ("stamp_npz", "arc_npz", "arc_snr", "arc_snr_sum", "arc_snr_region", "arc_flux_g", "arc_flux_r", "arc_flux_z"):
                row.pop(k, None)
            row.update(cutout_ok=False, cutout_reason="off_brick")
        rows.append(row)

    if "source_reuse" in breaks:
        train_inj = [r for r in rows if r["split"] == "train" and r["role"] == "injection"]
        test_src = next(r["cosmos_index"] for r in rows if r["split"] == "test" and r["role"] == "injection")
        train_inj[0]["cosmos_index"] = test_src
    if "galaxy_reuse" in breaks:
        a = next(r for r in rows if r["split"] == "train")
        b = next(r for r in rows if r["split"] == "test")
        b["galaxy_id"] = a["galaxy_id"]
    if "tampered_snr" in breaks:
        for r in [r for r in rows if r["role"] == "injection" and r.get("arc_snr")][:3]:
            r["arc_snr"] = r["arc_snr"] * 1.05
    return rows


def write_dataset(root: Path, rows: list[dict], shards_per_split: int = 2, cfg: Config | None = None) -> Path:
    """Write rows as ``root/split=<s>/part-NNNNN.parquet`` (gzip, 64-row groups) + ``_manifest.json``."""
    cfg = cfg or Config()
    root = Path(root)
    counts = {}
    for split in SPLIT_P:
        part = [r for r in rows if _folder(r) == split]
        counts[split] = len(part)
        (root / f"split={split}").mkdir(parents=True, exist_ok=True)
        for k in range(shards_per_split):
            chunk = part[k::shards_per_split]
            pq.write_table(rows_to_table(chunk), root / f"split={split}" / f"part-{k:05d}.parquet", compression="gzip", row_group_size=64)
    manifest = {"config": config_to_dict(cfg), "config_hash": config_hash(cfg), "code_version": "test",
                "totals": {"rows_per_split": counts, "rows": sum(counts.values())}}
    (root / "_manifest.json").write_text(json.dumps(manifest))
    (root / "_SUCCESS").write_text("")
    return root


def _folder(row: dict) -> str:
    return row.get("_folder", row["split"])


def make_dataset(root: Path, variant: str = "honest", n: int = 800, seed: int = 7) -> Path:
    return write_dataset(root, make_rows(n, variant, seed))


# -- the fixture is what it says ------------------------------------------------------------

def test_fixture_noise_matches_invvar_and_snr_matches_definition(tmp_path):
    rows = make_rows(60, "honest", seed=3)
    for r in rows[:20]:
        arrays = decode_stamp(r["stamp_npz"])
        corner = arrays["image"][:, :10, :10]  # far from host and arc
        sigma = corner.reshape(3, -1).std(axis=1)
        assert np.allclose(sigma * np.sqrt(arrays["invvar"][:, 0, 0]), 1.0, atol=0.2)
        if r["role"] == "injection":
            arc = decode_arc(r["arc_npz"])
            good = (arrays["invvar"][1] > 0) & (arrays["maskbits"] == 0)
            if good.any():  # a vectorised formulation of the per-pixel loop in snr_reference
                snr_px = np.where(good, arc[1] * np.sqrt(arrays["invvar"][1]), -np.inf)
                assert np.isclose(r["arc_snr"], snr_px.max(), rtol=1e-6)
    assert {r["role"] for r in rows} == {"control", "injection"}
