import json
import os

import numpy as np
import pytest
from PIL import Image

from conftest import (
    fer_data,
    pixel_text,
    run_cli,
    synthetic_faces,
    write_fer2013_csv,
    write_tree,
    zip_tree,
)
from ferlab.data import (
    RAW,
    FaceSet,
    Preprocess,
    ValidationSplit,
    carve_validation,
    convert,
    equalize_hist,
    load,
)
from ferlab.data import cache as cache_mod
from ferlab.errors import FerlabError


def canonical(faces: FaceSet):
    """Faces as a sorted list of (split, label, pixels): order-free comparison across formats."""
    rows = [
        (str(s), int(lab), img.tobytes())
        for s, lab, img in zip(faces.splits, faces.labels, faces.images, strict=True)
    ]
    return sorted(rows)


def test_folder_tree_reads_splits_labels_and_ids(tree, faces):
    got, fp = load(tree, preprocess=RAW)
    assert len(got) == len(faces)
    assert got.split_names == ["Training", "PublicTest"]
    assert canonical(got) == canonical(faces)
    assert got.ids[0].startswith("test/") or got.ids[0].startswith("train/")
    assert len(set(got.ids.tolist())) == len(got)
    assert fp.startswith("v2:") and len(fp) == 67


def test_plain_emotion_folder_is_unsplit(tmp_path, faces):
    root = tmp_path / "plain"
    for k in range(len(faces)):
        d = (
            root
            / ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"][faces.labels[k]]
        )
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(faces.images[k]).save(d / f"img{k}.png")
    got, _ = load(root, preprocess=RAW)
    assert got.split_names == ["Unsplit"]
    assert sorted(got.labels.tolist()) == sorted(faces.labels.tolist())


def test_test_folder_without_prefix_is_a_test_split(tmp_path, faces):
    root = tmp_path / "t"
    for k in range(3):
        d = root / "test" / "happy"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(faces.images[k]).save(d / f"x{k}.png")
    got, _ = load(root, preprocess=RAW)
    assert got.split_names == ["Test"]


def test_zip_is_read_in_place_and_matches_the_folder(tree, tmp_path):
    z = zip_tree(tree, tmp_path / "data.zip")
    before = sorted(p.name for p in tmp_path.iterdir())
    from_zip, fp_zip = load(z, preprocess=RAW)
    from_dir, fp_dir = load(tree, preprocess=RAW)
    assert canonical(from_zip) == canonical(from_dir)
    assert fp_zip == fp_dir  # the fingerprint depends on content, not on the format
    assert from_zip.ids[0].startswith("fer2013/")
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written beside it


def test_colour_and_odd_sizes_become_48x48_gray(tmp_path):
    root = tmp_path / "c" / "happy"
    root.mkdir(parents=True)
    rgb = np.zeros((96, 96, 3), np.uint8)
    rgb[..., 0] = 200  # pure red
    Image.fromarray(rgb).save(root / "red.png")
    Image.fromarray(np.full((48, 48), 7, np.uint8)).save(root / "gray.png")
    got, _ = load(tmp_path / "c", preprocess=RAW)
    assert got.images.shape == (2, 48, 48) and got.resized == 1
    red = got.images[list(got.ids).index("happy/red.png")]
    assert abs(int(red.mean()) - round(200 * 0.299)) <= 1  # ITU-R 601 luma of red


def test_fer2013_csv(tmp_path, faces):
    path = write_fer2013_csv(faces, tmp_path / "fer2013.csv")
    got, _ = load(path, preprocess=RAW)
    np.testing.assert_array_equal(got.images, faces.images)
    np.testing.assert_array_equal(got.labels, faces.labels)
    assert got.ids[0] == "fer2013.csv:0" and got.split_names == ["Training", "PublicTest"]


def test_ntu_pair_labels_train_and_keeps_test_ids(tmp_path, faces):
    folder = tmp_path / "ntu"
    folder.mkdir()
    lines = ["label,feature"] + [
        f"{lab},{pixel_text(img)}" for lab, img in zip(faces.labels, faces.images, strict=True)
    ]
    (folder / "train.csv").write_text("\n".join(lines) + "\n")
    (folder / "test.csv").write_text(
        "id,feature\n" + "".join(f"{i},{pixel_text(faces.images[i])}\n" for i in range(5))
    )
    got, _ = load(folder, preprocess=RAW)
    assert got.split("Training").labeled
    test = got.split("Test")
    assert (test.labels == -1).all()
    assert test.ids.tolist() == [f"test.csv:{i}" for i in range(5)]
    only_test, _ = load(folder / "test.csv", preprocess=RAW)
    assert only_test.split_names == ["Test"]


