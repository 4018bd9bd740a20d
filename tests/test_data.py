"""taxanb.data: every reader on fixtures written in the real file formats, bad input, image checks,
transforms, the dataset, the sampler, the generative split; and the real files when present."""
import json, os, time, warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io
import torch
from PIL import Image

from taxanb.data import (DataError, DataWarning, TaxaRecords, READERS, read_dataset, read_fishnet, read_inat2021,
                         read_bioscan1m, read_oxford102, read_cub200, read_image_folder, image_transform, to_rgb,
                         load_rgb, check_images, TaxaImageDataset, class_balanced_sampler, generative_split)
from taxanb.taxonomy import RANKS, Taxonomy


# ---------------------------------------------------------------- fixture writers (real formats)

def img(path, size=(40, 30), color=(200, 30, 30), mode='RGB', **save):
    path = Path(path); path.parent.mkdir(parents=True, exist_ok=True)
    Image.new('RGB', size, color).convert(mode).save(path, **save)
    return path


FISH_ROWS = [
    dict(species='Zebrasoma flavescens', image='https://www.fishbase.se/images/species/Zefla_u2.jpg', SpecCode=1.0,
         Genus='Zebrasoma', Subfamily=None, Family='Acanthuridae', Order='Acanthuriformes', Class='Actinopteri',
         SuperClass=None, source='fishbase', Folder='Acanthuridae', Troph=2.0),
    dict(species='Naso  fageni ', image='https://www.fishbase.se/images/species/Nafag_u0.jpg', SpecCode=2.0,
         Genus='Naso', Subfamily=None, Family='Acanthuridae', Order='Acanthuriformes', Class='Actinopteri',
         SuperClass=None, source='fishbase', Folder='Acanthuridae', Troph=2.1),
    dict(species=None, image='ce230657-448a-491b-ad57-4522e753d738.jpg', SpecCode=None, Genus='Diplodus', Subfamily=None,
         Family='Sparidae', Order='Perciformes', Class='Actinopterygii', SuperClass=None, source='inat', Folder='Sparidae', Troph=3.5),
    dict(species=None, image='03bbd564-5501-471b-85d4-ddd84fa2d66b.jpg', SpecCode=None, Genus='Pogonias', Subfamily=None,
         Family='Sciaenidae', Order='Perciformes', Class='Actinopterygii', SuperClass=None, source='inat', Folder='Sciaenidae', Troph=3.4),
    dict(species='Pennahia aneus', image='https://www.fishbase.se/images/species/Peane_u0.jpg', SpecCode=3.0, Genus=None,
         Subfamily=None, Family='Sciaenidae', Order='Perciformes', Class=None, SuperClass=None, source='fishbase', Folder='Sciaenidae', Troph=3.0),
]


def write_fishnet(root, rows=FISH_ROWS, name='test.csv', images=True, skip=()):
    root = Path(root); root.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(rows)
    df.insert(0, 'Unnamed: 0', range(len(df)))
    df.to_csv(root/name)                       # index=True: the leading unnamed column of the real files
    if images:
        for i, r in enumerate(rows):
            if i not in skip: img(root/'Image_Library'/r['Folder']/r['image'].split('/')[-1])
    return root


INAT_CATS = [
    ('Animalia', 'Chordata', 'Actinopterygii', 'Perciformes', 'Pomacentridae', 'Abudefduf', 'saxatilis'),
    ('Animalia', 'Chordata', 'Actinopterygii', 'Perciformes', 'Pomacentridae', 'Abudefduf', 'vaigiensis'),
    ('Plantae', 'Tracheophyta', 'Magnoliopsida', 'Asterales', 'Asteraceae', 'Bellis', 'perennis'),
]


def write_inat(root, split='val', n=6, images=True):
    root = Path(root); root.mkdir(parents=True, exist_ok=True)
    cats = []
    for i, (k, p, c, o, f, g, e) in enumerate(INAT_CATS):
        cats.append({'id': i, 'name': f'{g} {e}', 'common_name': 'x', 'supercategory': 'y', 'kingdom': k, 'phylum': p,
                     'class': c, 'order': o, 'family': f, 'genus': g, 'specific_epithet': e,
                     'image_dir_name': f'{i:05d}_{k}_{p}_{c}_{o}_{f}_{g}_{e}'})
    ims = [{'id': 1000 * (split == 'train') + i, 'width': 40, 'height': 30, 'license': 0, 'rights_holder': 'r', 'date': '2020',
            'latitude': 0.0, 'longitude': 0.0, 'location_uncertainty': 5,
            'file_name': f"{split}/{cats[i % 3]['image_dir_name']}/{i:08d}-aaaa.jpg"} for i in range(n)]
    anns = [{'id': i, 'image_id': im['id'], 'category_id': i % 3} for i, im in enumerate(ims)]
    (root/f'{split}.json').write_text(json.dumps({'info': {'year': 2021}, 'images': ims, 'categories': cats,
                                                  'annotations': anns, 'licenses': []}))
    if images:
        for im in ims: img(root/im['file_name'])
    return root


BIO_COLS = ('processid phylum class order family subfamily genus species uri orgpic_id image_name sampleid image_file '
            'licence licence_holder depository primary_database').split()
BIO_LIN = [('Arthropoda', 'Insecta', 'Coleoptera', 'Carabidae', '', '', ''),
           ('Arthropoda', 'Insecta', 'Coleoptera', 'Dytiscidae', 'Hydroporinae', 'Hydroporus', 'Hydroporus striola'),
           ('Arthropoda', 'Insecta', 'Coleoptera', 'Elmidae', '', 'Esolus', 'Esolus angustatus'),
           ('Arthropoda', 'Insecta', 'Diptera', 'Cecidomyiidae', '', '', ''),
           ('Arthropoda', 'Insecta', 'Coleoptera', 'Chrysomelidae', 'Galerucinae', 'Longitarsus', 'Longitarsus sp. 55'),
           ('Arthropoda', 'Insecta', 'Diptera', '', '', '', '')]


def write_bioscan(root, extra='chunk_number', name='BIOSCAN_Insect_Dataset_metadata.tsv', images=True):
    root = Path(root); root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, lin in enumerate(BIO_LIN):
        r = dict(zip(BIO_COLS, (f'PLECF{i}-20', *lin, 'BOLD:ADC8794', str(4286925 + i), f'PLECF/BIOUG_{i}.jpg', f'BIOUG-{i}',
                                f'{4286925 + i}.jpg', 'CreativeCommons - Attribution', 'CBG', 'CBG', 'boldsystems.org')))
        if extra == 'chunk_number': r['chunk_number'] = str(i % 3 + 1)
        if extra == 'image_tar': r['image_tar'] = f'BIOSCAN_IMAGE_DATASET_V1_{i % 3 + 1:03d}_OF_20.tar'
        rows.append(r)
    pd.DataFrame(rows).to_csv(root/name, sep='\t', index=False)
    if images:
        for r in rows:
            sub = f"part{r['chunk_number']}" if extra == 'chunk_number' else ''
            img(root/'images'/sub/r['image_file'])
    return root


