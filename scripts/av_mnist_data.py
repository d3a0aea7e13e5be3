"""Data of the AV-MNIST experiment (paper §4 "AV-MNIST", Table 1, Fig. 2/9; Appendix A.2).

Three modalities per sample: a handwritten digit image, a spoken digit and the digit as text. The paper
builds it from MNIST and AudioMNIST (Becker et al.); its code is not released (see the notes'
upstreams.md), so the pairing protocol below is ours and is stated where it is made:

* ``source: files`` (``data=av_mnist``): MNIST's IDX files and AudioMNIST's ``<digit>_<speaker>_<rep>.wav``
  files. Speakers are split into training and held-out speakers; every training image is paired, anew
  each epoch, with a random clip of its digit by a training speaker; every test image with a fixed
  (seeded) clip of its digit by a held-out speaker. Audio is resampled to ``sample_rate`` (librosa's
  default 22050 Hz, which the paper's Mel parameters suggest it used) and padded/cut to ``audio_seconds``.
* ``source: generated`` (``data=av_digits``, the embedded default): the same protocol on data that needs
  no download. Images are scikit-learn's 1797 8x8 digits upsampled to 28x28 (split 80/20, stratified);
  the "speakers" are espeak-ng voices (accent, voice variant, pitch, speed) that say the digit's name,
  with seeded white noise at ``snr_db``.

Audio becomes a log-Mel spectrogram with the paper's parameters (128 Mels, fmax 8000, hop 512, n_fft
2048) computed exactly as ``librosa.power_to_db(librosa.feature.melspectrogram(...))`` (tests compare).
Text is the digit's name ("seven"), one text per class as in the paper, or, with ``captions: templates``,
one of ten caption templates.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import math
import re
import shutil
import subprocess
import tempfile
import wave
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TEMPLATES = ["{w}", "the digit {w}", "the number {w}", "a spoken {w}", "a handwritten {w}", "digit {d}",
             "the number {d}", "a {w}", "it is a {w}", "this shows {w}"]
ESPEAK_ACCENTS = ["en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029"]
ESPEAK_VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5"]


# ---------------------------------------------------------------------------------------------------
# log-Mel spectrogram (librosa's defaults: Slaney Mel scale and area normalisation, periodic Hann
# window, centred frames with zero padding, power 2, power_to_db with ref 1, amin 1e-10, top_db 80)
# ---------------------------------------------------------------------------------------------------
def _hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    # Slaney's Auditory Toolbox scale: linear below 1 kHz (200/3 Hz per Mel), logarithmic above.
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, math.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return torch.where(hz >= min_log_hz, min_log_mel + torch.log(hz.clamp_min(1e-30) / min_log_hz) / logstep, hz / f_sp)


def _mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, math.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return torch.where(mel >= min_log_mel, min_log_hz * torch.exp(logstep * (mel - min_log_mel)), f_sp * mel)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0,
                   fmax: Optional[float] = None) -> torch.Tensor:
    """[n_mels, 1 + n_fft // 2] float64 triangular filters, as ``librosa.filters.mel`` (htk=False, norm="slaney")."""
    fmax = sample_rate / 2.0 if fmax is None else float(fmax)
    if not 0 <= fmin < fmax <= sample_rate / 2.0:
        raise ValueError(f"mel: expected 0 <= fmin < fmax <= sample_rate/2, got fmin={fmin}, fmax={fmax}, "
                         f"sample_rate={sample_rate}")
    fft_freqs = torch.linspace(0, sample_rate / 2.0, 1 + n_fft // 2, dtype=torch.float64)
    edges = _mel_to_hz(torch.linspace(float(_hz_to_mel(torch.tensor(fmin, dtype=torch.float64))),
                                      float(_hz_to_mel(torch.tensor(fmax, dtype=torch.float64))),
                                      n_mels + 2, dtype=torch.float64))
    widths = edges.diff()
    ramps = edges[:, None] - fft_freqs[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = torch.clamp(torch.minimum(rising, falling), min=0.0)
    return weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]  # equal area per filter ("slaney")


def log_mel_spectrogram(waveform: torch.Tensor, sample_rate: int, n_mels: int = 128, fmax: float = 8000.0,
                        hop_length: int = 512, n_fft: int = 2048, top_db: float = 80.0) -> torch.Tensor:
    """[..., samples] -> [..., n_mels, frames] in dB, as librosa.power_to_db(librosa.feature.melspectrogram(
    y=waveform, sr=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, fmax=fmax), top_db=top_db),
    clip by clip (top_db is relative to each clip's maximum). Computed in float64."""
    x = waveform.to(torch.float64)
    batch_shape = x.shape[:-1]
    x = x.reshape(-1, x.shape[-1])
    x = F.pad(x[:, None], (n_fft // 2, n_fft // 2), mode="constant")[:, 0]  # centred frames, zero padding
    window = torch.hann_window(n_fft, periodic=True, dtype=torch.float64)
    power = torch.stft(x, n_fft, hop_length=hop_length, window=window, center=False, return_complex=True).abs() ** 2
    mel = mel_filterbank(sample_rate, n_fft, n_mels, fmax=fmax) @ power
    db = 10.0 * torch.log10(mel.clamp_min(1e-10))
    db = torch.maximum(db, db.amax(dim=(-2, -1), keepdim=True) - top_db)
    return db.reshape(*batch_shape, n_mels, db.shape[-1])


def fit_length(waveform: np.ndarray, samples: int) -> np.ndarray:
    """Zero-pad at the end or cut to exactly ``samples`` (AudioMNIST clips are at most about 1 s long)."""
    out = np.zeros(samples, dtype=np.float32)
    out[:min(samples, len(waveform))] = waveform[:samples]
    return out


def read_wav(path_or_bytes, sample_rate: int) -> np.ndarray:
    """A 16-bit PCM WAV file as float32 in [-1, 1], mono, resampled to ``sample_rate`` (polyphase)."""
    source = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, (bytes, bytearray)) else str(path_or_bytes)
    with wave.open(source, "rb") as f:
        if f.getsampwidth() != 2:
            raise ValueError(f"read_wav: {path_or_bytes!s:.200}: expected 16-bit PCM, got {8 * f.getsampwidth()}-bit")
        rate, channels = f.getframerate(), f.getnchannels()
        audio = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
    audio = audio.reshape(-1, channels).mean(axis=1)
    if rate != sample_rate:
        from scipy.signal import resample_poly
        g = math.gcd(rate, sample_rate)
        audio = resample_poly(audio, sample_rate // g, rate // g).astype(np.float32)
    return audio


# ---------------------------------------------------------------------------------------------------
# the pieces of one data set
# ---------------------------------------------------------------------------------------------------
@dataclass
class AudioBank:
    """Spectrograms [n, n_mels, frames] (float32, dB) with the digit and the speaker of each clip."""
    spectrograms: torch.Tensor
    digits: torch.Tensor
    speakers: torch.Tensor

    def subset(self, mask: torch.Tensor) -> "AudioBank":
        return AudioBank(self.spectrograms[mask], self.digits[mask], self.speakers[mask])


@dataclass
class Split:
    images: torch.Tensor      # [n, 1, 28, 28] float32 in [0, 1]
    labels: torch.Tensor      # [n] int64
    audio: AudioBank          # the clips this split may pair with (its speakers only)


def pair_audio(labels: torch.Tensor, audio: AudioBank, generator: torch.Generator) -> torch.Tensor:
    """For each label, the index of a uniformly drawn clip of that digit in ``audio``."""
    index = torch.empty(len(labels), dtype=torch.int64)
    for digit in range(10):
        rows = (labels == digit).nonzero().flatten()
        clips = (audio.digits == digit).nonzero().flatten()
        if len(rows) and not len(clips):
            raise ValueError(f"pair_audio: no clip of digit {digit} among {len(audio.digits)} clips "
                             f"(speakers {sorted(set(audio.speakers.tolist()))})")
        if len(rows):
            index[rows] = clips[torch.randint(len(clips), (len(rows),), generator=generator)]
    return index


def split_speakers(speakers: Sequence[int], test_speakers: int, seed: int) -> Tuple[List[int], List[int]]:
    """Held-out speakers drawn with the seed; the rest train. Both lists sorted."""
    speakers = sorted(set(int(s) for s in speakers))
    if not 0 < test_speakers < len(speakers):
        raise ValueError(f"data.test_speakers: expected between 1 and {len(speakers) - 1} (there are "
                         f"{len(speakers)} speakers), got {test_speakers}")
    order = np.random.default_rng(seed).permutation(len(speakers))
    test = sorted(speakers[i] for i in order[:test_speakers])
    return [s for s in speakers if s not in test], test


def caption_texts(cfg: dict) -> Tuple[List[str], torch.Tensor]:
    """Every caption the text encoder can see, and its digit. ``captions: name`` gives the 10 digit
    names (the paper: one text per class); ``templates`` gives 10 per digit."""
    mode = cfg.get("captions", "name")
    if mode == "name":
        texts = list(WORDS)
    elif mode == "templates":
        texts = [t.format(w=w, d=d) for d, w in enumerate(WORDS) for t in TEMPLATES]
    else:
        raise ValueError(f"data.captions: expected 'name' or 'templates', got {mode!r}")
    per_class = len(texts) // 10
    return texts, torch.arange(10).repeat_interleave(per_class)


# ---------------------------------------------------------------------------------------------------
# source: files (MNIST IDX + AudioMNIST)
# ---------------------------------------------------------------------------------------------------
def _read_idx(path: Path, magic: int) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    found, = np.frombuffer(data[:4], dtype=">u4")
    if found != magic:
        raise ValueError(f"{path}: expected an IDX file with magic number {magic}, found {found}")
    ndim = magic & 0xFF
    shape = tuple(int(s) for s in np.frombuffer(data[4:4 + 4 * ndim], dtype=">u4"))
    return np.frombuffer(data[4 + 4 * ndim:], dtype=np.uint8).reshape(shape)


def _find_idx(root: Path, stem: str) -> Path:
    for folder in (root, root / "raw", root / "MNIST" / "raw"):
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    raise FileNotFoundError(f"data.mnist_root: expected MNIST's {stem}[.gz] in {root}, {root}/raw or "
                            f"{root}/MNIST/raw (torchvision's layout)")


def load_mnist(root: Path) -> Dict[str, Tuple[torch.Tensor, torch.Tensor]]:
    """{"train": (images [n, 1, 28, 28] in [0, 1], labels), "test": (...)} from MNIST's IDX files."""
    out = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = _read_idx(_find_idx(root, f"{prefix}-images-idx3-ubyte"), 2051)
        labels = _read_idx(_find_idx(root, f"{prefix}-labels-idx1-ubyte"), 2049)
        if len(images) != len(labels):
            raise ValueError(f"data.mnist_root: {prefix} has {len(images)} images but {len(labels)} labels")
        out[split] = (torch.from_numpy(images.astype(np.float32) / 255.0)[:, None], torch.from_numpy(labels.astype(np.int64)))
    return out


AUDIO_MNIST_NAME = re.compile(r"^(\d)_(\d+)_(\d+)\.wav$")


def load_audio_mnist(root: Path, cfg: dict) -> AudioBank:
    """Every ``<digit>_<speaker>_<repetition>.wav`` under ``root`` (AudioMNIST's data/NN/ layout) as
    log-Mel spectrograms."""
    files = sorted(p for p in root.rglob("*.wav") if AUDIO_MNIST_NAME.match(p.name))
    if not files:
        raise FileNotFoundError(f"data.audio_mnist_root: expected AudioMNIST's <digit>_<speaker>_<rep>.wav files "
                                f"under {root}, found none")
    rate, samples = int(cfg["sample_rate"]), int(round(cfg["sample_rate"] * cfg["audio_seconds"]))
    chunk = 512  # AudioMNIST's 30000 clips as waveforms would take 2.6 GB; spectrograms take a quarter of that
    spectrograms = torch.cat([_spectrograms(torch.from_numpy(np.stack([fit_length(read_wav(p, rate), samples)
                                                                         for p in files[i:i + chunk]])), cfg)
                              for i in range(0, len(files), chunk)])
    names = [AUDIO_MNIST_NAME.match(p.name).groups() for p in files]
    return AudioBank(spectrograms,
                     torch.tensor([int(d) for d, _, _ in names]), torch.tensor([int(s) for _, s, _ in names]))


def _spectrograms(waves: torch.Tensor, cfg: dict, chunk: int = 512) -> torch.Tensor:
    mel = cfg["mel"]
    parts = [log_mel_spectrogram(waves[i:i + chunk], int(cfg["sample_rate"]), int(mel["n_mels"]), float(mel["fmax"]),
                                 int(mel["hop_length"]), int(mel["n_fft"])).float() for i in range(0, len(waves), chunk)]
    return torch.cat(parts)


# ---------------------------------------------------------------------------------------------------
# source: generated (scikit-learn digits + espeak-ng)
# ---------------------------------------------------------------------------------------------------
def espeak_speakers(count: int, seed: int) -> List[Tuple[str, int, int]]:
    """``count`` distinct espeak-ng "speakers": (voice "accent+variant", pitch 0-99, words per minute)."""
    rng = np.random.default_rng(seed)
    voices = [f"{a}+{v}" for a in ESPEAK_ACCENTS for v in ESPEAK_VARIANTS]
    if count > len(voices):
        raise ValueError(f"data.speakers: at most {len(voices)} espeak-ng voices, got {count}")
    chosen = rng.choice(len(voices), size=count, replace=False)
    return [(voices[i], int(rng.integers(25, 76)), int(rng.integers(130, 201))) for i in chosen]


def _espeak(voice: str, pitch: int, speed: int, text: str) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "clip.wav"
        run = subprocess.run(["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "-w", str(out), text],
                             capture_output=True, text=True)
        if run.returncode != 0 or not out.is_file():
            raise RuntimeError(f"espeak-ng -v {voice} failed: {run.stderr.strip()[:500]}")
        return out.read_bytes()


def generate_spoken_digits(cfg: dict, seed: int) -> AudioBank:
    """``speakers`` x 10 digits x ``repetitions`` clips from espeak-ng (pitch and speed jittered per
    repetition), with seeded white noise at ``snr_db``; cached under ``root`` by their parameters."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("data=av_digits needs the espeak-ng program (Debian package espeak-ng; "
                           "scripts/bootstrap.sh installs it)")
    keys = ("speakers", "repetitions", "sample_rate", "audio_seconds", "snr_db", "mel")
    params = {k: cfg[k] for k in keys}
    digest = hashlib.sha256(json.dumps([params, seed], sort_keys=True).encode()).hexdigest()[:16]
    cache = Path(cfg["root"]) / f"spoken_digits_{digest}.pt"
    if cache.is_file():
        saved = torch.load(cache)
        return AudioBank(saved["spectrograms"], saved["digits"], saved["speakers"])

    speakers = espeak_speakers(int(cfg["speakers"]), seed)
    rng = np.random.default_rng(seed + 1)
    jobs = []
    for s, (voice, pitch, speed) in enumerate(speakers):
        for digit in range(10):
            for _ in range(int(cfg["repetitions"])):
                jobs.append((s, digit, voice, int(np.clip(pitch + rng.integers(-6, 7), 0, 99)),
                             int(speed + rng.integers(-15, 16))))
    with ThreadPoolExecutor(max_workers=4) as pool:
        clips = list(pool.map(lambda j: _espeak(j[2], j[3], j[4], WORDS[j[1]]), jobs))
    rate, samples = int(cfg["sample_rate"]), int(round(cfg["sample_rate"] * cfg["audio_seconds"]))
    waves = np.stack([fit_length(read_wav(c, rate), samples) for c in clips])
    signal_power = np.mean(waves ** 2, axis=1, keepdims=True)
    noise = rng.standard_normal(waves.shape).astype(np.float32)
    waves = waves + noise * np.sqrt(signal_power / 10 ** (float(cfg["snr_db"]) / 10)).astype(np.float32)
    bank = AudioBank(_spectrograms(torch.from_numpy(waves), cfg),
                     torch.tensor([j[1] for j in jobs]), torch.tensor([j[0] for j in jobs]))
    cache.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"spectrograms": bank.spectrograms, "digits": bank.digits, "speakers": bank.speakers,
                "speaker_voices": speakers}, cache)
    return bank


def sklearn_digit_images() -> Tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1797 8x8 digits (values 0-16) as [n, 1, 28, 28] images in [0, 1] (bilinear)."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    images = torch.from_numpy(digits.images.astype(np.float32) / 16.0)[:, None]
    images = F.interpolate(images, size=(28, 28), mode="bilinear", align_corners=False).clamp(0, 1)
    return images, torch.from_numpy(digits.target.astype(np.int64))


# ---------------------------------------------------------------------------------------------------
def load_splits(cfg: dict, seed: int) -> Dict[str, Split]:
    """{"train": Split, "test": Split} for ``cfg`` (the composed ``data`` config)."""
    source = cfg.get("source")
    if source == "files":
        for key in ("mnist_root", "audio_mnist_root"):
            if cfg.get(key) in (None, "???", ""):
                raise ValueError(f"data.{key}: expected the folder of the downloaded data set "
                                 f"(e.g. data.{key}=/data/{'mnist' if key == 'mnist_root' else 'AudioMNIST'})")
        mnist = load_mnist(Path(cfg["mnist_root"]))
        audio = load_audio_mnist(Path(cfg["audio_mnist_root"]), cfg)
        images = {"train": mnist["train"], "test": mnist["test"]}
    elif source == "generated":
        audio = generate_spoken_digits(cfg, seed)
        from sklearn.model_selection import train_test_split
        all_images, all_labels = sklearn_digit_images()
        train_idx, test_idx = train_test_split(np.arange(len(all_labels)), test_size=float(cfg["test_fraction"]),
                                               stratify=all_labels.numpy(), random_state=seed)
        images = {"train": (all_images[train_idx], all_labels[train_idx]),
                  "test": (all_images[test_idx], all_labels[test_idx])}
    else:
        raise ValueError(f"data.source: expected 'files' (MNIST + AudioMNIST) or 'generated' (scikit-learn "
                         f"digits + espeak-ng), got {source!r}")
    train_speakers, test_speakers = split_speakers(audio.speakers.tolist(), int(cfg["test_speakers"]), seed)
    out = {}
    for split, speakers in (("train", train_speakers), ("test", test_speakers)):
        x, y = images[split]
        limit = cfg.get(f"max_{split}")
        if limit is not None:
            x, y = x[:int(limit)], y[:int(limit)]
        out[split] = Split(x, y, audio.subset(torch.isin(audio.speakers, torch.tensor(speakers))))
    return out
