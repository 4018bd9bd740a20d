"""Faults and bad input (issue 17): every case ends in a clear error (the exception type or exit status 2, a message
that names the problem AND the fix), a reported count, or the right result; and nothing an earlier run or the cache
holds is changed or left behind. Readers run on small files written here (and, when the real data folder is present,
on copies of the real CUB-200 files); the CLI runs in-process or as a subprocess; a killed `taxanb reproduce` is a
real `kill -9` of a subprocess running a registry of tiny notebooks. The helpers note what each case checked (`outcomes.saw`);
`pytest` closes with the count of cases and what they ended in (tests/outcomes.py), the numbers in the README's Reliability section."""
import json, os, re, shutil, signal, socket, subprocess, sys, time, warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io
from PIL import Image

from outcomes import saw
from taxanb import cli, reproduce as rp
from taxanb.core import RunError, usable_dir
from taxanb.data import (DataError, DataWarning, TaxaImageDataset, read_bioscan1m, read_cub200, read_dataset, read_fishnet,
                         read_image_folder, read_inat2021, read_oxford102)
from taxanb.reproduce import Notebook, check_inputs, reproduce
from taxanb.taxonomy import Taxonomy, TaxonomyError, TaxonomyWarning

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


# ---------------------------------------------------------------- helpers

def snapshot(*roots) -> dict:
    "Every file under `roots` with its size and modification time (folders by name only): equal snapshots = nothing changed."
    out = {}
    for root in map(Path, roots):
        if root.is_file(): out[str(root)] = (root.stat().st_size, root.stat().st_mtime_ns)
        elif root.is_dir():
            for p in sorted(root.rglob('*')):
                out[str(p)] = 'dir' if p.is_dir() and not p.is_symlink() else (p.lstat().st_size, p.lstat().st_mtime_ns)
    return out


def raises(fn, *needles, exc=DataError) -> str:
    "Call `fn`, expect `exc` whose message holds every needle (the problem and the fix); return the message."
    with pytest.raises(exc) as e: fn()
    msg = str(e.value)
    for n in needles: assert n in msg, f"{n!r} not in: {msg}"
    saw('clear error')
    return msg


def warns(fn, *needles, cat=DataWarning):
    "Call `fn`, expect a warning of `cat` whose message holds every needle; return (result, message)."
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        r = fn()
    msgs = [str(x.message) for x in w if issubclass(x.category, cat)]
    hit = [m for m in msgs if all(n in m for n in needles)]
    assert hit, f"no {cat.__name__} with {needles}; got {msgs}"
    saw('reported')
    return r, hit[0]


def cli_run(capsys, *args) -> tuple:
    "`taxanb ARGS` in-process: (exit status, stderr). An uncaught exception (a raw traceback) fails the test."
    rc = cli.main([str(a) for a in args])
    return rc, capsys.readouterr().err


def one_line(err, *needles):
    "A CLI error: one line, no traceback, naming every needle."
    assert 'Traceback' not in err and len(err.strip().splitlines()) == 1, err
    for n in needles: assert n in err, f"{n!r} not in: {err}"
    saw('clear error')


def taxanb(*args, **kw):
    return subprocess.run([str(BIN / 'taxanb'), *map(str, args)], capture_output=True, text=True, **kw)


def img(path, size=(24, 20), color=(200, 30, 30)):
    path = Path(path); path.parent.mkdir(parents=True, exist_ok=True)
    Image.new('RGB', size, color).save(path)
    return path


# ---------------------------------------------------------------- small datasets in the real formats

CUB_FILES = ['001.Black_footed_Albatross/Black_footed_Albatross_0001_1.jpg', '001.Black_footed_Albatross/Black_footed_Albatross_0002_2.jpg',
             '002.Laysan_Albatross/Laysan_Albatross_0001_3.jpg', '003.Sooty_Albatross/Sooty_Albatross_0001_4.jpg']


def write_cub(root, images=True):
    root = Path(root); root.mkdir(parents=True, exist_ok=True)
    (root/'images.txt').write_text(''.join(f'{i} {f}\n' for i, f in enumerate(CUB_FILES, 1)))
    (root/'image_class_labels.txt').write_text('1 1\n2 1\n3 2\n4 3\n')
    (root/'classes.txt').write_text('1 001.Black_footed_Albatross\n2 002.Laysan_Albatross\n3 003.Sooty_Albatross\n')
    (root/'train_test_split.txt').write_text('1 1\n2 0\n3 1\n4 0\n')
    if images:
        for f in CUB_FILES: img(root/'images'/f)
    return root


def append(path, text):
    with open(path, 'a') as f: f.write(text)


@pytest.fixture
def cub(tmp_path):
    "A 4-image CUB in the official layout; the test may break it. Its snapshot is checked after: readers write nothing."
    root = write_cub(tmp_path/'CUB_200_2011')
    yield root


@pytest.fixture
def real_cub(tmp_path, shared_data):
    "The real CUB-200 subset's text files copied into tmp_path (the images linked, not copied): break them, not the originals."
    src = shared_data/'cub200'/'CUB_200_2011'
    if not (src/'images.txt').is_file(): pytest.skip(f'no CUB-200 subset under {shared_data}')
    dst = tmp_path/'CUB_200_2011'; dst.mkdir()
    for f in src.glob('*.txt'): shutil.copy(f, dst/f.name)
    (dst/'images').symlink_to(src/'images')
    before = snapshot(src/'images.txt', src/'classes.txt')
    yield dst
    assert snapshot(src/'images.txt', src/'classes.txt') == before


FISH = [dict(species='Naso fageni', image='https://www.fishbase.se/images/species/Nafag_u0.jpg', Genus='Naso', Family='Acanthuridae',
             Order='Acanthuriformes', Class='Actinopteri', Folder='Acanthuridae', Troph=2.1),
        dict(species='Zebrasoma flavescens', image='Zefla_u2.jpg', Genus='Zebrasoma', Family='Acanthuridae',
             Order='Acanthuriformes', Class='Actinopteri', Folder='Acanthuridae', Troph=2.0),
        dict(species='Diplodus sargus', image='ce23.jpg', Genus='Diplodus', Family='Sparidae', Order='Perciformes',
             Class='Actinopteri', Folder='Sparidae', Troph=3.5)]


def write_fish(root, rows=FISH, name='test.csv', images=True):
    root = Path(root); root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(root/name)            # the leading unnamed index column of the real files
    if images:
        for r in rows: img(root/'Image_Library'/r['Folder']/r['image'].split('/')[-1])
    return root


# ================================================================ finding 3: duplicate ids / images

