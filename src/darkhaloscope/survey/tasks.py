"""The task table (DESIGN 3.1): LRGs from sweep/Tractor catalogs -> Parquet, in-process or on Spark.

    build_tasks(cfg, catalogs, out)            # in-process: <out>/part-00000.parquet
    run(spark, cfg, catalogs, out)             # Spark: one part per file group, same rows

Catalog files are found under the ``catalogs`` root (local or ``s3://``) by name only:
``tractor-<brick>.fits`` (brick validated against the DR10 pattern) and
``sweep-<RRRsDDD>-<RRRsDDD>.fits``; a path that resolves outside the root (``..``, symlinks) is a
SecurityError. Rows are sorted by ``task_id`` in every part; splits and roles are functions of
the ids (ids.py), so they do not depend on how files are grouped.

Photo-z: DR10 publishes them apart from the sweeps (``south/sweep/10.1-photo-z/<sweep>-pz.fits``,
row by row); ``z_phot`` of a sweep's rows is the Z_PHOT_MEDIAN of its photo-z file (null where
-99), from the folder ``<catalogs>-photo-z`` when it exists or the one given; catalogs that carry
their own photo-z column keep it.

PSF size: taken from the catalog's ``psfsize_*`` (DR10 Tractor/sweeps). Catalogs without it (the
DR8 excerpts) take the per-brick ``psfsize_*`` of a survey-bricks table when one is given and
lists the brick; otherwise the value is null. ``psfsize_source`` says which
(``catalog``/``survey-bricks``/``missing``) so generate can flag a null; no value is invented.
Population inputs: ``mw_transmission_g/r/z`` (DR10 fluxes are not extinction-corrected; the arc
is dimmed by the same factor), Tractor ``shape_e1``/``shape_e2`` (sky frame, see
physics/population.py), and ``z_spec`` (redshift) / ``sigma_v`` (km/s) when the catalog carries a
spectroscopic match; null when absent.
``bx``/``by``: the catalog's, else from the standard DR10 brick WCS (3600 px, 0.262"/px, tangent
point at the survey-bricks centre), else null.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..config import Config
from ..dataset.storage import StorageOptions, filesystem_for, is_s3, join
from ..errors import CatalogError, SecurityError
from ..ids import assign_role, assign_split, hash_unit, make_galaxy_id, make_task_ids
from .bricks import BrickTable, validate_brickname
from .catalogs import join_photoz, photoz_relpath, read_catalog
from .lrg import lrg_mask

log = logging.getLogger(__name__)

CATALOG_RE = re.compile(r"^(tractor-(?P<brick>[^/]+)|sweep-\d{3}[pm]\d{3}-\d{3}[pm]\d{3})\.fits(\.gz)?$")
MAX_TASKS_SALT = "dhs-max-tasks-v1"
DR10_BRICK_PIX = 3600

TASK_SCHEMA = pa.schema([
    ("task_id", pa.int64()), ("galaxy_id", pa.string()),
    ("release", pa.int32()), ("brickid", pa.int32()), ("objid", pa.int32()), ("brickname", pa.string()),
    ("ra", pa.float64()), ("dec", pa.float64()), ("bx", pa.float32()), ("by", pa.float32()),
    ("type", pa.string()),
    ("flux_g", pa.float32()), ("flux_r", pa.float32()), ("flux_z", pa.float32()), ("flux_w1", pa.float32()),
    ("psfsize_g", pa.float32()), ("psfsize_r", pa.float32()), ("psfsize_z", pa.float32()), ("psfsize_source", pa.string()),
    ("psfdepth_g", pa.float32()), ("psfdepth_r", pa.float32()), ("psfdepth_z", pa.float32()),
    ("ebv", pa.float32()), ("z_phot", pa.float32()), ("shape_r", pa.float32()), ("maskbits", pa.int32()),
    ("split", pa.string()), ("role", pa.string()), ("catalog", pa.string()),
    # population inputs (issue 15): Galactic transmission, Tractor shape, optional spectroscopy
    ("mw_transmission_g", pa.float32()), ("mw_transmission_r", pa.float32()), ("mw_transmission_z", pa.float32()),
    ("shape_e1", pa.float32()), ("shape_e2", pa.float32()), ("z_spec", pa.float32()), ("sigma_v", pa.float32()),
])


# -- finding files ---------------------------------------------------------------------------

def list_catalogs(root: str, options: StorageOptions | None = None) -> list[str]:
    """Sorted paths (relative to ``root``) of the sweep/Tractor files under it."""
    from pyarrow import fs as pafs

    fs, base = filesystem_for(root, options)
    info = fs.get_file_info(base)
    if info.type == pafs.FileType.NotFound:
        raise CatalogError(f"catalog root {root} does not exist", path=root)
    if info.type == pafs.FileType.File:  # a single catalog file
        parent, name = base.rsplit("/", 1) if "/" in base else (".", base)
        return [name] if CATALOG_RE.match(name) else []
    rels = []
    for fi in fs.get_file_info(pafs.FileSelector(base, recursive=True)):
        if fi.type != pafs.FileType.File:
            continue
        rel = fi.path[len(base.rstrip("/")) + 1 :]
        if CATALOG_RE.match(rel.rsplit("/", 1)[-1]):
            rels.append(check_relpath(root, rel))
    return sorted(rels)


def check_relpath(root: str, rel: str) -> str:
    """``rel`` if it names a catalog file inside ``root``; SecurityError otherwise."""
    name = rel.rsplit("/", 1)[-1]
    m = CATALOG_RE.match(name)
    if not m or any(part in ("..", "") for part in rel.split("/")) or rel.startswith("/"):
        raise SecurityError(f"catalog path {rel!r} is not a sweep/tractor file name inside {root}", path=rel)
    if m.group("brick") is not None:
        validate_brickname(m.group("brick"))
    if not is_s3(root):
        base = Path(root).resolve()
        full = (Path(root) / rel).resolve()
        if full != base and base not in full.parents:
            raise SecurityError(f"catalog path {rel!r} resolves outside {root} (to {full})", path=rel)
    return rel


def _bytes(url: str, options: StorageOptions | None) -> bytes:
    fs, path = filesystem_for(url, options)
    with fs.open_input_file(path) as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        import gzip

        data = gzip.decompress(data)
    return data


def _read(root: str, rel: str, options: StorageOptions | None, photoz: str | None = None) -> dict:
    """Canonical columns of one catalog file; a sweep gets ``z_phot`` from its photo-z file under
    ``photoz`` (DR10 ``sweep/10.1-photo-z/<sweep>-pz.fits``) when that folder is given."""
    label = join(root, rel) if rel else root
    cols = read_catalog(_bytes(label, options), label=label)
    name = (rel or root).rsplit("/", 1)[-1]
    if photoz and name.startswith("sweep-"):
        pz_url = join(photoz, photoz_relpath(rel or name))
        try:
            data = _bytes(pz_url, options)
        except OSError as exc:  # absent or unreadable: the sweep's rows would lose their z_phot silently
            raise CatalogError(f"sweep {label} has no readable photo-z file {pz_url}: {exc}", path=pz_url) from None
        cols = join_photoz(cols, data, label, pz_url)
    return cols


def default_photoz_root(catalogs: str, options: StorageOptions | None = None) -> str | None:
    """The photo-z folder beside a sweep folder (DR10: ``sweep/10.1`` -> ``sweep/10.1-photo-z``), if it exists."""
    from pyarrow import fs as pafs

    root = catalogs.rstrip("/")
    if "/" not in root.split("://", 1)[-1]:
        return None
    candidate = root + "-photo-z"
    try:
        fs, path = filesystem_for(candidate, options)
        return candidate if fs.get_file_info(path).type == pafs.FileType.Directory else None
    except OSError:
        return None


# -- rows ------------------------------------------------------------------------------------

def _f32(a, n):
    return np.full(n, np.nan, np.float32) if a is None else np.asarray(a, np.float32)


def _brick_wcs_xy(table: BrickTable, names: np.ndarray, ra: np.ndarray, dec: np.ndarray, pixscale: float):
    """bx, by from the standard DR10 brick WCS; NaN where the brick is unknown."""
    from astropy.wcs import WCS

    bx = np.full(len(ra), np.nan, np.float32)
    by = np.full(len(ra), np.nan, np.float32)
    for name in np.unique(names):
        b = table.get(name)
        if b is None:
            continue
        w = WCS(naxis=2)
        w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        w.wcs.crval = [b.ra, b.dec]
        w.wcs.crpix = [(DR10_BRICK_PIX + 1) / 2.0] * 2
        w.wcs.cd = [[-pixscale / 3600.0, 0.0], [0.0, pixscale / 3600.0]]
        sel = names == name
        x, y = w.all_world2pix(ra[sel], dec[sel], 0)
        bx[sel], by[sel] = x, y
    return bx, by


def tasks_from_catalog(cols: dict, cfg: Config, label: str = "", bricks: BrickTable | None = None) -> pa.Table:
    """LRG rows of one catalog as a task table (TASK_SCHEMA), sorted by task_id."""
    keep = lrg_mask(cols, cfg.tasks.lrg)
    if cfg.tasks.lrg.require_primary and cols.get("brick_primary") is not None:
        keep &= np.asarray(cols["brick_primary"]).astype(bool)
    idx = np.flatnonzero(keep)
    c = {k: (v[idx] if isinstance(v, np.ndarray) else v) for k, v in cols.items() if k != "n"}
    n = len(idx)
    release = np.asarray(c["release"], np.int64)
    brickid = np.asarray(c["brickid"], np.int64)
    objid = np.asarray(c["objid"], np.int64)
    try:
        task_id = make_task_ids(release, brickid, objid)
    except CatalogError as exc:
        raise CatalogError(f"{exc.message} in {label}", path=label, field=exc.fields.get("field"), row=int(idx[exc.fields.get("row", 0)])) from None
    if c.get("brickname") is not None:
        names = np.array([validate_brickname(b) for b in c["brickname"]], dtype=object)
    elif m := re.search(r"tractor-(\d{4}[pm]\d{3})\.fits", label):
        names = np.full(n, m.group(1), dtype=object)
    else:
        raise CatalogError(f"catalog {label} has no BRICKNAME column and its file name names no brick", path=label, field="brickname")
    ra, dec = np.asarray(c["ra"], float), np.asarray(c["dec"], float)

    psf = {b: _f32(c.get(f"psfsize_{b}"), n) for b in "grz"}
    source = np.full(n, "catalog" if c.get("psfsize_r") is not None else "missing", dtype=object)
    if c.get("psfsize_r") is None and bricks is not None and "psfsize_r" in bricks.extra:
        rows = np.array([-1 if bricks.index(b) is None else bricks.index(b) for b in names], dtype=np.int64)
        found = rows >= 0
        for b in "grz":
            col = bricks.extra.get(f"psfsize_{b}")
            if col is not None:
                psf[b][found] = col[rows[found]]
        source[found] = "survey-bricks"
    for b in "grz":  # DR summaries write 0 where a band has no data: that is not a PSF size
        psf[b][~(psf[b] > 0)] = np.nan

    if c.get("bx") is not None and c.get("by") is not None:
        bx, by = _f32(c["bx"], n), _f32(c["by"], n)
    elif bricks is not None:
        bx, by = _brick_wcs_xy(bricks, names, ra, dec, cfg.survey.pixel_scale)
    else:
        bx = by = np.full(n, np.nan, np.float32)

    galaxy_id = [make_galaxy_id(r, b, o) for r, b, o in zip(release, brickid, objid, strict=True)]
    split = [assign_split(t, cfg.tasks.split_fractions, cfg.tasks.split_salt) for t in task_id]
    mixes = {s: cfg.tasks.role_mix(s) for s in set(split)}
    role = [assign_role(g, mixes[s], cfg.tasks.role_salt) for g, s in zip(galaxy_id, split, strict=True)]

    def nullable(a):
        a = np.asarray(a, np.float32)
        return pa.array(a, pa.float32(), mask=~np.isfinite(a))

    data = {
        "task_id": pa.array(task_id, pa.int64()), "galaxy_id": pa.array(galaxy_id, pa.string()),
        "release": pa.array(release, pa.int32()), "brickid": pa.array(brickid, pa.int32()), "objid": pa.array(objid, pa.int32()),
        "brickname": pa.array(list(names), pa.string()), "ra": pa.array(ra), "dec": pa.array(dec),
        "bx": nullable(bx), "by": nullable(by), "type": pa.array(list(c["type"]), pa.string()),
        **{f"flux_{b}": pa.array(np.asarray(c[f"flux_{b}"], np.float32)) for b in ("g", "r", "z", "w1")},
        **{f"psfsize_{b}": nullable(psf[b]) for b in "grz"},
        "psfsize_source": pa.array(list(source), pa.string()),
        **{f"psfdepth_{b}": nullable(_f32(c.get(f"psfdepth_{b}"), n)) for b in "grz"},
        "ebv": nullable(_f32(c.get("ebv"), n)), "z_phot": nullable(_f32(c.get("z_phot"), n)),
        "shape_r": nullable(_f32(c.get("shape_r"), n)),
        "maskbits": pa.array(np.asarray(c["maskbits"], np.int32)),
        "split": pa.array(split, pa.string()), "role": pa.array(role, pa.string()),
        "catalog": pa.array([label] * n, pa.string()),
        **{f"mw_transmission_{b}": nullable(_f32(c.get(f"mw_transmission_{b}"), n)) for b in "grz"},
        **{k: nullable(_f32(c.get(k), n)) for k in ("shape_e1", "shape_e2", "z_spec", "sigma_v")},
    }
    table = pa.table(data, schema=TASK_SCHEMA)
    return table.take(pa.array(np.argsort(task_id, kind="stable")))


def tasks_for_files(cfg: Config, root: str, rels: list[str], options: StorageOptions | None = None, bricks: BrickTable | None = None,
                    photoz: str | None = None) -> pa.Table:
    """Task rows of a group of catalog files, deduplicated by task_id, sorted (``photoz``: see :func:`_read`)."""
    tables = [tasks_from_catalog(_read(root, rel, options, photoz), cfg, join(root, rel) if rel else root, bricks) for rel in rels]
    if not tables:
        return TASK_SCHEMA.empty_table()
    t = pa.concat_tables(tables)
    ids = t.column("task_id").to_numpy()
    order = np.argsort(ids, kind="stable")
    ids_sorted = ids[order]
    first = np.ones(len(ids_sorted), bool)
    first[1:] = ids_sorted[1:] != ids_sorted[:-1]
    return t.take(pa.array(order[first]))


def write_part(table: pa.Table, out: str, index: int, options: StorageOptions | None = None) -> str:
    """Write ``<out>/part-<index:05d>.parquet`` (deterministic name: a retry overwrites)."""
    fs, path = filesystem_for(out, options)
    if not is_s3(out):
        Path(path).mkdir(parents=True, exist_ok=True)
    target = join(path, f"part-{index:05d}.parquet")
    pq.write_table(table, target, filesystem=fs, compression="zstd")
    return target


def clear_parts(out: str, options: StorageOptions | None = None) -> None:
    """Remove old ``part-*.parquet`` under ``out`` so a rerun with fewer parts leaves none behind."""
    from pyarrow import fs as pafs

    fs, path = filesystem_for(out, options)
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        return
    for fi in fs.get_file_info(pafs.FileSelector(path)):
        if re.fullmatch(r"part-\d{5}\.parquet", fi.base_name):
            fs.delete_file(fi.path)


def _limit(cfg: Config, out: str, options: StorageOptions | None) -> None:
    """Keep the ``tasks.max_tasks`` rows with the smallest salted hash of task_id (whole table)."""
    k = cfg.tasks.max_tasks
    if k <= 0:
        return
    fs, path = filesystem_for(out, options)
    import pyarrow.dataset as pads

    ds = pads.dataset(path, filesystem=fs, format="parquet")
    ids = ds.to_table(columns=["task_id"]).column("task_id").to_numpy()
    if len(ids) <= k:
        return
    u = np.array([hash_unit(int(t), MAX_TASKS_SALT) for t in ids])
    cut = np.partition(u, k - 1)[k - 1]
    for frag in ds.get_fragments():
        t = frag.to_table()
        uu = np.array([hash_unit(int(x), MAX_TASKS_SALT) for x in t.column("task_id").to_numpy()])
        pq.write_table(t.filter(pa.array(uu <= cut)), frag.path, filesystem=fs, compression="zstd")


def _bricks_table(path: str | None, options: StorageOptions | None) -> BrickTable | None:
    if not path:
        return None
    fs, p = filesystem_for(path, options)
    with fs.open_input_file(p) as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        import gzip

        data = gzip.decompress(data)
    import io

    return BrickTable.read(io.BytesIO(data), label=path)


def build_tasks(cfg: Config, catalogs: str, out: str, *, bricks_table: str | None = None, options: StorageOptions | None = None,
                photoz: str | None = "auto") -> dict:
    """In-process task table: every catalog under ``catalogs`` -> ``<out>/part-00000.parquet``.
    ``photoz``: folder of the sweeps' photo-z files; "auto" = ``<catalogs>-photo-z`` when it exists."""
    rels = list_catalogs(catalogs, options)
    if not rels:
        raise CatalogError(f"no sweep-*.fits or tractor-<brick>.fits files under {catalogs}", path=catalogs)
    bricks = _bricks_table(bricks_table, options)
    photoz = default_photoz_root(catalogs, options) if photoz == "auto" else photoz
    table = tasks_for_files(cfg, catalogs, rels, options, bricks, photoz)
    clear_parts(out, options)
    write_part(table, out, 0, options)
    _limit(cfg, out, options)
    return {"files": len(rels), "tasks": _count(out, options), "out": out}