def write_oxford(root, labels=(1, 2, 2, 3, 1, 3, 3, 2), trn=(1, 2), val=(3, 4), tst=(5, 6, 7, 8), missing=(4,), names='dict'):
    root = Path(root); root.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(root/'imagelabels.mat', {'labels': np.array([labels], dtype=np.uint8)})
    scipy.io.savemat(root/'setid.mat', {'trnid': np.array([trn], dtype=np.uint16), 'valid': np.array([val], dtype=np.uint16),
                                        'tstid': np.array([tst], dtype=np.uint16)})
    nm = ['pink primrose', 'hard-leaved pocket orchid', 'canterbury bells']
    if names == 'dict': (root/'class_names.json').write_text(json.dumps({str(i + 1): n for i, n in enumerate(nm)}))
    if names == 'list': (root/'cat_to_name.json').write_text(json.dumps(nm))
    for i in range(1, len(labels) + 1):
        if i not in missing: img(root/'jpg'/f'image_{i:05d}.jpg', size=(60 + i, 40))
    return root


def write_cub(root, missing=()):
    root = Path(root); root.mkdir(parents=True, exist_ok=True)
    files = ['001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg', '001.Black_footed_Albatross/Black_Footed_Albatross_0009_34.jpg',
             '002.Laysan_Albatross/Laysan_Albatross_0002_1027.jpg', '200.Common_Yellowthroat/Common_Yellowthroat_0055_190967.jpg']
    (root/'images.txt').write_text(''.join(f'{i} {f}\n' for i, f in enumerate(files, 1)))
    (root/'image_class_labels.txt').write_text('1 1\n2 1\n3 2\n4 200\n')
    (root/'classes.txt').write_text('1 001.Black_footed_Albatross\n2 002.Laysan_Albatross\n200 200.Common_Yellowthroat\n')
    (root/'train_test_split.txt').write_text('1 0\n2 1\n3 1\n4 0\n')
    (root/'bounding_boxes.txt').write_text('1 60.0 27.0 325.0 304.0\n2 139.0 30.0 153.0 264.0\n3 14.0 112.0 388.0 186.0\n4 1.0 2.0 3.0 4.0\n')
    for i, f in enumerate(files, 1):
        if i not in missing: img(root/'images'/f)
    return root