def test_cub_duplicate_image_id_with_another_label_names_both_lines(real_cub):
    "The issue's repro: `1 002.Laysan_Albatross/...` appended to images.txt and `1 2` to image_class_labels.txt."
    before = snapshot(real_cub)
    append(real_cub/'images.txt', '1 002.Laysan_Albatross/Laysan_Albatross_0001_x.jpg\n')
    append(real_cub/'image_class_labels.txt', '1 2\n')
    raises(lambda: read_dataset('cub200', real_cub), 'image id 1 is listed twice', 'images.txt line 1 ', 'images.txt line 5903',
           'fix or delete the wrong line')
    assert {k for k in snapshot(real_cub)} == set(before)        # nothing written next to the data


def test_cub_conflicting_label_lines_name_both_lines(cub):
    append(cub/'image_class_labels.txt', '3 1\n')
    raises(lambda: read_cub200(cub), 'image id 3 is listed twice', 'image_class_labels.txt line 3 gives label=2',
           'image_class_labels.txt line 5 gives label=1', 'fix or delete')


def test_cub_exact_duplicate_lines_are_dropped_with_a_count(cub):
    append(cub/'images.txt', f'2 {CUB_FILES[1]}\n'); append(cub/'image_class_labels.txt', '2 1\n')
    r, msg = warns(lambda: read_cub200(cub), '1 row repeats an earlier row exactly (same image id', 'images.txt line 5', "n_duplicate_rows")
    assert len(r) == 4 and r.report['n_duplicate_rows'] == 2 and r.table.image_id.tolist() == [1, 2, 3, 4]


def test_cub_one_file_under_two_ids_with_other_labels_is_an_error(cub):
    append(cub/'images.txt', f'5 {CUB_FILES[0]}\n'); append(cub/'image_class_labels.txt', '5 2\n'); append(cub/'train_test_split.txt', '5 1\n')
    raises(lambda: read_cub200(cub), 'is listed twice with different values', "species='Black footed Albatross'",
           "species='Laysan Albatross'", 'delete the extra line in images.txt')


def test_cub_one_file_under_two_ids_with_the_same_label_is_dropped(cub):
    append(cub/'images.txt', f'5 {CUB_FILES[0]}\n'); append(cub/'image_class_labels.txt', '5 1\n'); append(cub/'train_test_split.txt', '5 1\n')
    r, _ = warns(lambda: read_cub200(cub), '1 row repeats an earlier row exactly', 'same image file')
    assert len(r) == 4 and r.report['n_duplicate_rows'] == 1


def test_fishnet_one_image_with_two_taxa_names_both_rows(tmp_path):
    rows = FISH + [dict(FISH[1], species='Zebrasoma scopas')]
    root = write_fish(tmp_path, rows)
    raises(lambda: read_fishnet(root, csv='test.csv'), 'Zefla_u2.jpg is listed twice', "test.csv line 3 gives species='Zebrasoma flavescens'",
           "test.csv line 5 gives species='Zebrasoma scopas'", 'fix or delete the wrong row')


def test_fishnet_exact_duplicate_rows_are_dropped_with_a_count(tmp_path):
    root = write_fish(tmp_path, FISH + [FISH[0], FISH[0]])
    r, _ = warns(lambda: read_fishnet(root, csv='test.csv'), '2 rows repeat an earlier row exactly', 'test.csv line 5')
    assert len(r) == 3 and r.report['n_duplicate_rows'] == 2 and r.report['n_rows'] == 5


def test_fishnet_one_image_in_train_and_test_is_an_error(tmp_path):
    root = write_fish(tmp_path, FISH, 'test.csv'); write_fish(tmp_path, FISH[:1], 'train.csv')
    raises(lambda: read_fishnet(root, csv=['train.csv', 'test.csv']), 'Nafag_u0.jpg is listed twice', "split='train'", "split='test'",
           'An image belongs to one split')


def test_inat_two_annotations_of_one_image_with_other_categories(tmp_path):
    "Before: the second annotation was dropped without a word (drop_duplicates('image_id'))."
    cats = [dict(id=i, kingdom='Animalia', phylum='Chordata', **{'class': 'Aves'}, order='O', family='F', genus=g, specific_epithet=e)
            for i, (g, e) in enumerate([('Anas', 'acuta'), ('Anas', 'crecca')])]
    ims = [dict(id=1, file_name='val/a.jpg'), dict(id=2, file_name='val/b.jpg')]
    anns = [dict(id=0, image_id=1, category_id=0), dict(id=1, image_id=2, category_id=0), dict(id=2, image_id=1, category_id=1)]
    (tmp_path/'val.json').write_text(json.dumps(dict(images=ims, annotations=anns, categories=cats)))
    raises(lambda: read_inat2021(tmp_path, 'val', check_files=False), 'is listed twice with different values',
           'val.json annotations[0] gives category_id=0', 'val.json annotations[2] gives category_id=1', 'fix or delete')
    anns[2]['category_id'] = 0                                    # the same annotation twice: dropped, counted
    (tmp_path/'val.json').write_text(json.dumps(dict(images=ims, annotations=anns, categories=cats)))
    r, _ = warns(lambda: read_inat2021(tmp_path, 'val', check_files=False), '1 row repeats an earlier row exactly')
    assert len(r) == 2 and r.report['n_duplicate_rows'] == 1


def test_inat_category_id_listed_twice_with_other_taxa(tmp_path):
    cat = dict(id=0, kingdom='Animalia', phylum='Chordata', **{'class': 'Aves'}, order='O', family='F', genus='Anas', specific_epithet='acuta')
    d = dict(images=[dict(id=1, file_name='val/a.jpg')], annotations=[dict(id=0, image_id=1, category_id=0)],
             categories=[cat, dict(cat, genus='Aythya', specific_epithet='ferina')])
    (tmp_path/'val.json').write_text(json.dumps(d))
    raises(lambda: read_inat2021(tmp_path, 'val', check_files=False), 'category id 0 is listed twice', 'val.json categories[1]', "genus='Aythya'")


def test_bioscan_one_image_with_two_species(tmp_path):
    cols = ['processid', 'class', 'order', 'family', 'genus', 'species', 'image_file']
    rows = [['P1', 'Insecta', 'Diptera', 'Muscidae', 'Musca', 'Musca domestica', '1.jpg'],
            ['P2', 'Insecta', 'Diptera', 'Muscidae', 'Musca', 'Musca autumnalis', '1.jpg']]
    pd.DataFrame(rows, columns=cols).to_csv(tmp_path/'m.tsv', sep='\t', index=False)
    raises(lambda: read_bioscan1m(tmp_path, metadata='m.tsv', check_files=False), '1.jpg is listed twice', 'm.tsv line 2', 'm.tsv line 3',
           "'Musca domestica'", 'fix or delete')


def test_folder_csv_one_path_with_two_species(tmp_path):
    img(tmp_path/'a.jpg')
    pd.DataFrame({'path': ['a.jpg', 'a.jpg'], 'species': ['Anas acuta', 'Anas crecca']}).to_csv(tmp_path/'t.csv', index=False)
    raises(lambda: read_image_folder(tmp_path, csv='t.csv'), 'a.jpg is listed twice', "t.csv line 2 gives species='Anas acuta'",
           "t.csv line 3 gives species='Anas crecca'")


