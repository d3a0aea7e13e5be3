"""The AV-MNIST experiment (scripts/av_mnist.py, scripts/av_mnist_data.py): its log-Mel front end against
librosa, its readers on files in MNIST's and AudioMNIST's own formats (synthetic content: nothing can be
downloaded here), the espeak-ng data, the contrastive term against OpenCLIP's ClipLoss, the errors, and one
short training run whose reported numbers are recomputed from the saved embeddings."""
from __future__ import annotations

import gzip
import json
import os
import struct
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import av_mnist  # noqa: E402
import av_mnist_data as data  # noqa: E402
import modgap  # noqa: E402

MEL = {"n_mels": 128, "fmax": 8000, "hop_length": 512, "n_fft": 2048}


@pytest.mark.parametrize("sample_rate,n_fft,n_mels,fmax", [(22050, 2048, 128, 8000), (48000, 2048, 128, 8000),
                                                           (16000, 512, 40, None), (22050, 1024, 64, 11025)])
def test_mel_filterbank_equals_librosa(sample_rate, n_fft, n_mels, fmax):
    librosa = pytest.importorskip("librosa")
    expected = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmax=fmax, dtype=np.float64)
    ours = data.mel_filterbank(sample_rate, n_fft, n_mels, fmax=fmax).numpy()
    np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-14)


def test_log_mel_spectrogram_equals_librosa():
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(0)
    t = np.arange(22050) / 22050
    clips = np.stack([0.3 * np.sin(2 * np.pi * 440 * t) + 0.01 * rng.standard_normal(t.size),
                      rng.standard_normal(t.size) * np.exp(-3 * t),
                      np.concatenate([np.zeros(9000), 0.5 * np.sin(2 * np.pi * 3000 * t[:13050])])])
    ours = data.log_mel_spectrogram(torch.from_numpy(clips), 22050, **MEL).numpy()
    assert ours.shape == (3, 128, 44)
    for clip, got in zip(clips, ours):
        mel = librosa.feature.melspectrogram(y=clip, sr=22050, n_fft=2048, hop_length=512, n_mels=128, fmax=8000)
        # librosa.feature.melspectrogram builds its filters in float32 (ours: float64), hence 1e-5 dB
        np.testing.assert_allclose(got, librosa.power_to_db(mel, top_db=80.0), atol=1e-5)


def _write_idx(path: Path, array: np.ndarray, magic: int) -> None:
    payload = struct.pack(">I", magic) + b"".join(struct.pack(">I", s) for s in array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)


def _write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


def _files_config(tmp_path: Path, **extra) -> dict:
    cfg = {"name": "av_mnist", "source": "files", "root": str(tmp_path / "out"), "mnist_root": str(tmp_path / "mnist"),
           "audio_mnist_root": str(tmp_path / "AudioMNIST"), "test_speakers": 1, "sample_rate": 22050,
           "audio_seconds": 1.0, "captions": "name", "max_train": None, "max_test": None, "mel": dict(MEL)}
    cfg.update(extra)
    return cfg


@pytest.fixture
def files_dataset(tmp_path):
    rng = np.random.default_rng(1)
    raw = tmp_path / "mnist" / "MNIST" / "raw"  # torchvision's layout; one split gzipped, one not
    raw.mkdir(parents=True)
    arrays = {}
    for prefix, n, suffix in (("train", 30, ".gz"), ("t10k", 12, "")):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        _write_idx(raw / f"{prefix}-images-idx3-ubyte{suffix}", images, 2051)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte{suffix}", labels, 2049)
        arrays[prefix] = (images, labels)
    t = np.arange(48000) / 48000
    for speaker in (1, 2, 3):
        folder = tmp_path / "AudioMNIST" / "data" / f"{speaker:02d}"
        folder.mkdir(parents=True)
        for digit in range(10):
            tone = 0.4 * np.sin(2 * np.pi * (300 + 100 * digit + 7 * speaker) * t[:int(48000 * (0.5 + 0.05 * digit))])
            _write_wav(folder / f"{digit}_{speaker:02d}_0.wav", tone, 48000)
    (tmp_path / "AudioMNIST" / "data" / "audioMNIST_meta.txt").write_text("{}")
    return tmp_path, arrays