@pytest.mark.parametrize("fmt", ["folders", "fer2013-csv", "ntu-csv"])
def test_convert_round_trip(tmp_path, faces, fmt):
    out = convert(faces, fmt, tmp_path / "out")
    back, _ = load(out, preprocess=RAW)
    if fmt == "ntu-csv":
        # train.csv keeps labels; other splits go to test.csv, whose format has none.
        assert canonical(back.split("Training")) == canonical(faces.split("Training"))
        assert sorted(img.tobytes() for img in back.split("Test").images) == sorted(
            img.tobytes() for img in faces.split("PublicTest").images
        )
    else:
        assert canonical(back) == canonical(faces)
    with pytest.raises(FerlabError, match="already exists"):
        convert(faces, fmt, out)


def test_cache_hit_skips_decoding(tree, monkeypatch):
    first, fp1 = load(tree)

    def boom(path):
        raise AssertionError("decoded again")

    monkeypatch.setattr(cache_mod, "read_source", boom)
    second, fp2 = load(tree)
    np.testing.assert_array_equal(first.images, second.images)
    assert fp1 == fp2 and list(cache_mod.cache_dir().glob("*.npz"))


def test_equalization_is_default_recorded_and_switchable(tree):
    eq, _ = load(tree)
    raw, _ = load(tree, preprocess=RAW)
    np.testing.assert_array_equal(eq.images, equalize_hist(raw.images))
    assert eq.preprocess == {"equalize_hist": True, "size": 48}
    assert Preprocess.from_dict(eq.preprocess) == Preprocess()
    assert not np.array_equal(eq.images, raw.images)
    # Equalizing an equalized face changes it very little.
    assert np.abs(equalize_hist(eq.images).astype(int) - eq.images).mean() < 3