def test_oxford_image_in_two_splits(tmp_path):
    scipy.io.savemat(tmp_path/'imagelabels.mat', {'labels': np.array([[1, 1, 2, 2]], dtype=np.uint8)})
    scipy.io.savemat(tmp_path/'setid.mat', {'trnid': np.array([[1, 2]]), 'valid': np.array([[3]]), 'tstid': np.array([[2, 4]])})
    raises(lambda: read_oxford102(tmp_path, check_files=False), 'image 2 is in two splits', 'train and test', 'use the official setid.mat')


# ================================================================ finding 4: missing entries, empty tables, merged names

def test_cub_missing_split_lines_are_counted_not_turned_into_test(real_cub):
    "The issue's repro: 100 lines of train_test_split.txt deleted; before: 2,803 / 3,099 train/test, no warning."
    lines = (real_cub/'train_test_split.txt').read_text().splitlines()
    (real_cub/'train_test_split.txt').write_text('\n'.join(lines[100:]) + '\n')
    r, msg = warns(lambda: read_dataset('cub200', real_cub), '100 of 5,902 images have no line in train_test_split.txt',
                   "split is 'unassigned'", 'Restore the missing lines')
    assert r.report['splits'] == {'unassigned': 100, 'train': 2803, 'test': 2999} and r.report['n_no_split'] == 100


def test_cub_empty_classes_file_is_an_error(cub):
    "Before: 0 records and only a warning."
    (cub/'classes.txt').write_text('')
    raises(lambda: read_cub200(cub), 'classes.txt is empty', 'copy it again from the CUB_200_2011 archive')
    (cub/'classes.txt').write_text('\n\n')                         # blank lines only
    raises(lambda: read_cub200(cub), 'classes.txt is empty (no lines)')


def test_cub_no_usable_image_is_an_error_with_the_counts(cub):
    (cub/'classes.txt').write_text('7 007.Parakeet_Auklet\n')      # none of the images' labels is listed
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DataWarning)
        raises(lambda: read_cub200(cub), 'cub200: no images to use', 'unknown label 4', 'Check that root is the dataset folder')


def test_cub_two_labels_sharing_a_class_name_are_reported(real_cub):
    "The issue's repro: 100 labels -> 99 species, silently."
    c = (real_cub/'classes.txt').read_text().replace('4 004.Groove_billed_Ani\n', '4 001.Black_footed_Albatross\n')
    (real_cub/'classes.txt').write_text(c)
    r, _ = warns(lambda: read_dataset('cub200', real_cub), 'labels 1, 4 are all', '100 labels -> 99 species', 'give them different names')
    assert r.report['shared_class_names'] == {'Black footed Albatross': [1, 4]} and r.report['n_taxa'] == {'species': 99}


def test_cub_unknown_and_missing_labels_are_counted(cub):
    (cub/'image_class_labels.txt').write_text('1 1\n2 9\n3 2\n')   # image 2: label 9 not in classes.txt; image 4: no line
    r, _ = warns(lambda: read_cub200(cub), '2 of 4 images have no class label', '1 have no line in image_class_labels.txt',
                 '1 a label that classes.txt does not list (e.g. label 9)')
    assert len(r) == 2 and (r.report['n_no_label'], r.report['n_unknown_label']) == (1, 1)


def test_cub_lines_for_unknown_image_ids_are_counted(cub):
    append(cub/'image_class_labels.txt', '99 1\n'); append(cub/'train_test_split.txt', '99 0\n')
    r, _ = warns(lambda: read_cub200(cub), '2 lines of image_class_labels.txt or train_test_split.txt name image ids', 'is images.txt cut short?')
    assert len(r) == 4 and r.report['n_label_lines_without_image'] == 1


def test_cub_bad_is_train_value(cub):
    (cub/'train_test_split.txt').write_text('1 1\n2 0\n3 yes\n4 0\n')
    raises(lambda: read_cub200(cub), 'train_test_split.txt line 3', "is_train is 'yes'", 'it must be 1 (train) or 0 (test)')


def test_oxford_images_in_no_split_are_counted(tmp_path):
    scipy.io.savemat(tmp_path/'imagelabels.mat', {'labels': np.array([[1, 1, 2, 2]], dtype=np.uint8)})
    scipy.io.savemat(tmp_path/'setid.mat', {'trnid': np.array([[1]]), 'valid': np.array([[2]]), 'tstid': np.array([[3]])})
    r, _ = warns(lambda: read_oxford102(tmp_path, check_files=False), '1 of 4 labelled images are in no split', "'unassigned'")
    assert r.report['splits']['unassigned'] == 1


def test_oxford_two_labels_with_one_name(tmp_path):
    scipy.io.savemat(tmp_path/'imagelabels.mat', {'labels': np.array([[1, 2, 3]], dtype=np.uint8)})
    scipy.io.savemat(tmp_path/'setid.mat', {'trnid': np.array([[1, 2, 3]]), 'valid': np.zeros((1, 0)), 'tstid': np.zeros((1, 0))})
    (tmp_path/'class_names.json').write_text(json.dumps({'1': 'pink primrose', '2': 'pink primrose', '3': 'globe thistle'}))
    r, _ = warns(lambda: read_oxford102(tmp_path, check_files=False), "labels 1, 2 are all 'pink primrose'", '3 labels -> 2 species')
    assert r.report['n_taxa'] == {'species': 2}


def test_fishnet_header_only_csv_is_an_error(tmp_path):
    root = write_fish(tmp_path, [FISH[0]], images=False)
    (root/'test.csv').write_text((root/'test.csv').read_text().splitlines()[0] + '\n')
    raises(lambda: read_fishnet(root, csv='test.csv'), 'fishnet: no images to use', 'Check that root is the dataset folder')


def test_zero_byte_csv_is_an_error(tmp_path):
    (tmp_path/'test.csv').write_bytes(b'')
    raises(lambda: read_fishnet(tmp_path, csv='test.csv'), 'test.csv is empty (0 bytes)', 'copy it again')


# ================================================================ columns, encodings, line formats

def test_fishnet_missing_column_names_it_and_the_columns(tmp_path):
    root = write_fish(tmp_path, [{k: v for k, v in r.items() if k != 'Genus'} for r in FISH], images=False)
    raises(lambda: read_fishnet(root, csv='test.csv', check_files=False), "required column 'genus' not found", "'Family'",
           'rename the column')


def test_fishnet_extra_columns_change_nothing(tmp_path):
    root = write_fish(tmp_path/'a', FISH)
    wide = write_fish(tmp_path/'b', [dict(r, Subfamily='x', notes='a, b', SpecCode=1.0) for r in FISH])
    a, b = read_fishnet(root, csv='test.csv'), read_fishnet(wide, csv='test.csv')
    assert a.table.drop(columns='path').equals(b.table.drop(columns='path'))