def test_files_source_reads_mnist_idx_and_audio_mnist(files_dataset):
    tmp_path, arrays = files_dataset
    splits = data.load_splits(_files_config(tmp_path), seed=0)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images, labels = arrays[prefix]
        np.testing.assert_array_equal((splits[split].images[:, 0] * 255).round().numpy().astype(np.uint8), images)
        assert splits[split].labels.tolist() == labels.tolist()
    train_speakers = set(splits["train"].audio.speakers.tolist())
    test_speakers = set(splits["test"].audio.speakers.tolist())
    assert len(test_speakers) == 1 and train_speakers | test_speakers == {1, 2, 3} and not train_speakers & test_speakers
    assert splits["train"].audio.spectrograms.shape == (20, 128, 44)
    assert sorted(splits["test"].audio.digits.tolist()) == list(range(10))

    # the spectrogram of a clip is its 48 kHz file resampled to 22050 Hz, cut/padded to 1 s, in dB
    speaker = next(iter(test_speakers))
    clip = tmp_path / "AudioMNIST" / "data" / f"{speaker:02d}" / f"3_{speaker:02d}_0.wav"
    expected = data.log_mel_spectrogram(torch.from_numpy(data.fit_length(data.read_wav(clip, 22050), 22050)), 22050, **MEL)
    row = (splits["test"].audio.digits == 3).nonzero().item()
    torch.testing.assert_close(splits["test"].audio.spectrograms[row], expected.float())
    # the tone's frequency survives resampling: the loudest Mel band holds 300 + 100*3 + 7*speaker Hz
    band = data.mel_filterbank(22050, 2048, 128, fmax=8000)
    freqs = torch.linspace(0, 11025, 1025, dtype=torch.float64)
    loudest = int(expected[:, 10:30].mean(1).argmax())
    assert abs(float((band[loudest] * freqs).sum() / band[loudest].sum()) - (600 + 7 * speaker)) < 40

    # every training label finds a clip of its digit; pairing is seeded
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    index = data.pair_audio(splits["train"].labels, splits["train"].audio, g1)
    assert torch.equal(splits["train"].audio.digits[index], splits["train"].labels)
    assert torch.equal(index, data.pair_audio(splits["train"].labels, splits["train"].audio, g2))

    capped = data.load_splits(_files_config(tmp_path, max_train=7, max_test=5), seed=0)
    assert len(capped["train"].labels) == 7 and len(capped["test"].labels) == 5


def test_bad_data_configurations_raise_clear_errors(files_dataset, tmp_path_factory):
    tmp_path, _ = files_dataset
    with pytest.raises(ValueError, match="data.mnist_root: expected the folder"):
        data.load_splits(_files_config(tmp_path, mnist_root="???"), seed=0)
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(FileNotFoundError, match="data.mnist_root: expected MNIST's train-images-idx3-ubyte"):
        data.load_splits(_files_config(tmp_path, mnist_root=str(empty)), seed=0)
    with pytest.raises(FileNotFoundError, match="data.audio_mnist_root: expected AudioMNIST's"):
        data.load_splits(_files_config(tmp_path, audio_mnist_root=str(empty)), seed=0)
    with pytest.raises(ValueError, match=r"data.test_speakers: expected between 1 and 2 \(there are 3 speakers\), got 3"):
        data.load_splits(_files_config(tmp_path, test_speakers=3), seed=0)
    with pytest.raises(ValueError, match="data.source: expected 'files'"):
        data.load_splits(_files_config(tmp_path, source="web"), seed=0)
    with pytest.raises(ValueError, match="data.captions: expected 'name' or 'templates'"):
        data.caption_texts({"captions": "sentences"})
    bad = empty / "train-images-idx3-ubyte"
    _write_idx(bad, np.zeros((2, 28, 28), np.uint8), 2049)
    with pytest.raises(ValueError, match="expected an IDX file with magic number 2051, found 2049"):
        data.load_mnist(empty)
    audio = data.AudioBank(torch.zeros(2, 4, 4), torch.tensor([0, 1]), torch.tensor([1, 1]))
    with pytest.raises(ValueError, match="pair_audio: no clip of digit 2"):
        data.pair_audio(torch.tensor([0, 2]), audio, torch.Generator())


