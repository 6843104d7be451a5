"""DiffWave twins made on a lent GPU: pack here, train and vocode there, unpack here.

On two CPU cores fscan's ``diffwave`` generator is about 1.7 times slower than real time
(six passes of a 20-layer WaveNet over every sample: 25 min of twins take some 45 min),
and training it takes a GPU. A lent H200 did both in one 7-minute call (870 clips vocoded
in 64 s). What travels (64 MiB each way) is 16-bit audio, delta-coded and xz-compressed
(about 0.6 of its raw size: FLAC would do better, but the GPU machine has no soundfile).

    python scripts/experiments/diffwave_twins.py pack REAL VALIDATION.csv PACKED.npz \\
        --fraction 0.25 --seed 0
    python scripts/experiments/diffwave_twins.py gpu PACKED.npz OUT_DIR --minutes 5.5
    python scripts/experiments/diffwave_twins.py unpack PACKED.npz OUT_DIR REAL TWINS_DIR \\
        CHECKPOINT

``pack`` plans the twins exactly as ``fscan build-dataset REAL TWINS_DIR --generators
diffwave --fraction F --tts-share 0 --seed S`` will (same clips, same noise seeds) and
packs their originals; clips of the detector's validation groups (VALIDATION.csv) are
vocoded but not trained on. ``gpu`` (torch, numpy and safetensors only) trains the
DiffWave on the training clips, saves it in OUT_DIR and vocodes every packed clip with
``diffwave.diffwave_copy_synthesis``, the function the generator calls. ``unpack`` writes
the twins where build-dataset expects them, finished as the generator finishes them
(original length and level), with a plan that names CHECKPOINT, so build-dataset keeps
them and only writes the manifest.
"""

import argparse
import json
import lzma
import os
import sys
import time

import numpy as np

PART_BYTES = 15 * 2 ** 20  # files coming back from a GPU call: 16 MiB each at most
RETURN_BYTES = 58 * 2 ** 20  # and 64 MiB in all, the checkpoint included


def encode(audio: np.ndarray) -> bytes:
    """int16 audio -> xz of its first difference (wraps around in int16: lossless)."""
    return lzma.compress(np.diff(audio, prepend=np.int16(0)).astype(np.int16).tobytes())


def decode(data: bytes) -> np.ndarray:
    """Inverse of ``encode``."""
    return np.cumsum(np.frombuffer(lzma.decompress(data), dtype=np.int16), dtype=np.int16)


def plan(real_dir: str, fraction: float, seed: int):
    """The diffwave tasks ``fscan build-dataset`` plans for these settings."""
    from forensics_scan import dataset

    return dataset.plan_dataset(real_dir, generators=["diffwave"], fraction=fraction,
                                seed=seed, installed_only=False).tasks  # weights come later


def pack(args) -> None:
    import pandas as pd

    from forensics_scan.audio import load_audio
    from forensics_scan.gan_vocoder import mel_filterbank

    tasks = plan(args.real, args.fraction, args.seed)
    held_out = set(pd.read_csv(args.validation)["group"])
    clips = [np.round(np.clip(load_audio(task.source), -1, 32767 / 32768) * 32768)
             .astype(np.int16) for task in tasks]
    data = encode(np.concatenate(clips))
    np.savez(args.packed, xz=np.frombuffer(data, dtype=np.uint8),
             lengths=np.array([clip.size for clip in clips]),
             seeds=np.array([task.options["seed"] for task in tasks]),
             train=np.array([task.group not in held_out for task in tasks]),
             filterbank=mel_filterbank(),
             out_rel=np.array(json.dumps([task.out_rel for task in tasks])))
    minutes = sum(clip.size for clip in clips) / 16000 / 60
    print(f"{len(tasks)} clips, {minutes:.1f} min ({len(data) / 1e6:.1f} MB packed), "
          f"{sum(task.group not in held_out for task in tasks)} to train on -> {args.packed}")


def _clips(packed) -> list:
    audio = decode(packed["xz"].tobytes())
    return np.split(audio, np.cumsum(packed["lengths"])[:-1])