def test_cub_every_line_with_an_extra_field(cub):
    "Before: pandas took the first field as the index and shifted the columns: ids became file names, silently."
    (cub/'images.txt').write_text(''.join(f'{i} {f} extra\n' for i, f in enumerate(CUB_FILES, 1)))
    raises(lambda: read_cub200(cub), 'line 1 of', 'has 3 fields', "'id file' separated by spaces")


def test_cub_line_with_a_missing_field(cub):
    (cub/'image_class_labels.txt').write_text('1 1\n2\n3 2\n4 3\n')
    raises(lambda: read_cub200(cub), 'line 2 of', 'has 1 field ', "'id label'")


def test_cub_non_integer_id(cub):
    (cub/'images.txt').write_text((cub/'images.txt').read_text().replace('3 002', 'x3 002'))
    raises(lambda: read_cub200(cub), 'images.txt line 3', "id is 'x3', not a whole number", 'fix the line')


def test_cub_latin1_class_names(cub):
    (cub/'classes.txt').write_bytes('1 001.Black_footed_Albatross\n2 002.Laysan_Albatross\n3 003.Pétrel\n'.encode('latin-1'))
    raises(lambda: read_cub200(cub), 'classes.txt is not UTF-8 text', "b'\\xe9'", 'save it as UTF-8')


def test_fishnet_utf16_csv(tmp_path):
    root = write_fish(tmp_path, images=False)
    (root/'test.csv').write_bytes((root/'test.csv').read_text().encode('utf-16'))
    raises(lambda: read_fishnet(root, csv='test.csv', check_files=False), 'test.csv is not UTF-8 text', 'save it as UTF-8')


def test_cub_byte_order_mark_and_crlf_lines_read_the_same(cub, tmp_path):
    want = read_cub200(cub).table.drop(columns='path')
    for f in cub.glob('*.txt'): f.write_bytes(b'\xef\xbb\xbf' + f.read_bytes().replace(b'\n', b'\r\n'))
    got = read_cub200(cub).table.drop(columns='path')
    assert got.equals(want), (got, want)


def test_cub_non_numeric_bounding_box(cub):
    (cub/'bounding_boxes.txt').write_text('1 1 2 3 4\n2 1 2 3 4\n3 1 2 three 4\n4 1 2 3 4\n')
    raises(lambda: read_cub200(cub), 'bounding_boxes.txt line 3', "w is 'three', not a number")


# ================================================================ inconsistent hierarchies

def test_genus_under_two_families_is_counted_and_warned(tmp_path):
    rows = FISH + [dict(FISH[2], species='Naso minor', image='nm.jpg', Genus='Naso')]      # Naso in Acanthuridae and Sparidae
    root = write_fish(tmp_path, rows)
    r = read_fishnet(root, csv='test.csv')
    assert r.report['multi_parent'] == {'genus': 1} and r.report['multi_parent_examples']['genus'] == {'Naso': ['Acanthuridae', 'Sparidae']}
    ds, msg = warns(lambda: TaxaImageDataset(r, size=16, check='header'), "genus 'Naso'", "homonyms='error'", cat=TaxonomyWarning)
    assert ds.taxonomy.n_taxa('genus') == 4                                            # kept apart: two genera named Naso
    raises(lambda: TaxaImageDataset(r, size=16, check='header', homonyms='error'), "genus 'Naso' occurs under different parents",
           'Acanthuridae', 'Sparidae', 'fix the table', exc=TaxonomyError)


def test_missing_rank_in_the_middle_is_rejected_or_counted(tmp_path):
    rows = [dict(r) for r in FISH]; rows[1]['Family'] = None
    root = write_fish(tmp_path, rows)
    r = read_fishnet(root, csv='test.csv')
    assert r.report['missing_per_rank']['family'] == 1 and r.report['n_incomplete'] == 1
    raises(lambda: Taxonomy.from_table(r.table, ranks=r.ranks), 'family', "missing=", exc=TaxonomyError)


# ================================================================ corrupt images

def test_corrupt_images_are_left_out_and_counted(tmp_path, shared_data):
    "Real CUB images (copied), plus a truncated JPEG, a zero-byte file and a text file named .jpg."
    src = shared_data/'cub200'/'CUB_200_2011'/'images'/'001.Black_footed_Albatross'
    if not src.is_dir(): pytest.skip(f'no CUB-200 images under {shared_data}')
    good = sorted(src.glob('*.jpg'))[:3]
    root = tmp_path/'birds'; (root/'Black footed Albatross').mkdir(parents=True)
    for f in good: shutil.copy(f, root/'Black footed Albatross'/f.name)
    (root/'Black footed Albatross'/'cut.jpg').write_bytes(good[0].read_bytes()[:300])
    (root/'Black footed Albatross'/'empty.jpg').write_bytes(b'')
    (root/'Black footed Albatross'/'text.jpg').write_text('not an image')
    r = read_image_folder(root)
    assert len(r) == 6
    ds, msg = warns(lambda: TaxaImageDataset(r, size=16, check='decode'), 'left out 3 of 6 images', '3 unreadable')
    assert len(ds) == 3 and ds.report['images']['n_unreadable'] == 3
    for f in ('cut.jpg', 'empty.jpg', 'text.jpg'): (root/'Black footed Albatross'/f).rename(root/'Black footed Albatross'/f'x{f}')
    for f in good: (root/'Black footed Albatross'/f.name).write_bytes(b'\xff\xd8\xff\xe0 broken')
    raises(lambda: TaxaImageDataset(read_image_folder(root), size=16), 'none of the 6 images can be used', 'Check the dataset root')


def test_reader_case_insensitive_name_and_unknown_name(cub):
    assert len(read_dataset('CUB200', cub)) == 4
    raises(lambda: read_dataset('cub-200', cub), "unknown dataset 'cub-200'", 'readers: fishnet, inat2021')


# ================================================================ finding 5: bad paths (exit 2, one sentence, nothing made)

@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    "A cache folder with an entry, an earlier run folder and a file: their snapshot must not change."
    cache = tmp_path/'cache'; (cache/'synth').mkdir(parents=True); (cache/'synth'/'entry.pt').write_bytes(b'x' * 10)
    runs = tmp_path/'runs'; (runs/'20260101-000000').mkdir(parents=True); (runs/'20260101-000000'/'report.md').write_text('earlier')
    (tmp_path/'afile').write_text('a file, not a folder')
    monkeypatch.setenv('TAXANB_CACHE', str(cache)); monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    yield tmp_path
    assert snapshot(tmp_path) == before, 'an earlier run, the cache or the folder was changed, or something was left behind'


def test_usable_dir_names_the_path_and_creates_nothing(sandbox):
    assert usable_dir(sandbox/'new'/'run') == sandbox/'new'/'run' and not (sandbox/'new').exists()
    raises(lambda: usable_dir(sandbox/'afile'/'x', '--out', 'pass another'), f"--out {sandbox/'afile'/'x'} cannot be created",
           f"{sandbox/'afile'} is a file", 'pass another', exc=RunError)