def quiet(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return fn(*a, **kw)


# ---------------------------------------------------------------- FishNet

def test_fishnet_reads_the_real_format(tmp_path):
    root = write_fishnet(tmp_path/'fishnet', skip=(3,))
    with pytest.warns(DataWarning, match='1 of 5 image files are missing'):
        r = read_fishnet(root, csv='test.csv')
    assert isinstance(r, TaxaRecords) and r.name == 'fishnet' and r.ranks == ('class', 'order', 'family', 'genus', 'species')
    t = r.table
    assert len(t) == 4 and list(t.columns[:7]) == ['path', 'class', 'order', 'family', 'genus', 'species', 'split']
    assert all(os.path.isabs(p) and os.path.isfile(p) for p in t.path)
    assert t.path[0] == str((root/'Image_Library'/'Acanthuridae'/'Zefla_u2.jpg').absolute())   # URL -> file name
    assert t.species[1] == 'Naso fageni'                                                        # whitespace cleaned
    assert set(t.split) == {'test'}
    rep = r.report
    assert rep['n_rows'] == 5 and rep['n_url_images'] == 3 and rep['n_missing_files'] == 1
    assert rep['missing_per_rank'] == {'class': 1, 'order': 0, 'family': 0, 'genus': 1, 'species': 1}
    assert rep['n_incomplete'] == 2 and rep['missing_per_split'] == {'test': 1}


def test_fishnet_images_folder_split_and_several_csvs(tmp_path):
    root = write_fishnet(tmp_path, images=False)
    write_fishnet(tmp_path, rows=[dict(r, image=r['image'].replace('.jpg', '_t.jpg')) for r in FISH_ROWS[:2]], name='train.csv', images=False)
    r = read_fishnet(root, csv=['train.csv', 'test.csv'], images='imgs', check_files=False)
    assert r.report['splits'] == {'train': 2, 'test': 5} and r.report['files_checked'] is False
    assert r.table.path[0].endswith(os.path.join('imgs', 'Acanthuridae', 'Zefla_u2_t.jpg'))
    assert set(read_fishnet(root, csv='test.csv', split='all', check_files=False).table.split) == {'all'}


def test_fishnet_bbox(tmp_path):
    root = write_fishnet(tmp_path)
    (root/'boxes.json').write_text(json.dumps({'Zefla_u2.jpg': [1, 2, 10, 20],
                                               'ce230657-448a-491b-ad57-4522e753d738.jpg': [[0, 0, 5, 5], [1, 1, 2, 2]]}))
    r = read_fishnet(root, csv='test.csv', bbox='boxes.json')
    assert r.table.bbox[0] == [[1, 2, 10, 20]] and r.table.bbox[2] == [[0, 0, 5, 5], [1, 1, 2, 2]] and r.table.bbox[1] is None
    assert r.report['n_bbox'] == 2
    (root/'bad.json').write_text(json.dumps({'Zefla_u2.jpg': [1, 2, 3]}))
    with pytest.raises(DataError, match=r"(?s)Zefla_u2.jpg.*bad.json"): read_fishnet(root, csv='test.csv', bbox='bad.json')
    (root/'list.json').write_text('[1, 2]')
    with pytest.raises(DataError, match='list.json'): read_fishnet(root, csv='test.csv', bbox='list.json')
    with pytest.raises(DataError, match='nope.json'): read_fishnet(root, csv='test.csv', bbox='nope.json')


def test_fishnet_bad_input(tmp_path):
    with pytest.raises(DataError, match=r'(?s)does not exist.*Image_Library'): read_fishnet(tmp_path/'nowhere')
    root = write_fishnet(tmp_path)
    with pytest.raises(DataError, match=r'(?s)train.csv.*Expected layout'): read_fishnet(root)
    pd.DataFrame(FISH_ROWS).drop(columns='Family').to_csv(root/'nofam.csv')
    with pytest.raises(DataError, match=r"(?s)'family' not found in .*nofam.csv"): read_fishnet(root, csv='nofam.csv')
    (root/'broken.csv').write_bytes(b'image,Folder,Class\n"unterminated,quote\n' + b'\x00' * 10)
    with pytest.raises(DataError, match='broken.csv'): read_fishnet(root, csv='broken.csv')
    (root/'empty.csv').write_text('')
    with pytest.raises(DataError, match=r'empty.csv'): read_fishnet(root, csv='empty.csv')
    root2 = write_fishnet(tmp_path/'noimg', images=False)
    with pytest.raises(DataError, match=r'(?s)none of the 5 image files.*check_files=False'): read_fishnet(root2, csv='test.csv')


# ---------------------------------------------------------------- iNaturalist 2021

def test_inat2021(tmp_path):
    root = write_inat(tmp_path, 'val', n=6)
    r = read_inat2021(root, split='val')
    assert r.ranks == RANKS and len(r) == 6 and set(r.table.split) == {'val'}
    assert r.table.species.tolist()[:3] == ['Abudefduf saxatilis', 'Abudefduf vaigiensis', 'Bellis perennis']
    assert r.table.kingdom[2] == 'Plantae' and r.table.path[0].startswith(str(root.absolute()))
    assert r.report['n_taxa']['species'] == 3 and r.report['n_taxa']['kingdom'] == 2
    write_inat(root, 'train', n=3)
    both = read_dataset('inat2021', root, split=['train', 'val'])
    assert both.report['splits'] == {'train': 3, 'val': 6}


def test_inat2021_reports_unlabelled_and_unknown(tmp_path):
    root = write_inat(tmp_path, 'val', n=6)
    d = json.loads((root/'val.json').read_text())
    d['annotations'] = d['annotations'][:4]; d['annotations'][0]['category_id'] = 99
    (root/'val.json').write_text(json.dumps(d))
    with pytest.warns(DataWarning, match='2 images without annotation and 1 with an unknown category_id'):
        r = read_inat2021(root, split='val')
    assert len(r) == 3 and r.report['n_unlabelled'] == 2 and r.report['n_unknown_category'] == 1


def test_inat2021_bad_input(tmp_path):
    root = write_inat(tmp_path, 'val', images=False)
    with pytest.raises(DataError, match=r'(?s)train.json.*Expected layout'): read_inat2021(root)
    d = json.loads((root/'val.json').read_text())
    for c in d['categories']: del c['genus']
    (root/'val.json').write_text(json.dumps(d))
    with pytest.raises(DataError, match=r"(?s)'genus' not found in .*val.json \['categories'\]"): read_inat2021(root, split='val', check_files=False)
    (root/'val.json').write_text(json.dumps({'images': [], 'categories': []}))
    with pytest.raises(DataError, match=r"(?s)'annotations'.*val.json"): read_inat2021(root, split='val')
    (root/'val.json').write_text('{"images": [1, 2')
    with pytest.raises(DataError, match=r'val.json is not valid JSON'): read_inat2021(root, split='val')


# ---------------------------------------------------------------- BIOSCAN-1M

def test_bioscan_keeps_complete_records(tmp_path):
    root = write_bioscan(tmp_path)
    r = read_bioscan1m(root)
    assert r.ranks == ('class', 'order', 'family', 'genus', 'species')
    assert len(r) == 3 and r.table.species.tolist() == ['Hydroporus striola', 'Esolus angustatus', 'Longitarsus sp. 55']
    rep = r.report
    assert (rep['n_rows'], rep['n_kept'], rep['n_dropped']) == (6, 3, 3)
    assert rep['dropped_missing_per_rank'] == {'class': 0, 'order': 0, 'family': 1, 'genus': 3, 'species': 3}
    assert rep['n_placeholder_species'] == 1 and rep['n_incomplete'] == 0
    assert r.table.path[0] == str(root.absolute()/'images'/'part2'/'4286926.jpg')
    assert r.table.processid[0] == 'PLECF1-20' and set(r.table.split) == {'all'}


@pytest.mark.parametrize('extra', ['image_tar', None])
def test_bioscan_without_chunk_number(tmp_path, extra):
    root = write_bioscan(tmp_path, extra=extra, name='small_dataset_validation_metadata.tsv')
    r = read_bioscan1m(root, metadata='small_dataset_validation_metadata.tsv')
    assert r.table.path[0] == str(root.absolute()/'images'/'4286926.jpg') and set(r.table.split) == {'val'}


def test_bioscan_subdir_format_and_errors(tmp_path):
    root = write_bioscan(tmp_path, images=False)
    r = read_bioscan1m(root, images='cropped_256', subdir='chunk_{chunk_number}', check_files=False)
    assert r.table.path[0] == str(root.absolute()/'cropped_256'/'chunk_2'/'4286926.jpg')
    with pytest.raises(DataError, match=r"'chunk' not found"): read_bioscan1m(root, subdir='{chunk}', check_files=False)
    with pytest.raises(DataError, match=r'(?s)metadata TSV not found.*meta.tsv'): read_bioscan1m(root, metadata='meta.tsv')
    df = pd.read_csv(root/'BIOSCAN_Insect_Dataset_metadata.tsv', sep='\t').drop(columns='species')
    df.to_csv(root/'nosp.tsv', sep='\t', index=False)
    with pytest.raises(DataError, match=r"(?s)'species' not found in .*nosp.tsv"): read_bioscan1m(root, metadata='nosp.tsv')


# ---------------------------------------------------------------- Oxford-102

def test_oxford102_reports_missing_files(tmp_path):
    root = write_oxford(tmp_path, missing=(4, 7))
    with pytest.warns(DataWarning, match='2 of 8 image files are missing'):
        r = read_oxford102(root)
    assert r.ranks == ('species',) and len(r) == 6
    rep = r.report
    assert rep['n_missing_files'] == 2 and len(rep['missing_examples']) == 2 and rep['missing_examples'][0].endswith('image_00004.jpg')
    assert rep['missing_per_split'] == {'val': 1, 'test': 1}
    assert rep['official_splits'] == {'train': 2, 'val': 2, 'test': 4} and rep['splits'] == {'train': 2, 'val': 1, 'test': 3}
    assert r.table.species.tolist()[:3] == ['pink primrose', 'hard-leaved pocket orchid', 'hard-leaved pocket orchid']
    assert r.table.label.tolist() == [1, 2, 2, 1, 3, 2] and rep['absent_labels'] == []


def test_oxford102_class_names(tmp_path):
    r = quiet(read_oxford102, write_oxford(tmp_path/'a', names=None))
    assert r.table.species[0] == 'class_001' and r.report['class_names'] is None
    r = quiet(read_oxford102, write_oxford(tmp_path/'b', names='list'))
    assert r.table.species[4] == 'canterbury bells' and r.report['class_names'].endswith('cat_to_name.json')
    assert quiet(read_oxford102, tmp_path/'b', class_names=False).table.species[0] == 'class_001'
    r = quiet(read_oxford102, write_oxford(tmp_path/'c', missing=(1, 5)))
    assert r.report['absent_labels'] == [1]


def test_oxford102_bad_input(tmp_path):
    root = write_oxford(tmp_path)
    (root/'setid.mat').write_bytes(b'not a mat file at all')
    with pytest.raises(DataError, match=r'setid.mat'): read_oxford102(root)
    scipy.io.savemat(root/'setid.mat', {'trnid': np.array([[1]]), 'valid': np.array([[2]])})
    with pytest.raises(DataError, match=r"(?s)'tstid' not found in .*setid.mat"): read_oxford102(root)
    scipy.io.savemat(root/'setid.mat', {'trnid': np.array([[1]]), 'valid': np.array([[2]]), 'tstid': np.array([[99]])})
    with pytest.raises(DataError, match=r'outside 1..8'): read_oxford102(root)
    (root/'imagelabels.mat').unlink()
    with pytest.raises(DataError, match=r'(?s)imagelabels.mat.*Expected layout'): read_oxford102(root)
    root = write_oxford(tmp_path/'nojpg', missing=range(1, 9))
    with pytest.raises(DataError, match=r'jpg'): read_oxford102(root)
    (root/'class_names.json').write_text('{"1": "x", ')
    with pytest.raises(DataError, match=r'class_names.json is not valid JSON'): read_oxford102(root, check_files=False)


# ---------------------------------------------------------------- CUB-200-2011

def test_cub200(tmp_path):
    write_cub(tmp_path/'CUB_200_2011', missing=(3,))
    with pytest.warns(DataWarning, match='1 of 4'):
        r = read_cub200(tmp_path)                          # the folder holding CUB_200_2011/
    assert r.root == (tmp_path/'CUB_200_2011').absolute() and r.ranks == ('species',)
    assert r.table.species.tolist() == ['Black footed Albatross', 'Black footed Albatross', 'Common Yellowthroat']
    assert r.table.split.tolist() == ['test', 'train', 'test'] and r.table.bbox[0] == [[60.0, 27.0, 325.0, 304.0]]
    assert 'bbox' not in read_cub200(tmp_path/'CUB_200_2011', bbox=False, check_files=False).table


def test_cub200_bad_input(tmp_path):
    root = write_cub(tmp_path)
    (root/'train_test_split.txt').write_text('1 0\n2\n')
    with pytest.raises(DataError, match=r'(?s)line 2 of .*train_test_split.txt'): read_cub200(root)
    (root/'classes.txt').unlink()
    with pytest.raises(DataError, match=r'classes.txt'): read_cub200(root)


CUB_LINEAGE = 'class_id,cub_class,kingdom,order,family,genus,species\n' \
              '1,001.Black_footed_Albatross,Animalia,Procellariiformes,Diomedeidae,Phoebastria,Phoebastria nigripes\n' \
              '2,002.Laysan_Albatross,Animalia,Procellariiformes,Diomedeidae,Phoebastria,Phoebastria immutabilis\n' \
              '200,200.Common_Yellowthroat,Animalia,Passeriformes,Parulidae,Geothlypis,Geothlypis trichas\n'


def test_cub200_taxonomy_table(tmp_path):
    write_cub(tmp_path/'CUB_200_2011')
    (tmp_path/'cub200_taxonomy.csv').write_text(CUB_LINEAGE)
    r = read_dataset('cub200', tmp_path, cache_dir=tmp_path/'cache')
    assert r.ranks == ('kingdom', 'order', 'family', 'genus', 'species') and r.report['n_taxa']['order'] == 2
    assert r.table.species.tolist() == ['Phoebastria nigripes', 'Phoebastria nigripes', 'Phoebastria immutabilis', 'Geothlypis trichas']
    assert r.table.class_name[3] == 'Common Yellowthroat' and r.table.label.tolist() == [1, 1, 2, 200]
    # an edited taxonomy table is read again, never served stale from the cache
    time.sleep(0.01); (tmp_path/'cub200_taxonomy.csv').write_text(CUB_LINEAGE.replace('Geothlypis trichas', 'Geothlypis sp'))
    assert read_dataset('cub200', tmp_path, cache_dir=tmp_path/'cache').table.species[3] == 'Geothlypis sp'
    # a table elsewhere, named explicitly; its edits count too
    other = tmp_path/'lineage.csv'; other.write_text(CUB_LINEAGE)
    assert read_dataset('cub200', tmp_path, cache_dir=tmp_path/'cache', taxonomy=str(other)).table.species[3] == 'Geothlypis trichas'
    time.sleep(0.01); other.write_text(CUB_LINEAGE.replace('Passeriformes', 'Passeres'))
    assert read_dataset('cub200', tmp_path, cache_dir=tmp_path/'cache', taxonomy=str(other)).table.order[3] == 'Passeres'


def test_cub200_taxonomy_table_bad_input(tmp_path):
    root = write_cub(tmp_path/'CUB_200_2011')
    bad = tmp_path/'bad.csv'
    bad.write_text(CUB_LINEAGE.replace('class_id,cub_class', 'id,klass'))
    with pytest.raises(DataError, match='no column names the classes'): read_cub200(root, taxonomy=bad)
    bad.write_text('class_id,colour\n1,red\n')
    with pytest.raises(DataError, match='no rank columns'): read_cub200(root, taxonomy=bad)
    bad.write_text(CUB_LINEAGE + CUB_LINEAGE.splitlines()[1] + '\n')
    with pytest.raises(DataError, match='has 2 rows; one row per class'): read_cub200(root, taxonomy=bad)
    with pytest.raises(DataError, match='missing.csv'): read_cub200(root, taxonomy=tmp_path/'missing.csv')
    bad.write_text(CUB_LINEAGE.replace(',species', ',species_name'))
    with pytest.raises(DataError, match='no species column'): read_cub200(root, taxonomy=bad)
    bad.write_text('\n'.join(CUB_LINEAGE.splitlines()[:3]) + '\n')      # class 200 has no row: its image is left out, named
    with pytest.warns(DataWarning, match="1 classes .1 images. have no row.*Common Yellowthroat"):
        r = read_cub200(root, taxonomy=bad)
    assert len(r) == 3 and r.report['classes_without_lineage'] == ['Common Yellowthroat']


# ---------------------------------------------------------------- image folders

def test_image_folder_csv_as_the_data_root(tmp_path):
    "A run names a folder dataset's CSV by passing the file as data_root: records with its ranks, the same as csv=."
    for i, (g, sp) in enumerate([('Ga', 'Ga x'), ('Ga', 'Ga y'), ('Gb', 'Gb x')]): img(tmp_path/'imgs'/f'{i}.png')
    (tmp_path/'labels.csv').write_text('path,Genus,Species,split\nimgs/0.png,Ga,Ga x,train\nimgs/1.png,Ga,Ga y,train\nimgs/2.png,Gb,Gb x,test\n')
    r = read_dataset('folder', tmp_path/'labels.csv')
    assert r.ranks == ('genus', 'species') and len(r) == 3 and r.root == tmp_path.absolute()
    assert r.table.path.tolist() == read_image_folder(tmp_path, csv='labels.csv').table.path.tolist()
    from taxanb.train import TrainConfig, load_data
    data, tax, _ = load_data(TrainConfig(dataset='folder', data_root=str(tmp_path/'labels.csv'), preset='smoke'))
    assert tax.ranks == ('genus', 'species') and len(data) == 2          # the training split; the test split is the reference
    with pytest.raises(DataError, match='does not exist'): read_dataset('folder', tmp_path/'nope.csv')

def test_image_folder_layouts(tmp_path):
    for c, i in [('Naso fageni', 0), ('Naso fageni', 1), ('Naso_lituratus', 2)]: img(tmp_path/'flat'/c/f'{i}.PNG')
    (tmp_path/'flat'/'Naso fageni'/'notes.txt').write_text('not an image')
    r = read_image_folder(tmp_path/'flat')
    assert r.ranks == ('species',) and len(r) == 3 and set(r.table.split) == {'all'}
    assert r.table.species.tolist() == ['Naso fageni', 'Naso fageni', 'Naso_lituratus']
    for s, c, i in [('train', 'a', 0), ('valid', 'a', 1), ('test', 'b', 2)]: img(tmp_path/'split'/s/c/f'{i}.jpg')
    r = read_image_folder(tmp_path/'split', rank='genus')
    assert r.ranks == ('genus',) and sorted(r.table.split) == ['test', 'train', 'val']
    (tmp_path/'empty').mkdir()
    with pytest.raises(DataError, match='no images'): read_image_folder(tmp_path/'empty')


def test_image_folder_csv(tmp_path):
    img(tmp_path/'a.jpg'); img(tmp_path/'sub'/'b.jpg'); img(tmp_path/'c.jpg')
    pd.DataFrame({'File': ['a.jpg', 'sub/b.jpg', str(tmp_path/'c.jpg')], 'FAMILY': ['F', 'F', 'F'], 'Genus': ['G', 'H', 'G'],
                  'Species': ['G x', 'H y', 'G x'], 'notes': 1}).to_csv(tmp_path/'t.csv', index=False)
    r = read_image_folder(tmp_path, csv='t.csv', path_col='file')
    assert r.ranks == ('family', 'genus', 'species') and r.table.path[1] == str(tmp_path.absolute()/'sub/b.jpg')
    assert r.table.path[2] == str(tmp_path/'c.jpg') and set(r.table.split) == {'all'}
    assert read_image_folder(tmp_path, csv='t.csv', path_col='file', ranks=('species', 'genus')).ranks == ('genus', 'species')
    with pytest.raises(DataError, match=r"(?s)'path' not found in .*t.csv"): read_image_folder(tmp_path, csv='t.csv')
    pd.DataFrame({'path': ['a.jpg'], 'label': [1]}).to_csv(tmp_path/'norank.csv', index=False)
    with pytest.raises(DataError, match=r'(?s)no rank column in .*norank.csv'): read_image_folder(tmp_path, csv='norank.csv')
    with pytest.raises(DataError, match=r"'tribe' is not a rank"): read_image_folder(tmp_path, csv='t.csv', path_col='file', ranks=('tribe',))


# ---------------------------------------------------------------- dispatch

def test_read_dataset_dispatch(tmp_path):
    assert set(READERS) == {'fishnet', 'inat2021', 'bioscan1m', 'oxford102', 'cub200', 'folder'}
    with pytest.raises(DataError, match=r"unknown dataset 'imagenet'; readers: fishnet, inat2021, bioscan1m, oxford102, cub200, folder"):
        read_dataset('imagenet', tmp_path)
    with pytest.raises(DataError, match=r"takes \['class_names', 'check_files'\]"): read_dataset('oxford102', tmp_path, csv='x')
    with pytest.raises(DataError, match=r'(?s)does not exist.*imagelabels.mat'): read_dataset('oxford102', tmp_path/'missing')
    r = quiet(read_dataset, 'Oxford102', write_oxford(tmp_path/'ox'))
    assert r.name == 'oxford102' and len(r) == 7
    assert 'oxford102' in repr(r) and "'train': 2" in repr(r)
    with pytest.raises(DataError, match=r"no split 'dev'"): r.subset('dev')
    assert len(r.subset(['train', 'val'])) == 3


# ---------------------------------------------------------------- images in any mode

def test_to_rgb_every_mode(tmp_path):
    rgba = Image.new('RGBA', (4, 4), (0, 0, 255, 0)); rgba.putpixel((0, 0), (0, 0, 255, 255))
    assert to_rgb(rgba).getpixel((1, 1)) == (255, 255, 255) and to_rgb(rgba).getpixel((0, 0)) == (0, 0, 255)
    assert to_rgb(rgba, background=(0, 0, 0)).getpixel((1, 1)) == (0, 0, 0)
    la = Image.new('LA', (4, 4), (0, 0)); assert to_rgb(la).getpixel((0, 0)) == (255, 255, 255)
    p = Image.new('P', (4, 4), 1); p.putpalette([0, 0, 0, 10, 200, 30]); assert to_rgb(p).getpixel((0, 0)) == (10, 200, 30)
    p.info['transparency'] = 1; assert to_rgb(p).getpixel((0, 0)) == (255, 255, 255)
    assert to_rgb(Image.new('CMYK', (4, 4), (255, 0, 255, 0))).getpixel((0, 0)) == (0, 255, 0)
    assert to_rgb(Image.new('L', (4, 4), 77)).getpixel((0, 0)) == (77, 77, 77)
    assert to_rgb(Image.new('1', (4, 4), 1)).getpixel((0, 0)) == (255, 255, 255)
    a16 = np.array([[0, 65535], [32896, 257]], dtype=np.uint16)
    out = np.asarray(to_rgb(Image.fromarray(a16)))
    assert out.shape == (2, 2, 3) and out[..., 0].tolist() == [[0, 255], [128, 1]]
    f = Image.fromarray(np.array([[0.0, 1.0]], dtype=np.float32)); assert np.asarray(to_rgb(f))[0, :, 0].tolist() == [0, 255]
    i32 = Image.fromarray(np.array([[-5, 5]], dtype=np.int32)); assert np.asarray(to_rgb(i32))[0, :, 0].tolist() == [0, 255]
    for m in ('YCbCr', 'HSV', 'RGBX'):
        assert to_rgb(Image.new('RGB', (3, 3), (5, 5, 5)).convert(m)).mode == 'RGB'
    # files: 16-bit PNG, palette GIF with transparency, CMYK JPEG, EXIF-rotated JPEG
    Image.fromarray(a16).save(tmp_path/'g16.png')
    assert load_rgb(tmp_path/'g16.png').getpixel((1, 0)) == (255, 255, 255)
    p.save(tmp_path/'p.gif', transparency=1); assert load_rgb(tmp_path/'p.gif').getpixel((0, 0)) == (255, 255, 255)
    Image.new('CMYK', (8, 8), (0, 255, 255, 0)).save(tmp_path/'c.jpg')
    assert np.allclose(load_rgb(tmp_path/'c.jpg').getpixel((4, 4)), (255, 0, 0), atol=3)
    exif = Image.Exif(); exif[0x0112] = 6                                                # rotate 90°: 40x30 -> 30x40
    Image.new('RGB', (40, 30), (9, 9, 9)).save(tmp_path/'rot.jpg', exif=exif)
    assert load_rgb(tmp_path/'rot.jpg').size == (30, 40)


# ---------------------------------------------------------------- transforms

def circle(w, h, r):
    yy, xx = np.mgrid[:h, :w]
    a = np.where(((xx - w / 2) ** 2 + (yy - h / 2) ** 2) <= r ** 2, 0, 255).astype(np.uint8)
    return Image.fromarray(np.stack([a] * 3, -1))


def extent(x):
    d = (x.mean(0) < 0).nonzero()
    return (d[:, 1].max() - d[:, 1].min() + 1).item(), (d[:, 0].max() - d[:, 0].min() + 1).item()


@pytest.mark.parametrize('wh', [(200, 100), (100, 200)])
def test_transform_never_squashes(wh):
    im = circle(*wh, r=40)
    for tf, diam in [(image_transform(32, crop='center', hflip=0), 80 * 32 / 100),
                     (image_transform(32, pad_to_square=True, fill=255, hflip=0), 80 * 32 / 200)]:
        x = tf(im)
        assert isinstance(x, torch.Tensor) and x.shape == (3, 32, 32) and x.dtype == torch.float32
        assert x.min() >= -1 and x.max() <= 1
        w, h = extent(x)
        assert abs(w - h) <= 1 and abs(w - diam) <= 2, (wh, w, h, diam)
    torch.manual_seed(0)
    for _ in range(10):                        # a random crop may cut the circle along the long side, never scale it
        w, h = extent(image_transform(32, crop='random', hflip=0.5)(im))
        assert abs((h if wh[0] > wh[1] else w) - 80 * 32 / 100) <= 1 and max(w, h) <= 80 * 32 / 100 + 1


def test_transform_crop_flip_and_args():
    a = np.zeros((20, 60, 3), np.uint8); a[:, :30] = 255                                  # white left half
    im = Image.fromarray(a)
    x = image_transform(20, crop='center', hflip=0)(im)
    assert x[0, 0, 0] == 1 and x[0, 0, -1] == -1
    xf = image_transform(20, crop='center', hflip=1.0)(im)
    assert torch.equal(xf, x.flip(-1))
    torch.manual_seed(0)
    crops = {tuple(image_transform(20, hflip=0)(im)[0, 0].tolist()) for _ in range(20)}
    assert len(crops) > 1                                                                 # random crops differ
    xt = image_transform(20, crop='center', hflip=0)(torch.from_numpy(a).permute(2, 0, 1))    # tensors work too
    assert torch.allclose(xt, x)
    for bad in [dict(size=0), dict(size=3.5), dict(size=8, crop='middle'), dict(size=8, hflip=2)]:
        with pytest.raises(DataError): image_transform(**bad)


# ---------------------------------------------------------------- image checks

def test_check_images_categories_and_parallel(tmp_path):
    good = [img(tmp_path/f'g{i}.png', size=(20 + i % 5, 16)) for i in range(150)]        # > one chunk: thread pool
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path/'n.jpg')
    (tmp_path/'trunc.jpg').write_bytes((tmp_path/'n.jpg').read_bytes()[:2000])
    (tmp_path/'txt.png').write_text('hello')
    small = img(tmp_path/'small.png', size=(5, 50))
    paths = good + [tmp_path/'trunc.jpg', tmp_path/'txt.png', small, tmp_path/'gone.png']
    ok, rep = check_images(paths, 'decode', min_side=8, workers=4)
    assert ok.tolist() == [True] * 150 + [False] * 4
    assert (rep['n_ok'], rep['n_missing'], rep['n_unreadable'], rep['n_too_small']) == (150, 1, 2, 1)
    assert rep['examples']['too_small'] == [f'{small} (5x50)'] and 'truncated' in rep['examples']['unreadable'][0]
    ok, rep = check_images(paths, 'header')
    assert rep['n_unreadable'] == 1 and ok[150]
    assert check_images(paths, 'none')[0].all()
    with pytest.raises(DataError, match="'decode', 'header' or 'none'"): check_images(paths, 'full')