def test_espeak_speakers_say_each_digit(tmp_path):
    cfg = {"root": str(tmp_path), "speakers": 3, "repetitions": 2, "sample_rate": 22050, "audio_seconds": 1.0,
           "snr_db": 20, "mel": dict(MEL)}
    bank = data.generate_spoken_digits(cfg, seed=0)
    assert bank.spectrograms.shape == (60, 128, 44) and bank.spectrograms.dtype == torch.float32
    assert torch.bincount(bank.digits).tolist() == [6] * 10 and torch.bincount(bank.speakers).tolist() == [20] * 3
    assert torch.isfinite(bank.spectrograms).all()
    # speech, not silence: every clip spans tens of dB; different speakers say "seven" differently
    assert (bank.spectrograms.amax((1, 2)) - bank.spectrograms.amin((1, 2)) > 30).all()
    sevens = bank.spectrograms[bank.digits == 7]
    assert (sevens[0] - sevens[-1]).abs().mean() > 1.0
    # cached by parameters: the second call reads the same tensors back
    assert len(list(tmp_path.glob("spoken_digits_*.pt"))) == 1
    again = data.generate_spoken_digits(cfg, seed=0)
    assert torch.equal(again.spectrograms, bank.spectrograms) and torch.equal(again.speakers, bank.speakers)
    with pytest.raises(ValueError, match="data.speakers: at most 84 espeak-ng voices, got 85"):
        data.espeak_speakers(85, 0)


def test_contrastive_term_equals_open_clip_clip_loss():
    open_clip_loss = pytest.importorskip("open_clip.loss")
    g = torch.Generator().manual_seed(0)
    z = [torch.nn.functional.normalize(torch.randn(16, 8, generator=g, dtype=torch.float64), dim=1) for _ in range(3)]
    scale = torch.tensor(14.3, dtype=torch.float64)
    reference = open_clip_loss.ClipLoss()
    torch.testing.assert_close(av_mnist.contrastive_loss(z[:2], scale, "all", 0), reference(z[0], z[1], scale))
    pairwise = [reference(z[m], z[n], scale) for m, n in ((0, 1), (0, 2), (1, 2))]
    torch.testing.assert_close(av_mnist.contrastive_loss(z, scale, "all", 0), torch.stack(pairwise).mean())
    torch.testing.assert_close(av_mnist.contrastive_loss(z, scale, "anchor", 1),
                               torch.stack([pairwise[0], pairwise[2]]).mean())
    with pytest.raises(ValueError, match="clip_pairs: expected 'all' or 'anchor'"):
        av_mnist.contrastive_loss(z, scale, "ring", 0)


def _run(tmp_path, *overrides):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "av_mnist.py"), f"data.root={tmp_path}", "threads=2",
                           *overrides], capture_output=True, text=True, env=env, cwd=ROOT)