@pytest.mark.skipif(not Path('/sys').is_dir(), reason='needs /sys (Linux)')
def test_reproduce_out_in_sys_is_exit_2_not_a_permission_traceback(sandbox):
    r = taxanb('reproduce', '--out', '/sys/x')
    assert r.returncode == 2, r.stderr
    one_line(r.stderr, '--out /sys/x cannot be created', 'pass a new folder you can write to')
    assert not list(Path('runs').glob('smoke'))


@pytest.mark.skipif(not Path('/sys').is_dir(), reason='needs /sys (Linux)')
def test_demo_out_dir_in_sys(sandbox, capsys):
    rc, err = cli_run(capsys, 'demo', '--out-dir', '/sys/x', '--preset', 'smoke', '--no-progress')
    assert rc == 2; one_line(err, '/sys/x cannot be created', 'pass a folder you can write to')


def test_demo_cache_dir_that_is_a_file_leaves_no_run_folder(sandbox, capsys):
    "Before: NotADirectoryError with exit 1, and an empty run folder left behind."
    rc, err = cli_run(capsys, 'demo', '--cache-dir', 'afile', '--out-dir', 'runs/demo', '--preset', 'smoke', '--no-progress')
    assert rc == 2; one_line(err, f"the cache folder {sandbox/'afile'} is a file, not a folder", 'pass --cache-dir DIR')
    assert not (sandbox/'runs'/'demo').exists()


def test_demo_out_dir_below_a_file(sandbox, capsys):
    rc, err = cli_run(capsys, 'demo', '--out-dir', 'afile/runs', '--preset', 'smoke', '--no-progress')
    assert rc == 2; one_line(err, f"{sandbox/'afile'/'runs'} cannot be created", 'is a file', 'pass a folder you can write to')


def test_reproduce_cache_dir_that_is_a_file(sandbox, capsys):
    rc, err = cli_run(capsys, 'reproduce', '--cache-dir', 'afile', '--out', 'runs/new')
    assert rc == 2; one_line(err, 'cache folder (--cache-dir)', 'is a file, not a folder', 'pass --cache-dir DIR')


def test_reproduce_out_that_is_a_file(sandbox, capsys):
    rc, err = cli_run(capsys, 'reproduce', '--out', 'afile')
    assert rc == 2; one_line(err, f"--out {sandbox/'afile'} is a file, not a folder", 'pass a new folder')


def test_train_level_notebook_with_run_dir_a_file(tmp_path):
    "Before: FileExistsError from mkdir deep in train_level; now a RunError naming run_dir and the fix."
    f = tmp_path/'afile'; f.write_text('x')
    r = subprocess.run([str(BIN/'papermill'), str(ROOT/'nbs'/'train_level.ipynb'), str(tmp_path/'out.ipynb'), '-p', 'run_dir', str(f),
                        '--cwd', str(ROOT), '--no-progress-bar'], capture_output=True, text=True, timeout=600)
    assert r.returncode != 0
    r.stderr = re.sub(r'\x1b\[[0-9;]*[A-Za-z]', '', r.stderr)
    assert 'RunError' in r.stderr and f'run_dir {f} is a file, not a folder' in r.stderr and 'pass a new folder' in r.stderr, r.stderr[-3000:]
    assert 'FileExistsError' not in r.stderr and f.read_text() == 'x'
    saw('clear error')


# ================================================================ finding 8: validation gaps

def test_demo_negative_seed_names_the_seed_and_leaves_nothing(sandbox, capsys):
    rc, err = cli_run(capsys, 'demo', '--seed', '-5', '--out-dir', 'runs/demo', '--preset', 'smoke', '--no-progress')
    assert rc == 2; one_line(err, 'the world seed must be a whole number >= 0', '--seed 0', 'seed=-5')
    assert not (sandbox/'runs'/'demo').exists()


@pytest.mark.parametrize('seeds, needles', [('-1', ['seed -1 is negative', 'e.g. --seeds 0,1,2']),
                                            ('0,0', ['seed 0 is listed 2 times in --seeds 0,0', 'list each seed once, e.g. --seeds 0']),
                                            ('1,2,1', ['seed 1 is listed 2 times', 'e.g. --seeds 1,2'])])
def test_reproduce_bad_seeds(sandbox, capsys, seeds, needles):
    rc, err = cli_run(capsys, 'reproduce', '--seeds', seeds, '--out', 'runs/new')
    assert rc == 2; one_line(err, *needles)


def test_reproduce_only_and_skip_the_same_notebook(sandbox, capsys):
    "Before: exit 0 having run nothing."
    rc, err = cli_run(capsys, 'reproduce', '--only', 'taxa_models', '--skip', 'taxa_models', '--out', 'runs/new')
    assert rc == 2; one_line(err, 'nothing to run: --skip taxa_models leaves out every notebook that --only taxa_models selects',
                             'take them out of --skip')


def test_reproduce_data_root_with_the_default_dataset(sandbox, capsys):
    "Before: dataset 'synth' has no reader."
    rc, err = cli_run(capsys, 'reproduce', '--data-root', str(sandbox), '--out', 'runs/new')
    assert rc == 2; one_line(err, f"--data-root {sandbox} was given, but the dataset is synth (the smoke preset's default)",
                             'give --dataset NAME with one of the readers (fishnet, inat2021, bioscan1m, oxford102, cub200, folder)')


def test_reproduce_dataset_in_any_case(sandbox, capsys):
    "Before: --dataset CUB200 was rejected though read_dataset accepts any case."
    assert check_inputs('cpu', dataset='CUB200', data_root=sandbox)['dataset'] == 'cub200'
    rc, err = cli_run(capsys, 'reproduce', '--dataset', 'CUB200', '--data-root', str(sandbox), '--out', 'afile')   # stops at --out
    assert rc == 2 and 'has no reader' not in err; one_line(err, 'is a file, not a folder')
    rc, err = cli_run(capsys, 'reproduce', '--dataset', 'birds', '--data-root', str(sandbox), '--out', 'runs/new')
    assert rc == 2; one_line(err, "--dataset 'birds' has no reader", 'give one of fishnet')


# ================================================================ finding 2: a killed reproduce, --resume

PARAMS = ("preset = 'smoke'\ndataset = None\ndata_root = None\nbackbone = None\nseeds = None\n"
          "out_dir = None\nmodels_dir = None\ncache_dir = None")
TABLE = """
(out/'table.md').write_text('## ' + out.name + '\\n\\n| a | b |\\n|---|---|\\n| 1 | 2 |\\n')
(out/'metrics.json').write_text(json.dumps(dict(preset=preset)))"""
TRAIN = """import json, os
from pathlib import Path
out, models = Path(out_dir), Path(models_dir); out.mkdir(parents=True, exist_ok=True); models.mkdir(parents=True, exist_ok=True)
if not (models/'model.txt').exists():                  # trained once; reused when it exists (as taxanb.experiments.trained does)
    with open(models/'trainings.log', 'a') as f: f.write('trained\\n')
    (models/'model.txt').write_text('weights')""" + TABLE
