#!/usr/bin/env python
"""Benchmark: how long building a dataset of iNaturalist 2021's size takes when no image is decoded.

Writes an iNat-2021-shaped `train.json` (COCO style: images, annotations, categories with all seven ranks) with
`--images` rows (default 2,686,843, the size of iNat21's train split) over `--species` categories (default 10,000,
as iNat21) spread over a synthetic tree, into a temporary folder. The image files do not exist. Then, in this
process, it times the two steps a training run does before its first step:

1. `read_dataset('inat2021', root, check_files=False)`: parse the JSON, join images, annotations and categories,
   check duplicates, build the records table;
2. `TaxaImageDataset(records, check='none')`: build the taxonomy (7 ranks) and label every row, no file opened;
3. `read_dataset(..., cache_dir=...)` twice: the first call parses and keeps the records (manifests/*.pkl), the second
   reads them back, as every later notebook of a run does.

It reports each step's wall time and the process's peak resident set (ru_maxrss). `check_files=True` (the
default of the readers) would add one `stat` per file, and `check='header'`/`'decode'` one open/decode per image:
those depend on the file system, so they are not part of this number.

    python benchmarks/manifest_build.py                          # iNat21 train size
    python benchmarks/manifest_build.py --images 100000          # a quick look

Results: runs/bench/manifest_build-<time>.json and .md (a new pair every run).
"""
import argparse, json, os, platform, resource, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RANKS = ('kingdom', 'phylum', 'class', 'order', 'family', 'genus')


def write_inat(root: Path, n_images: int, n_species: int, seed: int = 0) -> Path:
    "An iNat-2021-shaped train.json: n_species categories in a tree (fan-out ~ iNat's), n_images images spread over them."
    import numpy as np
    rng = np.random.default_rng(seed)
    sizes = dict(kingdom=3, phylum=13, **{'class': 51}, order=273, family=1103, genus=4884)   # iNat21's taxa per rank
    parent = {}
    for hi, lo in zip(RANKS, RANKS[1:]):            # each lower taxon gets a random parent one rank up
        parent[lo] = np.sort(rng.integers(0, sizes[hi], sizes[lo]))
    genus_of = np.sort(rng.integers(0, sizes['genus'], n_species))
    cats = []
    for c in range(n_species):
        ids = {'genus': int(genus_of[c])}
        for hi, lo in reversed(list(zip(RANKS, RANKS[1:]))): ids[hi] = int(parent[lo][ids[lo]])
        cats.append({'id': c, 'name': f'G{ids["genus"]} e{c}', 'common_name': '', 'supercategory': '',
                     **{r: f'{r[:3].title()}{ids[r]}' for r in RANKS}, 'specific_epithet': f'epithet{c}',
                     'image_dir_name': f'{c:05d}'})
    cat_of = rng.integers(0, n_species, n_images)
    with open(root/'train.json', 'w') as f:         # streamed: the JSON text of 2.7M rows never sits in memory as one string
        f.write('{"info": {}, "licenses": [], "categories": ' + json.dumps(cats) + ', "images": [')
        f.write(','.join(f'{{"id": {i}, "width": 500, "height": 375, "file_name": "train/{cat_of[i]:05d}/{i:08d}.jpg"}}' for i in range(n_images)))
        f.write('], "annotations": [')
        f.write(','.join(f'{{"id": {i}, "image_id": {i}, "category_id": {cat_of[i]}}}' for i in range(n_images)))
        f.write(']}')
    return root/'train.json'


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--images', type=int, default=2_686_843, help="rows (default: iNat21's train split)")
    ap.add_argument('--species', type=int, default=10_000, help="categories (default: iNat21's)")
    ap.add_argument('--out', default=str(ROOT/'runs'/'bench'), help='folder for the result files')
    a = ap.parse_args()
    import warnings
    from taxanb.data import read_dataset, TaxaImageDataset
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as cache:
        t = time.perf_counter(); f = write_inat(Path(tmp), a.images, a.species); t_write = time.perf_counter() - t
        size = f.stat().st_size
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            t = time.perf_counter(); recs = read_dataset('inat2021', tmp, check_files=False); t_read = time.perf_counter() - t
            t = time.perf_counter(); ds = TaxaImageDataset(recs, size=64, check='none'); t_build = time.perf_counter() - t
            cache = Path(cache)
            t = time.perf_counter(); read_dataset('inat2021', tmp, cache_dir=cache, check_files=False); t_first = time.perf_counter() - t
            t = time.perf_counter(); again = read_dataset('inat2021', tmp, cache_dir=cache, check_files=False); t_cached = time.perf_counter() - t
            assert 'cached' in again.report and again.table.equals(recs.table), 'the cached records differ from a fresh read'
            pkl_mb = sum(f.stat().st_size for f in (cache/'manifests').glob('*.pkl')) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    res = dict(images=a.images, species=a.species, json_mb=round(size / 2**20, 1), write_s=round(t_write, 1), read_s=round(t_read, 1),
               build_s=round(t_build, 1), total_s=round(t_read + t_build, 1),
               first_cached_read_s=round(t_first, 1), cached_read_s=round(t_cached, 1), manifest_mb=round(pkl_mb, 1), peak_rss_gib=round(peak, 2), n_images=len(ds),
               taxa_per_level=[ds.taxonomy.n_taxa(l) for l in range(ds.taxonomy.n_levels)], cpu=platform.processor() or platform.machine(),
               cores=os.cpu_count(), python=sys.version.split()[0], command='python benchmarks/manifest_build.py ' + ' '.join(sys.argv[1:]))
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    stem = out/f"manifest_build-{time.strftime('%Y%m%d-%H%M%S')}"
    stem.with_suffix('.json').write_text(json.dumps(res, indent=2) + '\n')
    md = (f"# Dataset build at iNat21 size, no image decoded\n\n`{res['command']}` ({res['cores']} cores)\n\n"
          f"| images | species | train.json | read_dataset | TaxaImageDataset (check='none') | total | peak RSS |\n|---|---|---|---|---|---|---|\n"
          f"| {a.images:,} | {a.species:,} | {res['json_mb']} MB | {res['read_s']} s | {res['build_s']} s | {res['total_s']} s | {res['peak_rss_gib']} GiB |\n\n"
          f"With the records cache (`read_dataset(..., cache_dir=)`): first read (parse + write {res['manifest_mb']} MB) "
          f"{res['first_cached_read_s']} s, every later read {res['cached_read_s']} s (records equal to a fresh read).\n\n"
          f"Taxa per level: {res['taxa_per_level']}.\n")
    stem.with_suffix('.md').write_text(md)
    print(md)


if __name__ == '__main__':
    main()
