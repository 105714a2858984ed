"""Injection physics: speed and accuracy, side by side with the seeds' approach and a converged
lenstronomy reference, in one run (``make bench`` / ``python benchmarks/run_all.py --only physics``).

Figures (medians over stamps measured in this run, one process, one core; CPU time of the
process, because the machine may be shared):

- ``render_ms_per_stamp``: our arc (trace once + three Moffat bands) per injected stamp;
- ``row_ms_per_stamp``: the whole ``inject()`` row with one source draw (acceptance off: draws,
  render, noise, metrics) + ``encode_row`` (NPZ encoding);
- ``accepted_injection_ms``: CPU time of ``inject()`` at the default ``accept`` criteria (render,
  metrics and redraws) summed over the tasks, per accepted injection; ``acceptance_rate``: the
  share of tasks accepted (target: accepted_injection_ms <= 2 x row_ms_per_stamp, same run);
- ``seed_reference_ms_per_stamp``: the seeds' approach, a lenstronomy ImageModel built per stamp,
  one ray per pixel, three band convolutions;
- ``converged_reference_ms_per_stamp``: the same with lenstronomy at supersampling 16;
- ``p99_max_pixel_error`` / ``p90_flux_error``: our PSF-convolved arc against the converged
  lenstronomy reference (max |diff| / peak, |flux ratio - 1|), fractions.

Sources: the seven real HST galaxies of ../shared/data (noise and all) plus GalSim clumpy
galaxies. ``out_dir/bench_physics_detail.json`` also holds the supersampling convergence table.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
from scipy.signal import fftconvolve

from darkhaloscope.config import Config, replace
from darkhaloscope.dataset.rows import encode_row
from darkhaloscope.inject import inject, render_arc
from darkhaloscope.physics.fastrender import ray_levels, render_unit_fast
from darkhaloscope.physics.params import LensParams, f32
from darkhaloscope.physics.psf import convolve_bands, moffat_fwhm_for_psfsize, moffat_kernel
from darkhaloscope.physics.reference import cosmos_templates, galsim_templates, lenstronomy_arc
from darkhaloscope.physics.render import SourcePlacement
from darkhaloscope.sources.bank import SourceBank
from darkhaloscope.survey.cutout import Cutout

REPO = Path(__file__).resolve().parents[1]
N_FAST = int(os.environ.get("DHS_BENCH_PHYSICS_N", 200))
N_REF = int(os.environ.get("DHS_BENCH_PHYSICS_NREF", 30))
N_CONV = int(os.environ.get("DHS_BENCH_PHYSICS_NCONV", 100))


def _templates() -> np.ndarray:
    shared = Path(os.environ.get("DARKHALOSCOPE_SHARED_DATA", REPO.parent / "shared" / "data"))
    parts = [galsim_templates(9, seed=11)]
    if (shared / "slsim_cosmos_test_sample").is_dir():
        parts.append(cosmos_templates(shared))
    return np.concatenate(parts)


def _configs(rng: np.random.Generator, n: int, ntemp: int, cfg: Config) -> list[tuple]:
    out = []
    lc = cfg.lens
    for _ in range(n):
        th = rng.uniform(lc.theta_e_min, lc.theta_e_max)
        e, pe = rng.uniform(0, lc.ellipticity_max), rng.uniform(0, np.pi)
        g, pg = rng.uniform(0, lc.shear_max), rng.uniform(0, np.pi)
        lens = LensParams(*(f32(v) for v in (th, e * np.cos(2 * pe), e * np.sin(2 * pe), g * np.cos(2 * pg), g * np.sin(2 * pg), *rng.uniform(-0.13, 0.13, 2))))
        r, a = lc.source_radius_fraction * th * np.sqrt(rng.uniform()), rng.uniform(0, 2 * np.pi)
        src = SourcePlacement(lens.x + r * np.cos(a), lens.y + r * np.sin(a), rng.uniform(0, 360), bool(rng.integers(2)), 0.03)
        fwhms = {"g": rng.uniform(1.0, 1.9), "r": rng.uniform(0.9, 1.7), "z": rng.uniform(0.85, 1.6)}
        out.append((int(rng.integers(ntemp)), lens, src, fwhms))
    return out


def _timed(fn, *args) -> tuple[float, object]:
    """(CPU milliseconds of this process, result): the machine is shared, wall time is not ours."""
    t0 = time.process_time()
    out = fn(*args)
    return (time.process_time() - t0) * 1e3, out


def _seed_like(template, lens, src, fwhms, cfg, ss) -> np.ndarray:
    """The seeds' render: an ImageModel built for the stamp, then one convolution per band."""
    s, pix = cfg.survey.stamp_size, cfg.survey.pixel_scale
    unit = lenstronomy_arc(template, lens, src, s, pix, ss)
    beta = cfg.render.moffat_beta  # the Moffat with the Neff of DR10's PSFSIZE, as render_arc draws it
    return np.stack([fftconvolve(unit, moffat_kernel(moffat_fwhm_for_psfsize(fwhms[b], beta, pix), pix, beta, cfg.render.psf_flux_fraction, s - 1), mode="same")
                     for b in "grz"])