# ---------------------------------------------------------------- the dataset

def test_dataset_checks_images_and_yields_items(tmp_path):
    root = write_oxford(tmp_path, missing=(4,))
    (root/'jpg'/'image_00006.jpg').write_bytes(b'\xff\xd8\xff\xe0 broken')
    img(root/'jpg'/'image_00007.jpg', size=(3, 40))
    recs = quiet(read_oxford102, root)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        ds = TaxaImageDataset(recs, size=16)
    dw = [x for x in w if issubclass(x.category, DataWarning)]
    assert len(dw) == 1 and 'left out 2 of 7 images (1 unreadable, 1 too small' in str(dw[0].message)
    assert len(ds) == 5 and ds.report['n_images'] == 5 and ds.report['n_left_out_images'] == 2
    assert ds.report['images']['n_unreadable'] == 1 and ds.report['images']['n_too_small'] == 1
    assert ds.taxonomy.ranks == ('species',) and ds.taxonomy.n_taxa('species') == 2   # canterbury bells lost both images
    assert 'canterbury bells' not in [t.name for t in ds.taxonomy.taxa(0)]
    assert ds.labels.shape == (5, 1)
    for i in range(len(ds)):
        it = ds[i]
        assert set(it) == {'image', 'labels', 'index'} and it['index'] == i
        assert it['image'].shape == (3, 16, 16) and it['image'].dtype == torch.float32
        assert -1 <= it['image'].min() and it['image'].max() <= 1
        assert it['labels'].dtype == torch.long and it['labels'].shape == (1,)
        assert ds.taxonomy.taxa(0)[it['labels'][0].item()].name == ds.table.species[i]
    with pytest.raises(IndexError): ds[5]
    assert 'oxford102' in repr(ds)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, sampler=ds.sampler('species', num_samples=8))
    b = next(iter(loader))
    assert b['image'].shape == (4, 3, 16, 16) and b['labels'].shape == (4, 1)