def with_duplicates(faces: FaceSet, seed: int = 0) -> FaceSet:
    """`faces` plus planted exact copies: a third of the Training faces copied once or twice
    (some with another label, as in FER2013), and some PublicTest faces copied into Training."""
    rng = np.random.default_rng(seed)
    train = np.flatnonzero(faces.splits == "Training")
    picks = rng.choice(train, size=len(train) // 3, replace=False)
    copies = np.concatenate([picks, picks[: len(picks) // 2]])  # some twice
    test = np.flatnonzero(faces.splits == "PublicTest")
    leaked = test[:3] if len(test) else np.array([], dtype=np.int64)
    index = np.concatenate([copies, leaked])
    labels = faces.labels[index].copy()
    labels[:2] = (labels[:2] + 1) % 7  # copies whose labels disagree
    extra = FaceSet(
        faces.images[index],
        labels,
        np.array(["Training"] * len(index)),
        np.array([f"copy/{k}" for k in range(len(index))]),
    )
    return FaceSet(
        np.concatenate([faces.images, extra.images]),
        np.concatenate([faces.labels, extra.labels]),
        np.concatenate([faces.splits, extra.splits]),
        np.concatenate([faces.ids, extra.ids]),
        source="planted",
    )


def test_carved_split_keeps_identical_faces_on_one_side():
    faces = with_duplicates(synthetic_faces(per_class=30, splits=("Training", "PublicTest")))
    for seed in range(5):
        split = carve_validation(faces, 0.2, seed=seed)
        train, val = split.apply(faces)
        assert set(val.splits.tolist()) == {"Training"}
        assert not set(train.hashes.tolist()) & set(val.hashes.tolist())
        assert len(train) + len(val) == len(faces.split("Training"))
        # Stratified: each class's share of validation within a face or two of 20%.
        per_class = np.bincount(faces.split("Training").labels, minlength=7)
        assert np.all(np.abs(np.bincount(val.labels, minlength=7) - 0.2 * per_class) <= 2.5)


def test_split_seed_draws_other_faces_and_is_reproducible():
    faces = synthetic_faces(per_class=20, splits=("Training",))
    assert carve_validation(faces, 0.1, seed=1).hashes == carve_validation(faces, 0.1, 1).hashes
    assert set(carve_validation(faces, 0.1, seed=1).hashes) != set(
        carve_validation(faces, 0.1, seed=2).hashes
    )


def test_split_from_the_zip_applies_to_the_same_faces_in_every_format(tmp_path):
    faces = with_duplicates(synthetic_faces(per_class=8))
    tree = tmp_path / "tree"
    convert(faces, "folders", tree)
    archive = zip_tree(tree, tmp_path / "fer.zip", top="fer2013")
    split = carve_validation(load(archive, RAW)[0], 0.25, seed=0)
    split.save(tmp_path / "split.json")
    saved = ValidationSplit.load(tmp_path / "split.json")
    other_top = zip_tree(tree, tmp_path / "other.zip", top="elsewhere/data")
    convert(load(archive, RAW)[0], "fer2013-csv", tmp_path / "csv")
    convert(load(archive, RAW)[0], "ntu-csv", tmp_path / "ntu")
    _, zip_val = saved.apply(load(archive, RAW)[0])
    expected = sorted(zip(zip_val.hashes.tolist(), zip_val.labels.tolist(), strict=True))
    assert sorted(h for h, _ in expected) == sorted(split.hashes)
    for source in (other_top, tree, tmp_path / "csv", tmp_path / "ntu"):
        data = load(source, RAW)[0]
        train, val = saved.apply(data)
        assert sorted(zip(val.hashes.tolist(), val.labels.tolist(), strict=True)) == expected
        assert len(train) == len(data.split("Training")) - len(expected)


def test_split_of_other_data_or_naming_test_faces_is_refused(tmp_path):
    faces = synthetic_faces(per_class=10)
    split = carve_validation(faces, 0.2)
    other = synthetic_faces(per_class=10, seed=7)
    with pytest.raises(FerlabError, match="not among its Training faces"):
        split.apply(other)
    # A face moved from Training to PublicTest: the split names a face outside Training.
    moved = faces.splits.copy()
    moved[np.flatnonzero(np.isin(faces.hashes, split.hashes))[0]] = "PublicTest"
    with pytest.raises(FerlabError, match="not among its Training faces"):
        split.apply(FaceSet(faces.images, faces.labels, moved, faces.ids))
    # The same faces with one Training label changed: same hashes, other fingerprint.
    labels = faces.labels.copy()
    labels[np.flatnonzero(faces.splits == "Training")[-1]] ^= 1
    with pytest.raises(FerlabError, match="fingerprint v2:.* differ .*fingerprint v2:"):
        split.apply(FaceSet(faces.images, labels, faces.splits, faces.ids))
    # A hand-edited split naming a PublicTest face.
    test_face = faces.split("PublicTest")
    edited = ValidationSplit(
        [*split.ids, test_face.ids[0]], 0.2, 0, split.fingerprint, [*split.hashes, "f" * 16], 2
    )
    with pytest.raises(FerlabError, match="not among its Training faces"):
        edited.apply(faces)
    # A version-1 split (ids only) naming a PublicTest id.
    legacy = ValidationSplit([*split.ids[:3], str(test_face.ids[0])], 0.1, 0)
    with pytest.raises(FerlabError, match="outside Training"):
        legacy.apply(faces)


def test_cli_train_refuses_a_split_of_other_data(tmp_path):
    from conftest import write_tree

    mine = write_tree(synthetic_faces(per_class=6), tmp_path / "mine")
    other = write_tree(synthetic_faces(per_class=6, seed=5), tmp_path / "other")
    r = run_cli("data", "split", other, "--out", tmp_path / "s.json")
    assert r.returncode == 0, r.stderr
    r = run_cli("train", "--data", mine, "--out", tmp_path / "run", "--split", tmp_path / "s.json")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "not among its Training faces" in r.stderr
    assert not (tmp_path / "run").exists()  # the failed run left nothing behind


def test_info_reports_duplicates_within_and_across_splits(tmp_path):
    faces = with_duplicates(synthetic_faces(per_class=6))
    convert(faces, "fer2013-csv", tmp_path / "csv")
    r = run_cli("data", "info", tmp_path / "csv", "--json")
    assert r.returncode == 0, r.stderr
    dup = json.loads(r.stdout)["duplicates"]
    # 14 Training faces copied, 7 of them twice; the 3 PublicTest faces copied into Training
    # have one copy there, so they count across splits only.
    picks = 42 // 3
    assert dup["within"]["Training"] == {
        "groups": picks,
        "extra_copies": picks + picks // 2,
        "label_conflicts": 2,
    }
    assert dup["across"]["PublicTest in Training"] == 3
    assert dup["blank"]["Training"] == 0
    text = run_cli("data", "info", tmp_path / "csv").stdout
    assert "PublicTest in Training: 3 faces" in text


def test_a_damaged_cache_entry_is_rebuilt_with_a_notice(tree):
    faces, fp = load(tree, RAW)
    (entry,) = cache_mod.cache_dir().glob("*.npz")
    entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
    r = run_cli("data", "info", tree, "--json")
    assert r.returncode == 0 and "Traceback" not in r.stderr
    assert "rebuilding a damaged data cache entry" in r.stderr
    assert json.loads(r.stdout)["fingerprint"] == fp
    again, fp2 = load(tree, RAW)
    assert fp2 == fp and np.array_equal(again.images, faces.images)


@pytest.mark.skipif(fer_data() is None, reason="FERLAB_DATA not set")
def test_carved_split_of_fer2013_has_no_copy_in_training():
    faces, _ = load(os.environ["FERLAB_DATA"], RAW)
    dup = __import__("ferlab.data", fromlist=["x"]).duplicate_summary(faces)
    assert dup["within"]["Training"]["groups"] == 1035
    assert dup["within"]["Training"]["extra_copies"] == 1236
    assert dup["across"]["PublicTest in Training"] == 38
    split = carve_validation(faces, 0.1, seed=0)
    train, val = split.apply(faces)
    assert not np.isin(val.hashes, train.hashes).any()
    assert set(val.splits.tolist()) == {"Training"} and 2800 < len(val) < 2950


def test_validation_split_is_stratified_seeded_and_reloadable(tmp_path):
    faces = synthetic_faces(per_class=20, splits=("Training",))
    split = carve_validation(faces, 0.1, seed=3)
    assert len(split.ids) == 14
    val = faces.select_ids(split.ids)
    assert np.bincount(val.labels).tolist() == [2] * 7
    assert carve_validation(faces, 0.1, seed=3).ids == split.ids
    assert carve_validation(faces, 0.1, seed=4).ids != split.ids
    split.save(tmp_path / "split.json")
    again = ValidationSplit.load(tmp_path / "split.json")
    assert again == split
    train, val = again.apply(faces)
    assert len(train) + len(val) == len(faces)
    assert not set(train.ids.tolist()) & set(val.ids.tolist())


def test_cli_info_json(tree):
    r = run_cli("data", "info", tree, "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["splits"]["Training"]["total"] == 42
    assert info["splits"]["PublicTest"]["per_class"]["happy"] == 6


def test_cli_split_writes_a_loadable_file(tree, tmp_path):
    r = run_cli("data", "split", tree, "--out", tmp_path / "s.json", "--val-fraction", "0.5")
    assert r.returncode == 0, r.stderr
    assert len(ValidationSplit.load(tmp_path / "s.json").ids) == 21


def _bad_csv(tmp_path, header, row):
    p = tmp_path / "fer2013.csv"
    p.write_text(f"{header}\n{row}\n")
    return p


GOOD_PIXELS = " ".join(["10"] * 2304)


@pytest.mark.parametrize(
    "case, expect",
    [
        ("missing", "no such file"),
        ("corrupt", "not a readable image"),
        ("columns", "expected"),
        ("pixel_count", "2303 pixel values"),
        ("non_numeric", "non-numeric"),
        ("label_range", "out of range"),
        ("empty", "no face images"),
        ("unknown_emotion", "unknown emotion folder 'bored'"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(tmp_path, tree, case, expect):
    if case == "missing":
        target = tmp_path / "nope"
    elif case == "corrupt":
        bad = next(tree.rglob("*.png"))
        bad.write_bytes(b"\x89PNG\r\n\x1a\n broken")
        target = tree
    elif case == "columns":
        target = _bad_csv(tmp_path, "emotion,pix,Usage", f"0,{GOOD_PIXELS},Training")
    elif case == "pixel_count":
        target = _bad_csv(tmp_path, "emotion,pixels,Usage", f"0,{' '.join(['1'] * 2303)},Training")
    elif case == "non_numeric":
        target = _bad_csv(tmp_path, "emotion,pixels,Usage", f"0,{GOOD_PIXELS[:-2]}x1,Training")
    elif case == "label_range":
        target = _bad_csv(tmp_path, "emotion,pixels,Usage", f"9,{GOOD_PIXELS},Training")
    elif case == "empty":
        target = tmp_path / "empty"
        target.mkdir()
    else:
        (tree / "train" / "bored").mkdir()
        Image.fromarray(np.zeros((48, 48), np.uint8)).save(tree / "train" / "bored" / "a.png")
        target = tree
    r = run_cli("data", "info", target)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert expect in lines[0]
    if case in ("pixel_count", "non_numeric", "label_range"):
        assert "row 2" in lines[0] and "fer2013.csv" in lines[0]
    if case == "corrupt":
        assert ".png" in lines[0]


@pytest.mark.skipif(fer_data() is None, reason="FERLAB_DATA not set")
def test_shared_fer2013_counts():
    readme = {
        "Training": [3995, 436, 4097, 7215, 4830, 3171, 4965],
        "PublicTest": [467, 56, 496, 895, 653, 415, 607],
    }
    faces, _ = load(os.environ["FERLAB_DATA"], preprocess=RAW)
    info = faces.summary()["splits"]
    assert set(info) == set(readme)
    for split, counts in readme.items():
        assert list(info[split]["per_class"].values()) == counts
        assert info[split]["total"] == sum(counts)


def test_equalization_removes_global_intensity_differences():
    # The public FER2013 download is not equalized: its faces differ from the shared copy by
    # a global monotonic intensity change. Equalizing both makes them (almost) the same face.
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, size=(20, 48, 48)).astype(np.uint8)
    shared = equalize_hist(base)
    x = shared.astype(float) / 255
    darker = np.round(255 * (0.1 + 0.6 * x**1.8)).astype(np.uint8)  # low contrast, dark
    before = np.abs(darker.astype(int) - shared).mean()
    after = np.abs(equalize_hist(darker).astype(int) - shared).mean()
    # What remains is the gray levels the compression merged, not the global change.
    assert before > 40 and after < before / 5


def test_a_course_csv_is_recognised_by_its_header_not_its_name(tmp_path, faces):
    lines = ["label,feature"] + [
        f"{lab},{pixel_text(img)}"
        for lab, img in zip(faces.labels[:4], faces.images[:4], strict=True)
    ]
    (tmp_path / "my_train.csv").write_text("\n".join(lines) + "\n")
    got, _ = load(tmp_path / "my_train.csv", preprocess=RAW)
    assert got.split_names == ["Training"] and got.labels.tolist() == faces.labels[:4].tolist()
    assert got.ids[0] == "my_train.csv:0"


def test_linked_split_and_emotion_folders_are_read_and_loops_refused(tmp_path):
    faces = synthetic_faces(per_class=2)
    elsewhere = write_tree(faces, tmp_path / "elsewhere")
    tree = tmp_path / "tree"
    (tree / "train").mkdir(parents=True)
    (tree / "test").symlink_to(elsewhere / "test")  # a linked split folder
    for emotion in (elsewhere / "train").iterdir():  # linked emotion folders
        (tree / "train" / emotion.name).symlink_to(emotion)
    got, _ = load(tree, RAW)
    assert len(got) == len(faces) and sorted(got.hashes) == sorted(faces.hashes)
    (tree / "train" / "happy" / "again").symlink_to(tree / "train")
    r = run_cli("data", "info", tree)
    assert r.returncode == 2 and "already read" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("member", ["happy_face", "label.csv", "fer2013new.csv", "pixels"])
def test_zip_members_that_inflate_past_any_face_or_label_file_are_one_line(member, tmp_path):
    import zipfile

    import cv2

    from ferlab.data.readers import MAX_MEMBER_BYTES

    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zeros = b"\0" * (MAX_MEMBER_BYTES + 1)
        if member == "happy_face":
            zf.writestr("fer2013/train/happy/Training_9.png", zeros)
        elif member == "label.csv":
            zf.writestr("ferplus/FER2013Train/label.csv", b"\n" * (MAX_MEMBER_BYTES + 1))
            zf.writestr("ferplus/FER2013Train/fer0000000.png", b"")
        elif member == "fer2013new.csv":
            zf.writestr("fer2013.csv", "emotion,pixels,Usage\n")
            zf.writestr("fer2013new.csv", b"\n" * (64 * 2**20 + 1))
        else:  # a small PNG of 25 Mpixels
            ok, png = cv2.imencode(".png", np.zeros((5000, 5000), np.uint8))
            zf.writestr("fer2013/train/happy/Training_9.png", png.tobytes())
    assert path.stat().st_size < 2_000_000
    r = run_cli("data", "info", path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "at most" in r.stderr or "image too large" in r.stderr, r.stderr