def run(cfg: Config, out_dir: Path) -> dict:
    out_dir = Path(out_dir)
    templates = list(_templates())  # the same array object per source, as bank.template() gives
    s, pix, ss = cfg.survey.stamp_size, cfg.survey.pixel_scale, cfg.render.supersampling
    mags = {"g": 22.5, "r": 22.5, "z": 22.5}  # unit flux: errors are fractions
    rng = np.random.default_rng(20240601)

    # -- our render and the seeds' render, per stamp -------------------------------------------
    fast = _configs(rng, N_FAST, len(templates), cfg)
    for k, lens, src, fw in fast[:5]:  # warm caches (numba machine code, template preparation)
        render_arc(templates[k], lens, src, mags, fw, cfg, ss)
    render_ms = [_timed(render_arc, templates[k], lens, src, mags, fw, cfg, ss)[0] for k, lens, src, fw in fast]
    seed_ms = [_timed(_seed_like, templates[k], lens, src, fw, cfg, 1)[0] for k, lens, src, fw in fast[: max(20, N_FAST // 4)]]

    # -- the converged reference: lenstronomy ss=16 -------------------------------------------
    ref_ms, max_err, flux_err = [], [], []
    for k, lens, src, fw in fast[:N_REF]:
        dt, ref = _timed(_seed_like, templates[k], lens, src, fw, cfg, 16)
        ref_ms.append(dt)
        ours = render_arc(templates[k], lens, src, mags, fw, cfg, ss).astype(np.float64)
        max_err.append(float(np.max(np.abs(ours - ref).max(axis=(1, 2)) / ref.max(axis=(1, 2)))))
        flux_err.append(float(np.max(np.abs(ours.sum(axis=(1, 2)) / ref.sum(axis=(1, 2)) - 1))))

    # -- whole rows: one draw, and accepted injections at the default criteria -------------------
    n = len(templates)
    zrng = np.random.default_rng(9)
    meta = {
        "cosmos_index": np.arange(n), "ident": np.array([f"t{i}" for i in range(n)]), "mag_f814w": zrng.uniform(21.0, 24.5, n).astype(np.float32),
        "hlr_arcsec": zrng.uniform(0.15, 0.6, n).astype(np.float32), "z_phot": zrng.uniform(0.8, 2.5, n).astype(np.float32),
        "sersic_n": np.ones(n, np.float32), "q": np.ones(n, np.float32), "pixel_scale": np.full(n, 0.03, np.float32),
        "split_group": np.array(["train"] * n),
    }
    bank = SourceBank.from_arrays(templates, meta)
    crng = np.random.default_rng(5)
    yy, xx = np.mgrid[:s, :s] - (s - 1) / 2
    lrg = (6.0 / (2 * np.pi * 4.0) * np.exp(-(xx**2 + yy**2) / 8.0)).astype(np.float32)  # an r = 20.5 host
    cut = Cutout(
        image=crng.normal(0, 0.005, (3, s, s)).astype(np.float32) + lrg, invvar=np.full((3, s, s), 4e4, np.float32),
        maskbits=np.zeros((s, s), np.int32), brickname="bench",
    )
    single = replace(cfg, **{"lens.theta_e_policy": "uniform", "accept.max_tries": 1, "accept.min_magnification": 0.0,
                             "accept.min_snr_region": 0.0, "accept.min_resolvability": 0.0, "accept.min_contrast": 0.0})
    row_ms, acc_ms, n_acc = [], 0.0, 0
    for i in range(N_FAST):
        task = {
            "task_id": 10_000 + i, "galaxy_id": f"b_{i}", "brickname": "bench", "ra": 1.0, "dec": 2.0, "bx": 100.3, "by": 50.7,
            "split": "train", "role": "injection", "flux_g": 3.0, "flux_r": 6.0, "flux_z": 10.0,
            "psfsize_g": 1.5, "psfsize_r": 1.3, "psfsize_z": 1.2, "psfdepth_g": 2e3, "psfdepth_r": 1e3, "psfdepth_z": 2e2,
            "z_phot": float(zrng.uniform(0.3, 0.7)), "shape_e1": float(zrng.normal(0, 0.15)), "shape_e2": float(zrng.normal(0, 0.15)),
        }
        row_ms.append(_timed(lambda t: encode_row(inject(t, cut, bank, single), single.render.write_arc), task)[0])
        dt, row = _timed(inject, task, cut, bank, cfg)
        acc_ms += dt
        n_acc += bool(row["accepted"])

    # -- supersampling convergence table (our sampling == lenstronomy's; reference ss=16) ---------
    table = {}
    conv = _configs(np.random.default_rng(7), N_CONV, len(templates), cfg)
    full = np.ones((s, s), bool)
    r = cfg.render
    refs = [convolve_bands(render_unit_fast(templates[k], lens, src, s, pix, 16, mask=full, table_nodes=0), [fw["r"]], pix)[0] for k, lens, src, fw in conv]
    trials = {str(t): (t, 0.0) for t in (1, 2, 4, 6, 8)}
    trials[f"{ss}_spacing_{r.ray_spacing}"] = (ss, r.ray_spacing)
    for name, (trial, spacing) in trials.items():
        errs, ferrs, rays = [], [], []
        for (k, lens, src, fw), ref in zip(conv, refs, strict=True):
            mask = full if trial == 1 else None
            kw = {"faint_supersampling": r.faint_supersampling, "core_fraction": r.core_fraction, "ray_spacing": spacing}
            ours = convolve_bands(render_unit_fast(templates[k], lens, src, s, pix, trial, mask=mask, **kw), [fw["r"]], pix)[0]
            errs.append(np.abs(ours - ref).max() / ref.max())
            ferrs.append(abs(ours.sum() / ref.sum() - 1))
            lv = ray_levels(templates[k], lens, src, s, pix, trial, **kw) if mask is None else np.ones((2, s, s))
            rays.append(float((lv[0] * lv[1]).sum()))
        table[name] = {
            "p50_max_pixel_error": float(np.median(errs)), "p99_max_pixel_error": float(np.percentile(errs, 99)),
            "p90_flux_error": float(np.percentile(ferrs, 90)), "median_rays_per_stamp": float(np.median(rays)),
        }

    figures = {
        "render_ms_per_stamp": float(np.median(render_ms)),
        "row_ms_per_stamp": float(np.median(row_ms)),
        "accepted_injection_ms": acc_ms / n_acc if n_acc else float("nan"),
        "acceptance_rate": n_acc / N_FAST,
        "seed_reference_ms_per_stamp": float(np.median(seed_ms)),
        "converged_reference_ms_per_stamp": float(np.median(ref_ms)),
        "p99_max_pixel_error": float(np.percentile(max_err, 99)),
        "p90_flux_error": float(np.percentile(flux_err, 90)),
    }
    detail = {
        "figures": figures, "supersampling": ss, "n_stamps": N_FAST, "n_reference": N_REF, "n_templates": int(n),
        "render_ms_p90": float(np.percentile(render_ms, 90)), "row_ms_p90": float(np.percentile(row_ms, 90)),
        "convergence_vs_ss16_psf_convolved_r": table,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bench_physics_detail.json").write_text(json.dumps(detail, indent=2))
    return figures


if __name__ == "__main__":
    print(json.dumps(run(Config(), REPO / "out" / "bench"), indent=2))
