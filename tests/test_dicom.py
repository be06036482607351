"""medrepro.data.dicom: HU reading, the RSNA quirks, errors, windows and the fast RGB path."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from medrepro.data import dicom
from medrepro.core import paths
from medrepro.reporting import plots
from medrepro.data.dicom import DicomReadError


def _stored(seed: int = 0, shape=(64, 64), lo=-1024, hi=2000, dtype=np.int16) -> np.ndarray:
    return np.random.default_rng(seed).integers(lo, hi, shape).astype(dtype)


def _real_files():
    shared = paths.shared_data_dir()
    folder = shared / "rsna_ich_samples" if shared else None
    if folder is None or not folder.is_dir():
        pytest.skip("no ../shared/data/rsna_ich_samples")
    return sorted(folder.glob("*.dcm"))


# ---------------------------------------------------------------------------- HU

def test_read_hu_applies_slope_and_decimal_string_intercept(tmp_path):
    st = _stored(1)
    path = dicom.write_slice(tmp_path / "a.dcm", st, slope=2.0, intercept=-1024.0)
    assert pydicom.dcmread(path).RescaleIntercept.original_string == "-1024.000000"
    hu = dicom.read_hu(path)
    assert hu.dtype == np.float32 and hu.shape == (64, 64)
    np.testing.assert_array_equal(hu, st.astype(np.float32) * 2 - 1024)


def test_missing_rescale_tags_mean_slope_1_intercept_0(tmp_path):
    st = _stored(2)
    path = dicom.write_slice(tmp_path / "a.dcm", st, intercept=None)
    assert "RescaleIntercept" not in pydicom.dcmread(path)
    np.testing.assert_array_equal(dicom.read_hu(path), st.astype(np.float32))


def test_rsna_12bit_quirk_is_corrected(tmp_path):
    # 12-bit unsigned with intercept > -100: add 1000, wrap >= 4096, intercept -1000.
    st = np.array([[0, 100, 3095, 3096, 3500, 4095]], dtype=np.uint16)
    path = dicom.write_slice(tmp_path / "q.dcm", st, intercept=0.0, bits_stored=12)
    assert dicom.read_slice(path).rsna_quirk
    np.testing.assert_array_equal(dicom.read_hu(path),
                                  [[0, 100, 3095, -1000, -596, -1]])


def test_12bit_with_a_normal_intercept_is_left_alone(tmp_path):
    st = np.array([[0, 1024, 4095]], dtype=np.uint16)
    path = dicom.write_slice(tmp_path / "n.dcm", st, intercept=-1024.0, bits_stored=12)
    assert not dicom.read_slice(path).rsna_quirk
    np.testing.assert_array_equal(dicom.read_hu(path), [[-1024, 0, 3071]])


def test_bits_above_bits_stored_are_ignored(tmp_path):
    st = np.array([[0x1000 | 5, 7]], dtype=np.uint16)  # a stray bit 12 in a 12-bit image
    path = dicom.write_slice(tmp_path / "b.dcm", st, intercept=-1024.0, bits_stored=12)
    np.testing.assert_array_equal(dicom.read_hu(path), [[5 - 1024, 7 - 1024]])


@pytest.mark.parametrize("dtype,bits", [(np.int16, 16), (np.uint16, 12)])
def test_monochrome1_hu_are_stored_times_slope_plus_intercept(tmp_path, dtype, bits):
    # MONOCHROME1 only changes the display after the VOI transform; the modality LUT gives HU.
    lo, hi = (-1024, 3000) if dtype == np.int16 else (0, 4096)
    st = _stored(3, lo=lo, hi=hi, dtype=dtype)
    m1 = dicom.write_slice(tmp_path / "m1.dcm", st, bits_stored=bits, slope=2.0,
                           intercept=-1024.0, photometric="MONOCHROME1")
    m2 = dicom.write_slice(tmp_path / "m2.dcm", st, bits_stored=bits, slope=2.0,
                           intercept=-1024.0)
    assert dicom.read_slice(m1).monochrome1
    np.testing.assert_array_equal(dicom.read_hu(m1), st.astype(np.float32) * 2.0 - 1024.0)
    np.testing.assert_array_equal(dicom.read_hu(m1), dicom.read_hu(m2))
    # The windowed RGB the models see is the same too (brighter = denser).
    np.testing.assert_array_equal(dicom.read_rgb(m1, size=8), dicom.read_rgb(m2, size=8))


def test_fast_parser_and_pydicom_agree(tmp_path, monkeypatch):
    files = [dicom.write_slice(tmp_path / "e.dcm", _stored(4)),
             dicom.write_slice(tmp_path / "i.dcm", _stored(5),
                               transfer_syntax=ImplicitVRLittleEndian),
             dicom.write_slice(tmp_path / "u.dcm", _stored(6, lo=0, hi=4096, dtype=np.uint16),
                               bits_stored=12, intercept=0.0, patient_id="ID_x")]
    fast = [dicom.read_slice(f) for f in files]
    assert all(dicom._parse_native(str(f)) is not None for f in files)
    monkeypatch.setattr(dicom, "_parse_native", lambda path: None)
    for a, f in zip(fast, files):
        b = dicom.read_slice(f)
        np.testing.assert_array_equal(a.codes, b.codes)
        assert (a.slope, a.intercept, a.bits_stored, a.signed, a.monochrome1, a.rsna_quirk,
                a.patient_id) == (b.slope, b.intercept, b.bits_stored, b.signed, b.monochrome1,
                                  b.rsna_quirk, b.patient_id)


def test_real_samples_read_without_warnings(caplog):
    files = _real_files()
    caplog.set_level(logging.WARNING, logger="pydicom")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        slices = [dicom.read_slice(f) for f in files]
        hus = [dicom.read_hu(f) for f in files]
    assert caught == [] and caplog.records == []
    assert sum(s.bits_stored == 12 for s in slices) == 4
    for f, hu in zip(files, hus):
        ds = pydicom.dcmread(f)
        ref = ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope) + float(
            ds.RescaleIntercept)
        np.testing.assert_array_equal(hu, ref)
        assert hu.shape == (512, 512)


# ---------------------------------------------------------------------------- errors

def test_zero_bytes(tmp_path):
    path = tmp_path / "empty.dcm"
    path.write_bytes(b"")
    with pytest.raises(DicomReadError, match=r"empty\.dcm: empty file"):
        dicom.read_hu(path)


def test_missing_file(tmp_path):
    with pytest.raises(DicomReadError, match=r"nope\.dcm: missing file"):
        dicom.read_hu(tmp_path / "nope.dcm")


def test_non_dicom_bytes(tmp_path):
    path = tmp_path / "text.dcm"
    path.write_bytes(b"this is not a DICOM file\n" * 40)
    with pytest.raises(DicomReadError, match=r"text\.dcm: not a DICOM file") as err:
        dicom.read_hu(path)
    assert err.value.problem == "not a DICOM file"


def test_truncated_pydicom_sample():
    path = get_testdata_file("MR_truncated.dcm")
    with pytest.raises(DicomReadError, match=r"MR_truncated\.dcm: truncated .*8130 of 8192"):
        dicom.read_hu(path)


def test_truncated_pixel_data_and_header(tmp_path):
    whole = dicom.write_slice(tmp_path / "w.dcm", _stored(8)).read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(whole[:-100])
    with pytest.raises(DicomReadError, match=r"cut\.dcm: truncated"):
        dicom.read_hu(cut)
    cut.write_bytes(whole[:300])  # ends inside the header
    with pytest.raises(DicomReadError, match=r"cut\.dcm: no PixelData .*300 bytes"):
        dicom.read_hu(cut)


def _save(ds: Dataset, path) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.save_as(path, enforce_file_format=True)


def test_no_pixel_data(tmp_path):
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.Rows, ds.Columns = 8, 8
    _save(ds, tmp_path / "nopix.dcm")
    with pytest.raises(DicomReadError, match=r"nopix\.dcm: no PixelData"):
        dicom.read_hu(tmp_path / "nopix.dcm")


@pytest.mark.parametrize("tag,value", [("SamplesPerPixel", 3), ("NumberOfFrames", "2")])
def test_unexpected_shape(tmp_path, tag, value):
    path = dicom.write_slice(tmp_path / "s.dcm", _stored(9))
    ds = pydicom.dcmread(path)
    setattr(ds, tag, value)
    ds.save_as(path)
    with pytest.raises(DicomReadError, match=rf"s\.dcm: unexpected shape .*{tag}={value}"):
        dicom.read_hu(path)


def test_compressed_syntax_decodes_with_the_optional_decoder():
    path = get_testdata_file("MR_small_jpeg_ls_lossless.dcm")
    ds = pydicom.dcmread(path)
    ref = ds.pixel_array.astype(np.float32) * float(ds.get("RescaleSlope", 1)) + float(
        ds.get("RescaleIntercept", 0))
    np.testing.assert_array_equal(dicom.read_hu(path), ref)


def test_compressed_syntax_without_decoder_names_the_extra(monkeypatch):
    from pydicom.pixels.decoders.base import get_decoder
    from pydicom.uid import JPEGLSLossless

    monkeypatch.setattr(get_decoder(JPEGLSLossless), "_available", {})
    with pytest.raises(DicomReadError, match=r"needs a decoder.*medrepro\[dicom-codecs\]"):
        dicom.read_hu(get_testdata_file("MR_small_jpeg_ls_lossless.dcm"))


# ---------------------------------------------------------------------------- windows

def test_named_windows():
    assert dicom.BRAIN_WINDOW == (40, 80) and dicom.SUBDURAL_WINDOW == (80, 200)
    assert dicom.BONE_WINDOW == (600, 2800)
    assert dicom.RSNA_WINDOWS == (dicom.BRAIN_WINDOW, dicom.SUBDURAL_WINDOW, dicom.BONE_WINDOW)


def test_window_maps_level_and_edges():
    out = dicom.window(np.array([-100.0, 0.0, 20.0, 40.0, 80.0, 1000.0]), 40, 80)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [0, 0, 64, 128, 255, 255])  # 63.75 -> 64, 127.5 -> 128
    with pytest.raises(ValueError, match="width must be > 0"):
        dicom.window(np.zeros(3), 40, 0)


def test_window_rgb_channels_are_the_three_windows():
    hu = np.full((448, 448), 60.0, dtype=np.float32)  # brain 191, subdural 102, bone 7
    rgb = dicom.window_rgb(hu, size=224)
    assert rgb.shape == (224, 224, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[0, 0], [dicom.window(60.0, *w) for w in dicom.RSNA_WINDOWS])
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) == 1
    with pytest.raises(ValueError, match="exactly 3 windows"):
        dicom.window_rgb(hu, windows=dicom.RSNA_WINDOWS[:2])


def test_windowing_happens_before_resizing():
    # A 1-pixel checkerboard of -1000 / +1000 HU: windowed first, brain is 0/255 -> ~128 grey;
    # resized first, the HU average 0 would give brain 0.
    hu = np.where(np.indices((448, 448)).sum(0) % 2, 1000.0, -1000.0).astype(np.float32)
    rgb = dicom.window_rgb(hu, size=224)
    assert abs(int(rgb[..., 0].mean()) - 128) <= 1


def test_resize_rgb_matches_an_antialiased_resize_closely():
    from PIL import Image

    yy, xx = np.mgrid[0:512, 0:512]
    rgb = np.stack([(xx // 2) % 256, (yy // 2) % 256, ((xx + yy) // 4) % 256], -1).astype(np.uint8)
    ours = dicom.resize_rgb(rgb, size=224).astype(int)
    ref = np.asarray(Image.fromarray(rgb).resize((224, 224), Image.BILINEAR)).astype(int)
    assert ours.shape == (224, 224, 3)
    assert np.abs(ours - ref)[4:-4, 4:-4].mean() < 1.5  # away from the wrap-around edges
    flat = np.full((300, 200, 3), 77, dtype=np.uint8)
    np.testing.assert_array_equal(dicom.resize_rgb(flat, size=64), 77)


@pytest.mark.parametrize("shape,size", [((512, 512), 224), ((512, 512), 112), ((64, 64), 32),
                                        ((100, 60), 48), ((48, 48), 64), ((224, 224), 224)])
def test_table_path_equals_window_rgb_of_read_hu(tmp_path, shape, size):
    st = _stored(10, shape=shape, lo=-1100, hi=1600)
    path = dicom.write_slice(tmp_path / "t.dcm", st)
    fast = dicom.read_rgb(path, size=size)
    assert fast.shape == (size, size, 3) and fast.dtype == np.uint8
    np.testing.assert_array_equal(fast, dicom.window_rgb(dicom.read_hu(path), size=size))
    out = np.zeros((size, size, 3), np.uint8)
    dicom.slice_rgb(dicom.read_slice(path), size=size, out=out)
    np.testing.assert_array_equal(out, fast)


def test_table_path_equals_window_rgb_on_real_samples():
    for f in _real_files()[::4]:
        np.testing.assert_array_equal(dicom.read_rgb(f), dicom.window_rgb(dicom.read_hu(f)))


def test_plot_windows_shows_hu_three_windows_and_rgb(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    path = dicom.write_slice(tmp_path / "p.dcm", _stored(11, shape=(64, 64)))
    fig = plots.plot_windows(path, size=32)
    titles = [ax.get_title() for ax in fig.axes]
    assert len(titles) == 5 and titles[1].startswith("R: brain") and titles[-1] == "RGB 32×32"
    assert fig.axes[-1].get_images()[0].get_array().shape == (32, 32, 3)