def test_dataset_every_image_mode(tmp_path):
    a16 = (np.arange(64 * 48, dtype=np.uint32).reshape(48, 64) * 20).astype(np.uint16)
    files = {'rgba.png': lambda p: Image.new('RGBA', (40, 30), (255, 0, 0, 0)).save(p),
             'la.png': lambda p: Image.new('LA', (40, 30), (10, 128)).save(p),
             'l.jpg': lambda p: Image.new('L', (40, 30), 99).save(p),
             'cmyk.jpg': lambda p: Image.new('CMYK', (40, 30), (0, 255, 0, 0)).save(p),
             'p.gif': lambda p: Image.new('P', (40, 30), 3).save(p, transparency=3),
             'p.png': lambda p: Image.new('RGB', (40, 30), (1, 2, 3)).convert('P').save(p),
             'i16.png': lambda p: Image.fromarray(a16).save(p),
             'one.png': lambda p: Image.new('1', (40, 30), 1).save(p),
             'f.tif': lambda p: Image.fromarray(np.ones((30, 40), np.float32) * 0.5).save(p)}
    for f, save in files.items(): save(tmp_path/f)
    df = pd.DataFrame({'path': [str(tmp_path/f) for f in files], 'Genus': ['G'] * len(files), 'species': [f'G {f}' for f in files]})
    ds = TaxaImageDataset(df, size=8, check='decode')
    assert len(ds) == len(files) and ds.taxonomy.ranks == ('genus', 'species')
    imgs = {f: ds[i]['image'] for i, f in enumerate(ds.table.path.map(lambda p: Path(p).name))}
    assert all(x.shape == (3, 8, 8) for x in imgs.values())
    assert torch.allclose(imgs['rgba.png'], torch.ones(3, 8, 8))                     # transparent -> white, not black
    assert torch.allclose(imgs['p.gif'], torch.ones(3, 8, 8))