SLOW = """import json, os, time
from pathlib import Path
out = Path(out_dir); out.mkdir(parents=True, exist_ok=True)
(out/'kernel.pid').write_text(str(os.getpid())); (out/'partial.txt').write_text('half done')
flag = Path(os.environ['TAXANB_TEST_FLAG'])
t = time.time()
while flag.exists() and time.time() - t < 300: time.sleep(0.2)   # stays 'running' until the test kills the run
assert (Path(models_dir)/'model.txt').exists()""" + TABLE
AFTER = """import json
from pathlib import Path
out = Path(out_dir); out.mkdir(parents=True, exist_ok=True)""" + TABLE
DRIVER = """import sys
from taxanb import cli, reproduce as rp
from taxanb.reproduce import Notebook
rp.NOTEBOOKS = {n.name: n for n in [Notebook('train', 'trains the models'), Notebook('slow', 'needs train', ('train',)),
                                    Notebook('after', 'needs train', ('train',))]}
sys.exit(cli.main(sys.argv[1:]))
"""


def notebook(path, body):
    import nbformat
    cell = nbformat.v4.new_code_cell(PARAMS); cell.metadata['tags'] = ['parameters']
    nbformat.write(nbformat.v4.new_notebook(cells=[cell, nbformat.v4.new_code_cell(body)], metadata=dict(
        kernelspec=dict(name='python3', display_name='Python 3', language='python'))), str(path))


@pytest.fixture
def fake_registry(tmp_path, monkeypatch):
    nbs = tmp_path/'nbs'; nbs.mkdir()
    for n, body in (('train', TRAIN), ('slow', SLOW), ('after', AFTER)): notebook(nbs/f'{n}.ipynb', body)
    reg = {n.name: n for n in [Notebook('train', 'trains the models'), Notebook('slow', 'needs train', ('train',)),
                               Notebook('after', 'needs train', ('train',))]}
    monkeypatch.setattr(rp, 'NOTEBOOKS', reg)
    flag = tmp_path/'SLEEP'; monkeypatch.setenv('TAXANB_TEST_FLAG', str(flag))
    (tmp_path/'driver.py').write_text(DRIVER)
    return nbs


def _gone(pid, wait=20.0):
    "Wait for process `pid` (the killed run's kernel, which our own test started) to exit; kill it by id if it does not."
    t = time.time()
    while time.time() - t < wait:
        try: os.kill(pid, 0)
        except ProcessLookupError: return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)