def gpu(args) -> None:
    import torch

    from forensics_scan import diffwave
    from forensics_scan.gan_vocoder import N_FFT, pack_clips

    packed = np.load(args.packed)
    clips = _clips(packed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    training = pack_clips([clip / 32768 for clip, keep in zip(clips, packed["train"]) if keep],
                          filterbank=packed["filterbank"])
    os.makedirs(args.out, exist_ok=True)
    checkpoint = os.path.join(args.out, "diffwave.safetensors")

    def report(step, elapsed, losses):
        print(f"step {step} {elapsed:.0f}s l1 {losses['l1']:.4f}", flush=True)

    summary = diffwave.train_diffwave(
        training, checkpoint, minutes=args.minutes, max_steps=args.max_steps,
        config=diffwave.DiffWaveConfig(channels=args.channels, layers=args.layers),
        batch_size=args.batch_size, device=device, bf16=device == "cuda", half=True,
        init=args.init, progress=report)
    print(json.dumps(summary), flush=True)
    torch.backends.cudnn.benchmark = False  # every clip length would be re-tuned
    model, log_mel = diffwave.load_diffwave(checkpoint)  # the saved (float16) weights
    model, log_mel = model.to(device), log_mel.to(device)
    started, twins = time.monotonic(), []
    for clip, seed in zip(clips, packed["seeds"]):
        late = time.monotonic() - started > args.vocode_minutes * 60
        if late or clip.size < N_FFT or not np.any(clip):
            twins.append(np.zeros(clip.size, np.int16))  # unpack leaves these to the CPU
            continue
        twin = diffwave.diffwave_copy_synthesis(model, log_mel, clip / 32768, seed=int(seed),
                                                device=device)
        twins.append(np.round(np.clip(twin, -1, 1) * 32767).astype(np.int16))
    print(f"vocoded {len(twins)} clips in {time.monotonic() - started:.0f} s", flush=True)
    data = encode(np.concatenate(twins))
    room = RETURN_BYTES - os.path.getsize(checkpoint)
    if len(data) > room:
        print(f"twins need {len(data)} bytes, {room} fit: the rest is left out", flush=True)
    for part, start in enumerate(range(0, min(len(data), room), PART_BYTES)):
        with open(os.path.join(args.out, f"twins_{part}.xz"), "wb") as handle:
            handle.write(data[start: min(start + PART_BYTES, room)])
    print(f"twins: {len(data) / 1e6:.1f} MB in {part + 1} parts", flush=True)


def unpack(args) -> None:
    from forensics_scan import dataset, synthesis
    from forensics_scan.synthesis import finish_output, rms

    packed = np.load(args.packed)
    os.environ[synthesis.DIFFWAVE_VOCODER_ENV] = args.checkpoint
    tasks = plan(args.real, float(args.fraction), int(args.seed))
    if [task.out_rel for task in tasks] != json.loads(str(packed["out_rel"])):
        sys.exit("the plan differs from the packed one: other data, fraction or seed")
    parts = sorted((name for name in os.listdir(args.out) if name.startswith("twins_")),
                   key=lambda name: int(name[6:-3]))
    data = b"".join(open(os.path.join(args.out, name), "rb").read() for name in parts)
    # a stream decoder also reads a stream cut short (parts left out): whole clips only
    raw = lzma.LZMADecompressor().decompress(data)
    audio = np.cumsum(np.frombuffer(raw[: len(raw) // 2 * 2], dtype=np.int16), dtype=np.int16)
    ends = np.cumsum(packed["lengths"])
    twins = [audio[end - n: end] for n, end in zip(packed["lengths"], ends) if end <= audio.size]
    os.makedirs(args.twins, exist_ok=True)
    dataset.record_plan(tasks, args.twins)  # plan.csv naming the checkpoint
    written = 0
    for task, twin, clip in zip(tasks, twins, _clips(packed)):
        if not np.any(twin):
            continue
        original = clip / 32768  # the decoded source, as packed (16-bit sources: exact)
        finished = finish_output(twin / 32767, original.size, rms(original))
        dataset.write_flac(os.path.join(args.twins, task.out_rel), finished)
        written += 1
    print(f"wrote {written} of {len(tasks)} twins into {args.twins}; build-dataset makes "
          f"the other {len(tasks) - written} itself")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    steps = parser.add_subparsers(dest="step", required=True)
    p = steps.add_parser("pack")
    p.add_argument("real")
    p.add_argument("validation")
    p.add_argument("packed")
    p.add_argument("--fraction", type=float, default=0.25)
    p.add_argument("--seed", type=int, default=0)
    p = steps.add_parser("gpu")
    p.add_argument("packed")
    p.add_argument("out")
    p.add_argument("--minutes", type=float, default=5.5)
    p.add_argument("--max-steps", type=int)
    p.add_argument("--channels", type=int, default=64)
    p.add_argument("--layers", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--init", help="DiffWave checkpoint to go on from")
    p.add_argument("--vocode-minutes", type=float, default=3.0,
                   help="clips not reached by then are left to the CPU")
    p = steps.add_parser("unpack")
    p.add_argument("packed")
    p.add_argument("out")
    p.add_argument("real")
    p.add_argument("twins")
    p.add_argument("checkpoint")
    p.add_argument("--fraction", type=float, default=0.25)
    p.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    {"pack": pack, "gpu": gpu, "unpack": unpack}[args.step](args)


if __name__ == "__main__":
    main()