def test_dataset_taxonomy_policies_split_and_shared_taxonomy(tmp_path):
    root = write_fishnet(tmp_path)
    recs = read_fishnet(root, csv='test.csv')
    with pytest.raises(ValueError, match='drop|fill'): TaxaImageDataset(recs)           # blank ranks: 'reject' says what to do
    ds = TaxaImageDataset(recs, missing='drop', check='header')
    assert len(ds) == 2 and ds.report['n_left_out_by_taxonomy'] == 3 and ds.taxonomy.n_levels == 5
    ds = quiet(TaxaImageDataset, recs, missing='fill', check='header')     # Perciformes under 'unknown' too: a homonym
    assert len(ds) == 5
    ds = TaxaImageDataset(recs, ranks=('class', 'order', 'family'), missing='drop', check='header')
    assert ds.taxonomy.ranks == ('class', 'order', 'family') and len(ds) == 4
    # a validation set encoded with the training taxonomy
    recs = read_oxford102(write_oxford(tmp_path/'ox', missing=(), trn=(1, 2, 4), val=(3,), tst=(5, 6, 7, 8)))
    tr = TaxaImageDataset(recs, split='train', check='header')
    te = TaxaImageDataset(recs, split=['val', 'test'], taxonomy=tr.taxonomy, check='header')
    assert te.taxonomy is tr.taxonomy and len(te) == 5 and te.labels.max() < tr.taxonomy.n_taxa(0)
    assert te.table.species.tolist() == [tr.taxonomy.taxa(0)[i].name for i in te.labels[:, 0]]
    recs = read_oxford102(write_oxford(tmp_path/'ox2', missing=()))                    # train lacks label 3
    tr = TaxaImageDataset(recs, split='train', check='header')
    with pytest.raises(ValueError, match='canterbury bells'):
        TaxaImageDataset(recs, split='test', taxonomy=tr.taxonomy, check='header')
    with pytest.raises(DataError, match="no split 'dev'"): TaxaImageDataset(recs, split='dev')