def test_short_training_run_reports_what_its_embeddings_give(tmp_path):
    run = _run(tmp_path, "epochs=3", "data.speakers=10", "data.test_speakers=2", "data.repetitions=2", "plots=false",
               "data.max_train=640", "batch_size=64")
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((tmp_path / "av_mnist_results.json").read_text())
    assert list(results["runs"]) == ["clip_lt", "clip_ft", "ours"]
    assert "| Ours |" in run.stdout and (tmp_path / "table1.md").read_text() in run.stdout
    assert "Intra-modal expressiveness (Table 7 style)" in run.stdout
    gaps = {}
    for name, r in results["runs"].items():
        assert [h["epoch"] for h in r["history"]] == [1, 2, 3]
        saved = torch.load(tmp_path / f"embeddings_{name}.pt")
        assert set(saved["embeddings"]) == {"image", "audio", "text"} and len(saved["labels"]) == 360
        again = modgap.evaluate(saved["embeddings"], saved["labels"], ks=(1, 5, 10), knn_k=5, n_init=1, seed=0)
        ev = r["evaluation"]
        for pair, values in again["pairs"].items():
            assert ev["pairs"][pair]["gap"] == pytest.approx(values["gap"], rel=1e-12)
        assert ev["clustering"]["v_measure"] == pytest.approx(again["clustering"]["v_measure"], rel=1e-12)
        assert ev["linear_probe"] == again["linear_probe"] and ev["knn"] == again["knn"]
        assert ev["mean_over_pairs"]["gap"] == pytest.approx(np.mean([p["gap"] for p in again["pairs"].values()]))
        assert r["history"][-1]["gap"] == pytest.approx(ev["mean_over_pairs"]["gap"], rel=1e-9)
        for direction in ("image->class text", "audio->class text"):
            assert 0.0 <= ev["class_text_retrieval"][direction]["R@1"] <= ev["class_text_retrieval"][direction]["R@5"] <= 1.0
        gaps[name] = ev["mean_over_pairs"]["gap"]
    # Table 7's five runs: mean and sample std of the scores over evaluation seeds 0..4
    saved = torch.load(tmp_path / "embeddings_ours.pt")
    repeated = results["runs"]["ours"]["evaluation"]["repeated"]
    assert repeated["seeds"] == [0, 1, 2, 3, 4]
    probe = [modgap.evaluate(saved["embeddings"], saved["labels"], ks=(1,), seed=s, fill_gap_k=0)["linear_probe"]
             ["accuracy"]["audio"] for s in range(5)]
    assert repeated["linear_probe"]["audio"]["mean"] == pytest.approx(np.mean(probe), abs=1e-12)
    assert repeated["linear_probe"]["audio"]["std"] == pytest.approx(np.std(probe, ddof=1), abs=1e-12)
    assert "mean ± std over 5 seeded 80/20 splits" in run.stdout
    assert results["runs"]["clip_lt"]["history"][0]["temperature"] != results["runs"]["clip_lt"]["history"][-1]["temperature"]
    assert results["runs"]["clip_ft"]["history"][-1]["temperature"] == pytest.approx(0.07)
    # eq. 21's terms close the gap (the paper's Table 1 claim), here after 3 short epochs already
    assert gaps["ours"] < 0.7 * min(gaps["clip_lt"], gaps["clip_ft"]), gaps


def test_unsupported_runs_are_refused(tmp_path):
    # refused before any run trains (and before the data is built)
    run = _run(tmp_path, "runs=[ours,notagap]", "epochs=1", "data.speakers=3", "data.test_speakers=1", "data.repetitions=1")
    assert run.returncode != 0 and "training" not in run.stdout and not list(tmp_path.glob("spoken_digits_*.pt"))
    assert ("scripts/av_mnist.py: loss=notagap sets ['alignment', 'uniformity'], which scripts/av_mnist.py does not "
            "implement" in run.stderr)
    # clip_ts's schedule used to be dropped: a fixed temperature of 0.01 under clip_ts's name
    run = _run(tmp_path, "runs=[clip_ts]", "epochs=1")
    assert run.returncode != 0 and "loss=clip_ts sets ['temperature_schedule']" in run.stderr
    run = _run(tmp_path, "runs=[]", "epochs=1")
    assert run.returncode != 0 and "runs: expected a non-empty list of loss options" in run.stderr
    run = _run(tmp_path, "runs=[ours,oursx]", "epochs=1")
    assert run.returncode != 0 and "(['oursx'] not found)" in run.stderr


def test_real_data_path_trains_on_files_in_mnist_and_audio_mnist_formats(files_dataset):
    tmp_path, _ = files_dataset
    out = tmp_path / "run"
    run = _run(out, "data=av_mnist", f"data.mnist_root={tmp_path / 'mnist'}",
               f"data.audio_mnist_root={tmp_path / 'AudioMNIST'}", "data.test_speakers=1", "runs=[ours]", "epochs=1",
               "batch_size=8", "plots=false")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "train: 30 images, 20 clips by 2 speakers" in run.stdout and "test: 12 images, 10 clips by 1 speakers" in run.stdout
    saved = torch.load(out / "embeddings_ours.pt")
    assert saved["embeddings"]["audio"].shape == (12, 64) and saved["labels"].tolist() == [i % 10 for i in range(12)]