def test_kill_9_then_resume(fake_registry, tmp_path, capsys):
    run, flag = tmp_path/'X', tmp_path/'SLEEP'
    flag.write_text('sleep')
    p = subprocess.Popen([sys.executable, str(tmp_path/'driver.py'), 'reproduce', '--preset', 'smoke', '--out', str(run),
                          '--nbs-dir', str(fake_registry), '--no-progress'], cwd=tmp_path, start_new_session=True,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    t = time.time()
    try:
        while not (run/'slow'/'partial.txt').exists():
            assert p.poll() is None, p.stdout.read()
            assert time.time() - t < 300, 'the slow notebook did not start'
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        os.killpg(p.pid, signal.SIGKILL); p.wait()
    _gone(int((run/'slow'/'kernel.pid').read_text()))
    # what the kill left: a report that says so, with the command that continues it
    rep = json.loads((run/'report.json').read_text())
    assert [(n['name'], n['status']) for n in rep['notebooks']] == [('train', 'ok'), ('slow', 'running'), ('after', 'pending')]
    text = (run/'REPORT.md').read_text()
    assert '**This run has not finished**' in text and 'while `slow` ran' in text and '1 running, 1 pending' in text
    assert f"--out {run}" in text and "--resume`" in text and '## slow: needs train (running)' in text
    # without --resume: refused, naming --resume; nothing changed
    before = snapshot(run)
    rc, err = cli_run(capsys, 'reproduce', '--preset', 'smoke', '--out', run, '--nbs-dir', fake_registry, '--no-progress')
    assert rc == 2; one_line(err, f'--out {run} exists and is not an empty folder', 'add --resume')
    assert snapshot(run) == before
    # --resume: the finished notebook and the model are kept, the interrupted one runs again, the report says so
    flag.unlink()
    train_mtime = (run/'train'/'metrics.json').stat().st_mtime_ns
    rc, err = cli_run(capsys, 'reproduce', '--preset', 'smoke', '--out', run, '--nbs-dir', fake_registry, '--no-progress', '--resume')
    assert rc == 0, err
    rep = json.loads((run/'report.json').read_text())
    assert [(n['name'], n['status'], n.get('kept', False)) for n in rep['notebooks']] == [
        ('train', 'ok', True), ('slow', 'ok', False), ('after', 'ok', False)]
    assert rep['finished'] is True and [a['attempt'] for a in rep['attempts']] == [1, 2]
    assert (run/'models'/'trainings.log').read_text() == 'trained\n'              # the model was reused, not trained again
    assert (run/'train'/'metrics.json').stat().st_mtime_ns == train_mtime         # the finished notebook was kept as it was
    assert (run/'previous_attempts'/'slow-attempt1'/'partial.txt').read_text() == 'half done'
    assert (run/'slow'/'metrics.json').exists() and not (run/rp.LOCK).exists()
    text = (run/'REPORT.md').read_text()
    assert 'has not finished' not in text and 'attempts: 2 (continued with --resume)' in text
    assert 'kept from earlier attempts: train' in text and 'it was interrupted in attempt 1' in text and '3 ok, 0 FAILED' in text
    saw('fault survived')


def test_resume_an_old_style_report_and_refuse_other_settings(fake_registry, tmp_path, capsys):
    "A report written before --resume existed (the killed notebook shows 'pending', no attempts), and settings that differ."
    run = reproduce('smoke', out=tmp_path/'X', only='train', nbs_dir=fake_registry, progress=False)
    rep = json.loads((run/'report.json').read_text())
    for k in ('attempts', 'finished'): rep.pop(k)
    rep['notebooks'].append(dict(name='after', title='needs train', needs=['train'], folder='after', status='pending', seconds=0.0,
                                 error=None, reason=None))
    (run/'report.json').write_text(json.dumps(rep)); (run/'after').mkdir(); (run/'after'/'half.txt').write_text('x')
    before = snapshot(run)
    rc, err = cli_run(capsys, 'reproduce', '--preset', 'cpu', '--out', run, '--nbs-dir', fake_registry, '--resume')
    assert rc == 2; one_line(err, "was started with other settings: preset 'smoke' (now 'cpu')", 'continue it with its own settings')
    rc, err = cli_run(capsys, 'reproduce', '--preset', 'smoke', '--seeds', '3', '--out', run, '--nbs-dir', fake_registry, '--resume')
    assert rc == 2; one_line(err, 'seeds [0] (now [3])')
    assert snapshot(run) == before
    rc, err = cli_run(capsys, 'reproduce', '--preset', 'smoke', '--only', 'after', '--out', run, '--nbs-dir', fake_registry,
                      '--resume', '--no-progress')
    assert rc == 0, err
    rep = json.loads((run/'report.json').read_text())
    assert [(n['name'], n['status'], n.get('kept', False)) for n in rep['notebooks']] == [('train', 'ok', True), ('after', 'ok', False)]
    assert (run/'previous_attempts'/'after-attempt1'/'half.txt').exists() and (run/'models'/'trainings.log').read_text() == 'trained\n'


def test_resume_refusals(fake_registry, tmp_path, capsys):
    (tmp_path/'other').mkdir(); (tmp_path/'other'/'notes.txt').write_text('mine')
    rc, err = cli_run(capsys, 'reproduce', '--out', tmp_path/'other', '--resume', '--nbs-dir', fake_registry)
    assert rc == 2; one_line(err, 'holds no report.json', 'pass the folder of an interrupted run')
    rc, err = cli_run(capsys, 'reproduce', '--resume', '--nbs-dir', fake_registry)
    assert rc == 2; one_line(err, '--resume needs --out', 'the folder of the run to continue')
    run = reproduce('smoke', out=tmp_path/'X', only='train', nbs_dir=fake_registry, progress=False)
    (run/rp.LOCK).write_text(json.dumps(dict(pid=os.getpid(), host=socket.gethostname(), started='now')))   # a live pid
    rc, err = cli_run(capsys, 'reproduce', '--out', run, '--resume', '--nbs-dir', fake_registry)
    assert rc == 2; one_line(err, f'is still running in {run}', 'wait for it or stop it')
    assert (tmp_path/'other'/'notes.txt').read_text() == 'mine'


# ================================================================ finding 6: a run folder reused with other settings

from taxanb.train import load_stage, train_level                                  # noqa: E402

TL = dict(preset='smoke', progress=False, evaluate=False, cache_latents=False)


@pytest.fixture(scope='module')
def two_stages(tmp_path_factory):
    "A run folder with the kingdom and phylum stages (seed 0); tests work on copies."
    run = tmp_path_factory.mktemp('run2')/'R'
    for lv in ('kingdom', 'phylum'): train_level(lv, run, **TL)
    return run


@pytest.fixture
def run2(two_stages, tmp_path):
    run = tmp_path/'R'; shutil.copytree(two_stages, run)
    return run


def test_another_seed_in_a_run_folder_is_refused_and_changes_nothing(run2):
    "Before: -p seed 7 -p steps 3 trained the family stage silently; config.json still said seed 0 and stage.json had no seed."
    before = snapshot(run2)
    raises(lambda: train_level('class', run2, seed=7, steps=3, **TL), f'{run2} was made with other settings: seed 0 (yours 7)',
           "use the run's settings or a new run_dir", "allow_changes=['seed'] (-p allow_changes seed)", exc=RunError)
    assert snapshot(run2) == before


@pytest.mark.parametrize('change, needle', [(dict(preset='cpu'), "preset 'smoke' (yours 'cpu')"), (dict(lora_rank=8), 'lora_rank 4 (yours 8)'),
                                            (dict(p_uncond=0.2), 'p_uncond 0.1 (yours 0.2)'), (dict(base_steps=3), 'base_steps 6 (yours 3)')])
def test_settings_that_fix_the_base_or_the_weights_are_refused(run2, change, needle):
    msg = raises(lambda: train_level('class', run2, **(TL | change)), 'was made with other settings', needle, 'a new run_dir', exc=RunError)
    assert 'allow_changes' not in msg                                             # no flag lets these change


def test_allowed_seed_change_and_per_stage_settings_are_recorded(run2):
    stage = train_level('class', run2, seed=7, steps=3, lr=2e-3, allow_changes='seed', **TL)
    info = json.loads((stage/'stage.json').read_text())
    assert info['changed_settings'] == {'seed': {'run': 0, 'stage': 7}}
    assert (info['settings']['seed'], info['settings']['steps'], info['settings']['lr'], info['steps']) == (7, 3, 2e-3, 3)
    cfg = json.loads((run2/'config.json').read_text())
    assert cfg['seed'] == 0 and cfg['steps'] == 4                                 # the run's record is not rewritten
    assert json.loads((run2/'stage-01-phylum'/'stage.json').read_text())['settings']['seed'] == 0


@pytest.mark.parametrize('allow, needle', [('form', "allow_changes ['form']"), ('steps', "allow_changes ['steps']"), ('[seed, colour]', "['colour']")])
def test_allow_changes_names_only_what_may_change(run2, allow, needle):
    raises(lambda: train_level('class', run2, seed=7, allow_changes=allow, **TL), needle, 'may change only seed, train_lora_after_first',
           'may differ per stage without asking', exc=RunError)


def test_train_level_notebook_with_another_seed(run2, tmp_path):
    "The issue's repro through papermill: the notebook fails with the RunError, the run folder unchanged."
    before = snapshot(run2)
    r = subprocess.run([str(BIN/'papermill'), str(ROOT/'nbs'/'train_level.ipynb'), str(tmp_path/'out.ipynb'), '-p', 'run_dir', str(run2),
                        '-p', 'level', 'class', '-p', 'seed', '7', '-p', 'steps', '3', '--cwd', str(ROOT), '--no-progress-bar'],
                       capture_output=True, text=True, timeout=600)
    err = re.sub(r'\x1b\[[0-9;]*[A-Za-z]', '', r.stderr)
    assert r.returncode != 0 and 'RunError' in err and 'seed 0 (yours 7)' in err and '-p allow_changes seed' in err, err[-3000:]
    assert snapshot(run2) == before
    saw('clear error')


def test_broken_run_config_names_the_file(run2):
    (run2/'config.json').write_text('{"dataset": "synth", ')
    raises(lambda: train_level('class', run2, **TL), f"{run2/'config.json'} is damaged (JSONDecodeError", 'the settings of this run folder',
           'restore it from a copy, or pass a new run_dir', exc=RunError)


def test_damaged_previous_stage_is_named_before_training(run2):
    os.truncate(run2/'stage-01-phylum'/'lora'/'pytorch_lora_weights.safetensors', 500)
    raises(lambda: train_level('class', run2, **TL), f"the stage folder {run2/'stage-01-phylum'} is damaged",
           'lora/pytorch_lora_weights.safetensors', "level 'class' starts from it", exc=RunError)
    assert not (run2/'stage-02-class').exists() and not (run2/'checkpoints'/'stage-02-class').exists()


# ================================================================ finding 7: loader faults

def test_stage_copied_out_of_its_run_folder_loads(run2, tmp_path):
    "Before: FileNotFoundError for ../config.json. A stage now keeps its own settings in stage.json."
    alone = tmp_path/'alone'/'stage-01-phylum'; shutil.copytree(run2/'stage-01-phylum', alone)
    model, bb, info = load_stage(alone)
    assert info['level'] == 'phylum' and model.conditioner is not None


def test_old_style_stage_copied_out_names_the_missing_config(run2, tmp_path):
    "A stage.json written before stages kept their settings needs its run's config.json: the error says so and how to fix it."
    alone = tmp_path/'alone'/'stage-01-phylum'; shutil.copytree(run2/'stage-01-phylum', alone)
    info = json.loads((alone/'stage.json').read_text()); info.pop('settings'); (alone/'stage.json').write_text(json.dumps(info))
    raises(lambda: load_stage(alone), f"{tmp_path/'alone'/'config.json'} is missing", 'predates stages keeping their own',
           'keep a stage folder inside its run folder (copy the whole run folder)', exc=RunError)
    (tmp_path/'alone'/'config.json').write_text((run2/'config.json').read_text())  # put back beside it: loads
    assert load_stage(alone)[2]['level'] == 'phylum'


def test_broken_stage_json(run2):
    f = run2/'stage-01-phylum'/'stage.json'; f.write_text(f.read_text()[:40])
    raises(lambda: load_stage(f.parent), f'{f} is damaged (JSONDecodeError', 'the record of this stage', 'restore it from a copy, or train the stage again',
           exc=RunError)


@pytest.mark.parametrize('where', ['config.json', 'stage.json'])
def test_unknown_setting_in_the_saved_settings(run2, where):
    "Before: TypeError: TrainConfig.__init__() got an unexpected keyword argument."
    stage = run2/'stage-01-phylum'
    if where == 'config.json':
        info = json.loads((stage/'stage.json').read_text()); info.pop('settings'); (stage/'stage.json').write_text(json.dumps(info))
        f = run2/'config.json'; c = json.loads(f.read_text()); c['colour'] = 'red'
    else:
        f = stage/'stage.json'; c = json.loads(f.read_text()); c['settings']['colour'] = 'red'
    f.write_text(json.dumps(c))
    raises(lambda: load_stage(stage), f"{f} holds settings this taxanb does not know: ['colour']", 'remove them, or use the version that wrote it',
           exc=RunError)


def test_setting_of_the_wrong_kind_in_config_json(run2):
    stage = run2/'stage-01-phylum'
    f = stage/'stage.json'; c = json.loads(f.read_text()); c['settings']['steps'] = 'many'; f.write_text(json.dumps(c))
    raises(lambda: load_stage(stage), f'{f} holds a setting of the wrong kind', "'many'", exc=RunError)


def test_damaged_stage_weights_name_the_file(run2):
    os.truncate(run2/'stage-01-phylum'/'conditioner'/'model.safetensors', 100)
    raises(lambda: load_stage(run2/'stage-01-phylum'), 'is damaged (conditioner/model.safetensors', 'restore it from a copy, or train the stage again',
           exc=RunError)


def test_tiny_base_that_passes_the_checks_but_does_not_load(run2, tmp_path, monkeypatch):
    "A base whose files are whole but whose UNet config no longer fits its weights: a RunError naming the folder and the fix."
    from taxanb.train import TrainConfig, data_key, load_data, tiny_base
    cache = tmp_path/'cache'; shutil.copytree(os.environ['TAXANB_CACHE'], cache, ignore=shutil.ignore_patterns('*.lock'))
    cfg = TrainConfig(preset='smoke'); data, _, _ = load_data(cfg, cache)
    base = tiny_base(cfg, data, data_key(cfg, data), cache_dir=cache, progress=False)
    f = base/'unet'/'config.json'; text = f.read_text(); assert '"in_channels": 4' in text
    f.write_text(text.replace('"in_channels": 4', '"in_channels": 7'))          # same size: the file list still matches
    stage = run2/'stage-01-phylum'; rec = stage/'stage.json'; info = json.loads(rec.read_text())
    info['base'] = str(base); rec.write_text(json.dumps(info))                  # the stage records this (damaged) base
    raises(lambda: load_stage(stage, cache_dir=cache), f'the tiny base {base} that stage-01-phylum adapts does not load',
           'delete that folder and load the stage again to rebuild it', exc=RunError)
    info['base'] = str(tmp_path/'gone'/base.name); rec.write_text(json.dumps(info))   # the recorded base is gone: rebuilt from the cache
    raises(lambda: load_stage(stage, cache_dir=cache), f'the cached tiny base {base} does not load',
           'delete that folder and run again to rebuild it', exc=RunError)


# ================================================================ also noticed: out_folder, preset_seeds, dataset names

def test_out_folder_that_is_a_file_or_below_one(tmp_path):
    "Before: out_folder mkdir'ed without the usable_dir check (FileExistsError / NotADirectoryError)."
    from taxanb.experiments import out_folder
    (tmp_path/'afile').write_text('x'); before = snapshot(tmp_path)
    raises(lambda: out_folder('taxa_table1', 'smoke', tmp_path/'afile'), f"out_dir {tmp_path/'afile'} is a file, not a folder",
           'pass a new folder you can write to', exc=RunError)
    raises(lambda: out_folder('taxa_table1', 'smoke', tmp_path/'afile'/'x'), 'cannot be created', 'is a file', exc=RunError)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize('seeds, needles', [(-1, ['seed -1 is negative', "-p seeds '[0, 1, 2]'"]), ('[0, -2]', ['seed -2 is negative']),
                                            ('[0, 0]', ['seed 0 is listed 2 times in seeds [0, 0]', "list each seed once, e.g. -p seeds '[0]'"]),
                                            ([1, 2, 1], ['seed 1 is listed 2 times', "-p seeds '[1, 2]'"])])
def test_preset_seeds_negative_or_repeated(seeds, needles):
    "Before: papermill -p seeds '[0, 0]' or -1 was accepted (the CLI's --seeds refused them)."
    from taxanb.experiments import preset_seeds
    raises(lambda: preset_seeds('cpu', seeds), *needles, exc=RunError)


def test_train_dataset_name_in_any_case(cub):
    "Before: load_data rejected dataset='CUB200' though read_dataset accepts any case."
    from taxanb.train import TrainConfig, load_data
    cfg = TrainConfig(dataset='CUB200', data_root=str(cub), preset='smoke')
    ds, tax, world = load_data(cfg)
    assert cfg.dataset == 'cub200' and len(ds) == 2 and world is None     # its 2 training images: the 2 test images are the evaluation reference
    raises(lambda: load_data(TrainConfig(dataset='Birds', data_root=str(cub), preset='smoke')), "dataset='birds'", "use 'synth' or one of",
           exc=RunError)