def test_dataset_all_bad_or_empty(tmp_path):
    root = write_oxford(tmp_path, missing=())
    for i in range(1, 9): (root/'jpg'/f'image_{i:05d}.jpg').write_bytes(b'junk')
    with pytest.raises(DataError, match=r'none of the 8 images can be used \(8 unreadable'): TaxaImageDataset(read_oxford102(root))
    empty = TaxaRecords(pd.DataFrame({'path': [], 'species': [], 'split': []}), ('species',), 'empty', tmp_path)
    with pytest.raises(DataError, match='no records'): TaxaImageDataset(empty)
    with pytest.raises(DataError, match='TaxaRecords'): TaxaImageDataset([1, 2])
    with pytest.raises(DataError, match='check must be'): TaxaImageDataset(read_oxford102(root), check='full')


def test_dataset_survives_a_file_that_breaks_later(tmp_path):
    recs = read_oxford102(write_oxford(tmp_path, missing=()))
    ds = TaxaImageDataset(recs, size=8, check='header')
    os.remove(ds.table.path[2])
    with pytest.warns(DataWarning, match='serving the next image'):
        it = ds[2]
    assert it['index'] == 3 and it['image'].shape == (3, 8, 8)
    assert len([ds[i] for i in range(len(ds))]) == len(ds)                              # a whole epoch runs