def run(spark, cfg: Config, catalogs: str, out: str, *, bricks_table: str | None = None, options: StorageOptions | None = None, files_per_partition: int = 64,
        photoz: str | None = "auto") -> dict:
    """Spark job: catalog files are grouped (sorted, ``files_per_partition`` each); each group's
    executor reads, selects and writes ``part-<group>.parquet``. Same rows as :func:`build_tasks`
    when the same objects are not split across groups (a brick's Tractor file is one file)."""
    rels = list_catalogs(catalogs, options)
    if not rels:
        raise CatalogError(f"no sweep-*.fits or tractor-<brick>.fits files under {catalogs}", path=catalogs)
    groups = [rels[i : i + files_per_partition] for i in range(0, len(rels), files_per_partition)]
    bricks = _bricks_table(bricks_table, options)
    photoz = default_photoz_root(catalogs, options) if photoz == "auto" else photoz

    def work(index, it):
        for group in it:
            table = tasks_for_files(cfg, catalogs, group, options, bricks, photoz)
            write_part(table, out, index, options)
            yield table.num_rows

    clear_parts(out, options)
    sc = spark.sparkContext
    counts = sc.parallelize(groups, len(groups)).mapPartitionsWithIndex(work).collect()
    _limit(cfg, out, options)
    return {"files": len(rels), "tasks": _count(out, options) if cfg.tasks.max_tasks else int(sum(counts)), "out": out}


def _count(out: str, options: StorageOptions | None) -> int:
    import pyarrow.dataset as pads

    fs, path = filesystem_for(out, options)
    return pads.dataset(path, filesystem=fs, format="parquet").count_rows()
