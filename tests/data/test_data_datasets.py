"""load_dataset: registered IDX sets, IDX folders, .npz files, image folders, real Fashion-MNIST."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from archtune.data import Dataset, list_datasets, load_dataset
from archtune.errors import ArchtuneError


def test_list_datasets() -> None:
    assert list_datasets() == ["fashion-mnist", "mnist"]


def test_registered_idx_from_data_dir(
    tmp_path: Path, isolated_env: Path, idx_folder: Callable
) -> None:
    arrays = idx_folder(tmp_path / "fm")
    ds = load_dataset("fashion-mnist", data_dir=tmp_path / "fm", download=False)
    assert isinstance(ds, Dataset)
    assert ds.x_train.dtype == torch.uint8 and ds.x_train.shape == (40, 1, 6, 5)
    assert ds.y_train.dtype == torch.int64 and ds.y_test.shape == (20,)
    assert ds.input_shape == (1, 6, 5) and ds.num_classes == 10
    assert ds.classes[0] == "T-shirt/top"
    assert ds.source == str((tmp_path / "fm").resolve())
    np.testing.assert_array_equal(ds.x_test[:, 0].numpy(), arrays["test_images"])
    np.testing.assert_array_equal(ds.y_train.numpy(), arrays["train_labels"])
    assert "train=40" in repr(ds)


def test_idx_label_out_of_range(tmp_path: Path, isolated_env: Path, idx_folder: Callable) -> None:
    from archtune.data.idx import write_idx

    idx_folder(tmp_path / "fm")
    write_idx(tmp_path / "fm" / "t10k-labels-idx1-ubyte.gz", np.array([0] * 19 + [12], np.uint8))
    with pytest.raises(ArchtuneError, match=r"t10k-labels.*label 12 at index 19.*expected 0\.\.9"):
        load_dataset("fashion-mnist", data_dir=tmp_path / "fm")


def test_idx_count_mismatch(tmp_path: Path, isolated_env: Path, idx_folder: Callable) -> None:
    from archtune.data.idx import write_idx

    idx_folder(tmp_path / "fm")
    write_idx(tmp_path / "fm" / "train-labels-idx1-ubyte.gz", np.zeros(39, np.uint8))
    with pytest.raises(ArchtuneError, match=r"train-images.*40 images but.*39 labels"):
        load_dataset("mnist", data_dir=tmp_path / "fm")


def test_idx_folder_as_path_with_resize_and_channels(tmp_path: Path, idx_folder: Callable) -> None:
    idx_folder(tmp_path / "digits", gz=False)
    ds = load_dataset(str(tmp_path / "digits"), image_size=(12, 10), channels=3)
    assert ds.name == "digits" and ds.classes == [str(i) for i in range(10)]
    assert ds.x_train.shape == (40, 3, 12, 10) and ds.x_train.dtype == torch.uint8
    assert torch.equal(ds.x_train[:, 0], ds.x_train[:, 2])


def test_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(ArchtuneError, match="did you mean 'fashion-mnist'.*neither a registered"):
        load_dataset("fashion-mnst")
    txt = tmp_path / "data.csv"
    txt.write_text("a,b\n")
    with pytest.raises(ArchtuneError, match=r"data\.csv: unsupported data file"):
        load_dataset(str(txt))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"image_size": (0, 5)}, "image_size"),
        ({"image_size": "28"}, "image_size"),
        ({"channels": 2}, "channels"),
        ({"test_fraction": 0.0}, "test_fraction"),
        ({"test_fraction": 1.0}, "test_fraction"),
    ],
)
def test_bad_options(kwargs: dict, match: str) -> None:
    with pytest.raises(ArchtuneError, match=match):
        load_dataset("fashion-mnist", download=False, **kwargs)


# ---------------------------------------------------------------- npz


def _labels(n: int, k: int = 3) -> np.ndarray:
    return np.arange(n) % k


def test_npz_nhw_uint8_with_test_and_classes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (30, 8, 7), dtype=np.uint8)
    xt = rng.integers(0, 256, (9, 8, 7), dtype=np.uint8)
    path = tmp_path / "shapes.npz"
    np.savez(
        path,
        x_train=x,
        y_train=_labels(30),
        x_test=xt,
        y_test=_labels(9),
        classes=np.array(["circle", "square", "star"]),
    )
    ds = load_dataset(str(path))
    assert ds.name == "shapes" and ds.classes == ["circle", "square", "star"]
    assert ds.x_train.shape == (30, 1, 8, 7)
    np.testing.assert_array_equal(ds.x_train[:, 0].numpy(), x)
    np.testing.assert_array_equal(ds.x_test[:, 0].numpy(), xt)
    assert ds.y_test.tolist() == _labels(9).tolist()


def test_npz_nhwc_float_without_test_split(tmp_path: Path) -> None:
    x = np.random.default_rng(0).random((50, 6, 6, 3), dtype=np.float32)
    y = _labels(50, 5)
    path = tmp_path / "rgb.npz"
    np.savez(path, x_train=x, y_train=y)
    ds = load_dataset(str(path), test_fraction=0.2, seed=3)
    assert ds.input_shape == (3, 6, 6)
    assert len(ds.y_train) == 40 and len(ds.y_test) == 10
    assert torch.bincount(ds.y_test).tolist() == [2] * 5  # stratified
    assert ds.classes == ["0", "1", "2", "3", "4"]
    # pixels: float [0, 1] -> uint8, channels moved first; every test image comes from x
    expected = np.round(x * 255).astype(np.uint8).transpose(0, 3, 1, 2)
    got = np.concatenate([ds.x_train.numpy(), ds.x_test.numpy()])
    assert sorted(map(bytes, got)) == sorted(map(bytes, expected))
    again = load_dataset(str(path), test_fraction=0.2, seed=3)
    assert torch.equal(again.x_test, ds.x_test)


def test_npz_nchw(tmp_path: Path) -> None:
    x = np.random.default_rng(0).integers(0, 256, (12, 3, 5, 4), dtype=np.uint8)
    path = tmp_path / "chw.npz"
    np.savez(path, x_train=x, y_train=_labels(12, 2), x_test=x[:4], y_test=_labels(4, 2))
    ds = load_dataset(str(path), channels=1)
    assert ds.input_shape == (1, 5, 4)
    gray = np.round(x[:, 0] * 0.299 + x[:, 1] * 0.587 + x[:, 2] * 0.114)
    np.testing.assert_allclose(ds.x_train[:, 0].numpy(), gray, atol=1)


@pytest.mark.parametrize(
    "arrays, match",
    [
        ({"x_train": np.zeros((4, 3, 3), np.uint8)}, r"missing array\(s\) y_train"),
        ({"images": np.zeros((4, 3, 3), np.uint8)}, r"missing array\(s\) x_train, y_train.*images"),
        (
            {
                "x_train": np.zeros((4, 3, 3), np.uint8),
                "y_train": _labels(4, 2),
                "x_test": np.zeros((2, 3, 3), np.uint8),
            },
            "has x_test but not y_test",
        ),
        (
            {"x_train": np.zeros((4, 3, 3), np.uint8), "y_train": _labels(5, 2)},
            r"4 images but 5 labels",
        ),
        (
            {"x_train": np.zeros((4, 3, 3), np.uint8), "y_train": np.array([0, 1, -1, 1])},
            r"label -1 at index 2",
        ),
        (
            {
                "x_train": np.zeros((4, 3, 3), np.uint8),
                "y_train": np.array([0, 1, 2, 1]),
                "classes": np.array(["a", "b"]),
            },
            r"label 2 at index 2.*expected 0\.\.1",
        ),
        (
            {"x_train": np.full((4, 3, 3), 2.0), "y_train": _labels(4, 2)},
            r"float images span 2\.\.2; expected values in \[0, 1\]",
        ),
        (
            {"x_train": np.zeros((4, 5, 5, 4), np.uint8), "y_train": _labels(4, 2)},
            r"expected 1 or 3 channels",
        ),
        ({"x_train": np.zeros((4, 9), np.uint8), "y_train": _labels(4, 2)}, r"shape \(4, 9\)"),
        (
            {"x_train": np.zeros((4, 3, 3), np.uint8), "y_train": np.array([0.5, 1, 0, 1])},
            "labels are float64; expected integers",
        ),
        (
            {
                "x_train": np.zeros((4, 3, 3), np.uint8),
                "y_train": _labels(4, 2),
                "x_test": np.zeros((2, 4, 3), np.uint8),
                "y_test": _labels(2, 2),
            },
            "x_test images are",
        ),
    ],
)
def test_npz_errors(tmp_path: Path, arrays: dict, match: str) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ArchtuneError, match=r"bad\.npz.*" + match):
        load_dataset(str(path))


def test_npz_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "broken.npz"
    path.write_bytes(b"this is not a zip archive")
    with pytest.raises(ArchtuneError, match=r"broken\.npz: cannot read \.npz"):
        load_dataset(str(path))


# ---------------------------------------------------------------- image folders


def _img(path: Path, size: tuple[int, int], mode: str, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    color = value if mode == "L" else (value, 255 - value, value // 2)
    Image.new(mode, size, color).save(path)


def _folder(
    root: Path,
    classes: dict[str, int],
    mode: str = "L",
    ext: str = ".png",
    size: tuple[int, int] = (5, 4),
) -> None:
    for ci, (name, n) in enumerate(classes.items()):
        for i in range(n):
            _img(root / name / f"img{i}{ext}", size, mode, 40 * ci + i)


def test_image_folder_grayscale_with_split(tmp_path: Path) -> None:
    _folder(tmp_path / "pets", {"dog": 5, "cat": 5})
    (tmp_path / "pets" / "cat" / "notes.txt").write_text("ignored")
    ds = load_dataset(str(tmp_path / "pets"), test_fraction=0.4, seed=1)
    assert ds.classes == ["cat", "dog"]  # sorted folder names
    assert ds.input_shape == (1, 4, 5)  # (C, H, W) from PIL's (W=5, H=4)
    assert len(ds.y_train) == 6 and len(ds.y_test) == 4
    assert torch.bincount(ds.y_test, minlength=2).tolist() == [2, 2]
    # class "cat" (label 0) images were written with values 40..44, dog with 0..4
    for x, y in zip(ds.x_train, ds.y_train, strict=True):
        v = int(x[0, 0, 0])
        assert (40 <= v <= 44) if y == 0 else (0 <= v <= 4)


def test_image_folder_train_test_rgb_jpeg(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    _folder(root / "train", {"a": 3, "b": 2, "c": 2}, mode="RGB", ext=".jpg", size=(8, 8))
    _folder(root / "test", {"a": 1, "c": 1}, mode="RGB", ext=".jpg", size=(8, 8))
    ds = load_dataset(str(root))
    assert ds.classes == ["a", "b", "c"]
    assert ds.input_shape == (3, 8, 8)
    assert ds.y_train.tolist() == [0, 0, 0, 1, 1, 2, 2] and ds.y_test.tolist() == [0, 2]
    # class b images: (40+i, 215-i, 20+i//2) -> channels differ, so RGB really kept
    px = ds.x_train[3, :, 4, 4].tolist()
    assert abs(px[0] - 40) <= 3 and abs(px[1] - 215) <= 3 and abs(px[2] - 20) <= 3


def test_image_folder_mixed_sizes_and_modes(tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    _folder(root, {"x": 3, "y": 3}, size=(6, 6))
    _img(root / "x" / "big.bmp", (12, 10), "L", 100)
    _img(root / "y" / "color.webp", (6, 6), "RGB", 100)
    ds = load_dataset(str(root), test_fraction=0.5)
    assert ds.input_shape == (3, 6, 6)  # the median size; one RGB image -> 3 channels
    forced = load_dataset(str(root), test_fraction=0.5, image_size=(3, 4), channels=1)
    assert forced.input_shape == (1, 3, 4)


def test_image_folder_one_class(tmp_path: Path) -> None:
    _folder(tmp_path / "one", {"only": 4})
    with pytest.raises(ArchtuneError, match=r"one: found 1 class folder\(s\) \(only\).*at least 2"):
        load_dataset(str(tmp_path / "one"))


def test_image_folder_empty_class(tmp_path: Path) -> None:
    _folder(tmp_path / "ds", {"a": 2, "b": 2})
    (tmp_path / "ds" / "c").mkdir()
    (tmp_path / "ds" / "c" / "readme.md").write_text("no images")
    with pytest.raises(ArchtuneError, match=r"ds/c: empty class folder"):
        load_dataset(str(tmp_path / "ds"))


def test_image_folder_unreadable_image(tmp_path: Path) -> None:
    _folder(tmp_path / "ds", {"a": 2, "b": 2})
    bad = tmp_path / "ds" / "b" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    with pytest.raises(ArchtuneError, match=r"1 unreadable image file.*\n.*b/broken\.png: "):
        load_dataset(str(tmp_path / "ds"))


def test_image_folder_truncated_image(tmp_path: Path) -> None:
    _folder(tmp_path / "ds", {"a": 2, "b": 2})
    good = tmp_path / "ds" / "a" / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40), np.uint8)).save(good)
    good.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ArchtuneError, match=r"1 unreadable image file.*\n.*a/noise\.png: .*truncated"):
        load_dataset(str(tmp_path / "ds"))


def test_image_folder_test_class_not_in_train(tmp_path: Path) -> None:
    _folder(tmp_path / "ds" / "train", {"a": 2, "b": 2})
    _folder(tmp_path / "ds" / "test", {"a": 1, "z": 1})
    with pytest.raises(ArchtuneError, match=r"test: class folder\(s\) z not in the training"):
        load_dataset(str(tmp_path / "ds"))


def test_image_folder_too_small_to_split(tmp_path: Path) -> None:
    _folder(tmp_path / "ds", {"a": 1, "b": 3})
    with pytest.raises(ArchtuneError, match=r"ds: cannot set aside a stratified test split"):
        load_dataset(str(tmp_path / "ds"))


# ---------------------------------------------------------------- real data


@pytest.mark.slow
def test_real_fashion_mnist(
    shared_datasets: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARCHTUNE_DATA", str(shared_datasets))
    ds = load_dataset("fashion-mnist", download=False)
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert ds.x_train.dtype == torch.uint8 and ds.y_train.dtype == torch.int64
    assert ds.classes == [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ]
    assert torch.bincount(ds.y_train).tolist() == [6000] * 10
    assert torch.bincount(ds.y_test).tolist() == [1000] * 10
    assert Path(ds.source).resolve() == (shared_datasets / "fashion-mnist").resolve()
    assert abs(ds.x_train.float().mean().item() / 255 - 0.2860) < 5e-4
    assert abs(ds.x_test.float().mean().item() / 255 - 0.2868) < 5e-4


@pytest.mark.parametrize("resize", ["fit", "crop"])
def test_npz_resized_keeps_the_aspect_ratio(tmp_path: Path, resize: str) -> None:
    """A wide array image brought to a square: fit pads above and below with the border's level,
    crop keeps the centre; neither stretches the picture."""
    x = np.full((2, 10, 20), 40, np.uint8)
    x[:, :, 8:12] = 250  # a bright vertical bar in the middle, 4 of 20 columns
    path = tmp_path / "wide.npz"
    np.savez(path, x_train=x, y_train=np.array([0, 1]), x_test=x, y_test=np.array([0, 1]))
    ds = load_dataset(path, image_size=(20, 20), resize=resize)
    img = ds.x_train[0, 0]
    assert img.shape == (20, 20)
    bright = (img[10] > 150).sum().item()
    if resize == "fit":  # 10x20 -> 10x20 inside 20x20: the bar stays 4 columns wide
        assert bright == 4
        assert (img[:5] == 40).all() and (img[-5:] == 40).all()  # padded with the border's level
    else:  # 10x20 -> 20x40, the centre 20 columns kept: the bar is 8 columns wide
        assert bright == 8
    assert not (img[:, :2] > 150).any()  # a stretched bar would not fit either