def test_dataset_crop_bbox(tmp_path):
    a = np.full((40, 80, 3), 255, np.uint8); a[10:30, 50:70] = 0                         # a black box at x 50..70, y 10..30
    Image.fromarray(a).save(tmp_path/'x.png')
    recs = TaxaRecords(pd.DataFrame({'path': [str(tmp_path/'x.png')], 'species': ['s'], 'split': ['all'],
                                     'bbox': [[[50, 10, 20, 20]]]}), ('species',), 'demo', tmp_path)
    tf = image_transform(8, crop='center', hflip=0)
    assert (TaxaImageDataset(recs, transform=tf, crop_bbox=True)[0]['image'] < 0).all()
    assert (TaxaImageDataset(recs, transform=tf)[0]['image'] > 0).any()


# ---------------------------------------------------------------- sampler and split

def test_class_balanced_sampler():
    y = np.repeat([0, 1, 2, 3], [2000, 200, 20, 2])
    s = class_balanced_sampler(y, num_samples=40_000, generator=torch.Generator().manual_seed(0))
    assert isinstance(s, torch.utils.data.WeightedRandomSampler) and len(s) == 40_000
    freq = np.bincount(y[list(s)], minlength=4) / 40_000
    assert np.allclose(freq, 0.25, atol=0.02), freq
    a = list(class_balanced_sampler(torch.tensor(y), 50, torch.Generator().manual_seed(1)))
    b = list(class_balanced_sampler(y, 50, torch.Generator().manual_seed(1)))
    assert a == b and len(class_balanced_sampler(y)) == len(y)
    for bad in [np.array([]), np.zeros((2, 2), int), np.array([0.5, 1.0]), np.array([-1, 0])]:
        with pytest.raises(DataError, match='labels_at_level'): class_balanced_sampler(bad)
    with pytest.raises(DataError, match='num_samples'): class_balanced_sampler(y, num_samples=0)


def test_generative_split():
    t = pd.DataFrame({'path': [f'/d/{i}.jpg' for i in range(2000)], 'species': [f's{i % 7}' for i in range(2000)],
                      'split': ['train'] * 1000 + ['val'] * 200 + ['test'] * 800})
    recs = TaxaRecords(t, ('species',), 'demo', Path('/d'), {'n_rows': 2000})
    g = generative_split(recs)
    assert g.table.split.value_counts().to_dict() == {'train': 1900, 'val': 100}
    assert g.table.official_split.tolist() == t.split.tolist() and g.table.path.tolist() == t.path.tolist()
    assert generative_split(recs).table.split.tolist() == g.table.split.tolist()        # deterministic
    assert generative_split(recs, seed=1).table.split.tolist() != g.table.split.tolist()
    val = g.table[g.table.split == 'val']
    assert set(val.official_split) == {'train', 'val', 'test'}                          # drawn from the merged splits
    assert g.report['generative_split']['merged'] == {'train': 1000, 'val': 200, 'test': 800} and g.report['n_rows'] == 2000
    assert recs.table.split.tolist() == t.split.tolist()                                # input untouched
    assert (generative_split(recs, val_frac=0.1).table.split == 'val').sum() == 200
    for bad in (1.0, -0.1):
        with pytest.raises(DataError, match='val_frac'): generative_split(recs, val_frac=bad)


# ---------------------------------------------------------------- the real files (optional)

def test_real_oxford102(shared_data):
    root = shared_data/'oxford102'
    if not root.is_dir(): pytest.skip('no oxford102 in the real data folder')
    with pytest.warns(DataWarning, match='2,645 of 8,189 image files are missing'):
        r = read_oxford102(root)
    rep = r.report
    assert len(r) == 5544 and rep['n_rows'] == 8189 and rep['n_missing_files'] == 2645
    assert rep['official_splits'] == {'train': 1020, 'val': 1020, 'test': 6149}
    assert rep['splits'] == {'train': 728, 'val': 706, 'test': 4110}
    assert rep['n_taxa'] == {'species': 90} and rep['absent_labels'] == [8, 24, 30, 44, 62, 73, 75, 81, 84, 89, 99, 101]
    assert (r.table.label == 1).sum() == 1 and r.table.species[r.table.label == 1].item() == 'pink primrose'
    t0 = time.time()
    ds = TaxaImageDataset(r, size=64, check='decode')
    dt = time.time() - t0
    print(f"\nTaxaImageDataset over the real Oxford-102 subset, check='decode': {dt:.2f}s for {len(ds)} images")
    assert len(ds) == 5544 and ds.report['images']['n_ok'] == 5544 and ds.taxonomy.n_taxa(0) == 90
    assert ds[0]['image'].shape == (3, 64, 64)
    g = generative_split(r)
    assert g.report['splits'] == {'train': 5267, 'val': 277}


def test_real_fishnet_table(shared_data):
    root = shared_data/'fishnet'
    if not (root/'test.csv').is_file(): pytest.skip('no fishnet/test.csv in the real data folder')
    with pytest.raises(DataError, match=r'none of the 18,901 image files'): read_fishnet(root, csv='test.csv')   # annotations only
    r = read_fishnet(root, csv='test.csv', check_files=False)
    rep = r.report
    assert len(r) == 18901 and r.ranks == ('class', 'order', 'family', 'genus', 'species') and set(r.table.split) == {'test'}
    assert rep['missing_per_rank'] == {'class': 90, 'order': 0, 'family': 0, 'genus': 90, 'species': 10406}
    assert rep['n_url_images'] == 8495 and rep['n_taxa']['species'] == 6470 and rep['n_taxa']['family'] == 463
    assert all(p.startswith(str(root.absolute()/'Image_Library') + os.sep) for p in r.table.path)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        tax = Taxonomy.from_table(r.table, ranks=r.ranks, missing='drop')
    assert tax.n_levels == 5 and len(tax.rows) == 18901 - 10406 - 90


def test_real_bioscan_metadata(shared_data):
    f = shared_data/'bioscan1m'/'small_dataset_validation_metadata.tsv'
    if not f.is_file(): pytest.skip('no BIOSCAN metadata in the real data folder')
    r = read_bioscan1m(f.parent, metadata=f.name, check_files=False)
    rep = r.report
    assert (rep['n_rows'], rep['n_kept'], rep['n_dropped']) == (8273, 1201, 7072)
    assert len(r) == 1201 and rep['n_incomplete'] == 0 and set(r.table['class']) == {'Insecta'} and set(r.table.split) == {'val'}
    assert all(p.startswith(str(f.parent.absolute()/'images') + os.sep) and p.endswith('.jpg') for p in r.table.path)
